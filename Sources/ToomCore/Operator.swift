/// What the operator asks of a running server, from its console or with `toom admin`.
public enum OperatorCommand: Equatable, Sendable {
    case list
    case kick(String)
    case unblock(String)
    case quit
    case help

    public static let words = ["list", "kick", "unblock", "quit", "help"]

    public static let helpLines = [
        "list            users online (address, UDP port, since when), rooms and blocked accounts",
        "kick <user>     disconnect a user; their client is told",
        "unblock <user>  lift a login block now",
        "quit            stop the server gracefully (also Ctrl-D on an empty line)",
        "help            this list",
    ]

    public enum Parsed: Equatable, Sendable {
        case empty
        case command(OperatorCommand)
        case error(String)
    }

    /// Parses a console line. Words are separated by spaces; the command word is not case-sensitive.
    public static func parse(_ line: String) -> Parsed {
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard let word = words.first?.lowercased() else { return .empty }
        let arguments = Array(words.dropFirst())
        func noArguments(_ command: OperatorCommand) -> Parsed {
            arguments.isEmpty ? .command(command) : .error("Usage: \(word)")
        }
        func oneUser(_ make: (String) -> OperatorCommand) -> Parsed {
            arguments.count == 1 ? .command(make(arguments[0])) : .error("Usage: \(word) <user>")
        }
        switch word {
        case "list": return noArguments(.list)
        case "kick": return oneUser(OperatorCommand.kick)
        case "unblock": return oneUser(OperatorCommand.unblock)
        case "quit": return noArguments(.quit)
        case "help": return noArguments(.help)
        default: return .error("Unknown command '\(words[0])'. Commands: \(Self.words.joined(separator: ", ")); help explains them")
        }
    }
}

/// The answer to an operator command: the lines to show, and whether it was done.
public struct OperatorReply: Equatable, Sendable {
    public var done: Bool
    public var lines: [String]

    public init(done: Bool, lines: [String]) {
        self.done = done
        self.lines = lines
    }

    public static func done(_ line: String) -> OperatorReply { OperatorReply(done: true, lines: [line]) }
    public static func refused(_ line: String) -> OperatorReply { OperatorReply(done: false, lines: [line]) }
}

/// The operator's sentences.
public enum OperatorMessages {
    public static func kicked(_ user: String) -> String { "\(user) has been disconnected" }
    public static func notOnline(_ user: String) -> String { "\(user) is not online" }
    public static func unblocked(_ user: String) -> String { "\(user) is no longer blocked" }
    public static func wasNotBlocked(_ user: String) -> String { "\(user) was not blocked" }
    /// The server's event line when an account is unblocked, from the console or `toom admin`.
    public static func unblockEvent(_ user: String) -> String { "\(user) unblocked by the operator" }
}

/// What `list` shows: who is online, the rooms, the blocked accounts.
public struct OperatorReport: Codable, Equatable, Sendable {
    public struct User: Codable, Equatable, Sendable {
        public var user: String
        public var address: String
        public var udpPort: Int
        public var since: String

        public init(user: String, address: String, udpPort: Int, since: String) {
            self.user = user
            self.address = address
            self.udpPort = udpPort
            self.since = since
        }
    }

    public struct Room: Codable, Equatable, Sendable {
        public var id: Int
        public var members: [String]

        public init(id: Int, members: [String]) {
            self.id = id
            self.members = members
        }
    }

    public struct Block: Codable, Equatable, Sendable {
        public var user: String
        public var secondsLeft: Int

        public init(user: String, secondsLeft: Int) {
            self.user = user
            self.secondsLeft = secondsLeft
        }
    }

    public var users: [User]
    public var rooms: [Room]
    public var blocked: [Block]

    public init(users: [User] = [], rooms: [Room] = [], blocked: [Block] = []) {
        self.users = users
        self.rooms = rooms
        self.blocked = blocked
    }

    /// The report as text, for the console and `toom admin list`.
    public var lines: [String] {
        var lines = ["Users online: \(users.count)"]
        for u in users { lines.append("  \(u.user), \(u.address), UDP port \(u.udpPort), since \(u.since)") }
        lines.append("Rooms: \(rooms.count)")
        for r in rooms { lines.append("  room \(r.id): \(r.members.joined(separator: ", "))") }
        lines.append("Blocked accounts: \(blocked.count)")
        for b in blocked { lines.append("  \(b.user), \(b.secondsLeft) second\(b.secondsLeft == 1 ? "" : "s") left") }
        return lines
    }
}

/// The admin channel's frames (docs/OPERATOR.md, "The admin channel"): one request per connection, replies until
/// the server closes it. Fields are tab-separated, as on the chat protocol.
public enum AdminFrame {
    public static func request(_ command: OperatorCommand) -> [String]? {
        switch command {
        case .list: return ["LIST"]
        case .kick(let user): return ["KICK", user]
        case .unblock(let user): return ["UNBLOCK", user]
        case .quit, .help: return nil
        }
    }

    public static func parseRequest(_ fields: [Substring]) -> OperatorCommand? {
        switch (fields.first, fields.count) {
        case ("LIST"?, 1): return .list
        case ("KICK"?, 2): return .kick(String(fields[1]))
        case ("UNBLOCK"?, 2): return .unblock(String(fields[1]))
        default: return nil
        }
    }

    /// The frames of a report, without the final DONE.
    public static func report(_ report: OperatorReport) -> [[String]] {
        report.users.map { ["USER", $0.user, $0.address, String($0.udpPort), $0.since] }
            + report.rooms.map { ["ROOM", String($0.id)] + $0.members }
            + report.blocked.map { ["BLOCKED", $0.user, String($0.secondsLeft)] }
    }

    /// The final frame of a reply: DONE or REFUSED, with its lines.
    public static func final(_ reply: OperatorReply) -> [String] {
        [reply.done ? "DONE" : "REFUSED"] + reply.lines
    }

    /// Reads a reply; nil when the frames do not make one.
    public static func parseReply(_ frames: [[Substring]]) -> (report: OperatorReport, reply: OperatorReply)? {
        var report = OperatorReport()
        for (index, fields) in frames.enumerated() {
            switch fields.first {
            case "USER"? where fields.count == 5:
                guard let port = Int(fields[3]) else { return nil }
                report.users.append(.init(user: String(fields[1]), address: String(fields[2]), udpPort: port, since: String(fields[4])))
            case "ROOM"? where fields.count >= 3:
                guard let id = Int(fields[1]) else { return nil }
                report.rooms.append(.init(id: id, members: fields.dropFirst(2).map(String.init)))
            case "BLOCKED"? where fields.count == 3:
                guard let seconds = Int(fields[2]) else { return nil }
                report.blocked.append(.init(user: String(fields[1]), secondsLeft: seconds))
            case "DONE"?, "REFUSED"?:
                guard index == frames.count - 1 else { return nil }
                return (report, OperatorReply(done: fields[0] == "DONE", lines: fields.dropFirst().map(String.init)))
            default:
                return nil
            }
        }
        return nil
    }
}
