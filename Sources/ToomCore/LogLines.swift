/// The line formats of the server's files (spec §3). The separator is "; "; a parser
/// splits at most three times, so a message may itself contain "; ".
public enum LogLine {
    public static let separator = "; "

    /// Splits at the first `maxSplits` separators.
    public static func split<S: StringProtocol>(_ line: S, maxSplits: Int) -> [Substring] {
        let text = Substring(line)
        var fields: [Substring] = []
        let utf8 = text.utf8
        var fieldStart = utf8.startIndex
        var i = utf8.startIndex
        while fields.count < maxSplits, i < utf8.endIndex {
            let next = utf8.index(after: i)
            if utf8[i] == 0x3B, next < utf8.endIndex, utf8[next] == 0x20 {
                fields.append(text[fieldStart..<i])
                i = utf8.index(after: next)
                fieldStart = i
            } else {
                i = next
            }
        }
        fields.append(text[fieldStart...])
        return fields
    }
}

/// One line of `messagelog.txt` or `SR_<id>_messageLog.txt`: `n; <ts>; username; message`.
public struct MessageRecord: Equatable, Sendable {
    public var number: Int
    public var timestamp: String
    public var user: String
    public var message: String

    public init(number: Int, timestamp: String, user: String, message: String) {
        self.number = number
        self.timestamp = timestamp
        self.user = user
        self.message = message
    }

    /// The line without its newline.
    public var line: String {
        var text = ""
        appendLine(to: &text)
        return text
    }

    /// Appends the line, without its newline, to `text`.
    public func appendLine(to text: inout String) {
        text += String(number)
        text += "; "
        text += timestamp
        text += "; "
        text += user
        text += "; "
        text += message
    }

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case fieldCount, number, timestamp, user

        public var description: String {
            switch self {
            case .fieldCount: return "expected 'n; timestamp; username; message'"
            case .number: return "the message number is not a positive integer"
            case .timestamp: return "the timestamp is not in the format \(Timestamp.expectedFormat)"
            case .user: return "the username is not valid"
            }
        }
    }

    /// Parses a line (without its newline).
    public static func parse<S: StringProtocol>(_ line: S) -> Result<MessageRecord, ParseError> {
        let fields = LogLine.split(line, maxSplits: 3)
        guard fields.count == 4 else { return .failure(.fieldCount) }
        guard let number = Int(fields[0]), number > 0 else { return .failure(.number) }
        guard Timestamp.Fields(fields[1]) != nil else { return .failure(.timestamp) }
        guard Text.isValidUsername(fields[2]) else { return .failure(.user) }
        return .success(MessageRecord(number: number, timestamp: String(fields[1]), user: String(fields[2]), message: String(fields[3])))
    }
}

/// One line of `userlog.txt`: `seq; <ts>; username; client_ip; udp_port`.
public struct UserLogRecord: Equatable, Sendable {
    public var sequence: Int
    public var timestamp: String
    public var user: String
    public var address: String
    public var udpPort: Int

    public init(sequence: Int, timestamp: String, user: String, address: String, udpPort: Int) {
        self.sequence = sequence
        self.timestamp = timestamp
        self.user = user
        self.address = address
        self.udpPort = udpPort
    }

    public var line: String {
        "\(sequence); \(timestamp); \(user); \(address); \(udpPort)"
    }

    public static func parse<S: StringProtocol>(_ line: S) -> UserLogRecord? {
        let fields = LogLine.split(line, maxSplits: 4)
        guard fields.count == 5, let sequence = Int(fields[0]), let port = Int(fields[4]),
              Timestamp.Fields(fields[1]) != nil
        else { return nil }
        return UserLogRecord(sequence: sequence, timestamp: String(fields[1]), user: String(fields[2]),
                             address: String(fields[3]), udpPort: port)
    }
}

/// One line of `rooms.txt`, the server's own record of separate rooms: `id; member, member, ...`.
public struct RoomRecord: Equatable, Sendable {
    public var id: Int
    public var members: [String]

    public init(id: Int, members: [String]) {
        self.id = id
        self.members = members
    }

    public var line: String {
        "\(id); \(members.joined(separator: ", "))"
    }

    public static func parse<S: StringProtocol>(_ line: S) -> RoomRecord? {
        let fields = LogLine.split(line, maxSplits: 1)
        guard fields.count == 2, let id = Int(fields[0]), id > 0 else { return nil }
        let members = fields[1].split(separator: ",").map { $0.trimmingSpaces() }
        guard !members.isEmpty, members.allSatisfy({ Text.isValidUsername($0) }) else { return nil }
        return RoomRecord(id: id, members: members.map(String.init))
    }
}

extension Substring {
    func trimmingSpaces() -> Substring {
        var s = self
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return s
    }
}
