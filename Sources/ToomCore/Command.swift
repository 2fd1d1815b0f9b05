/// A command typed at the client prompt (spec §5), validated. The same rules apply
/// when the server decodes the command from the wire: the server never trusts the client.
public enum Command: Equatable, Sendable {
    case broadcast(message: String)
    case activeUsers
    case buildRoom(users: [String])
    case roomMessage(room: String, message: String)
    case readMessages(ReadScope, since: String)
    case logout
    case upload(user: String, file: String)

    public enum ReadScope: String, Sendable {
        case broadcasts = "b"
        case rooms = "s"
    }

    public static let prompt = "Enter one of the following commands (BCM, ATU, SRB, SRM, RDM, OUT, UPD): "
    public static let invalidCommand = "Error. Invalid command!"

    /// The command word on the wire and at the prompt.
    public var word: String {
        switch self {
        case .broadcast: return "BCM"
        case .activeUsers: return "ATU"
        case .buildRoom: return "SRB"
        case .roomMessage: return "SRM"
        case .readMessages: return "RDM"
        case .logout: return "OUT"
        case .upload: return "UPD"
        }
    }

    public static func usage(_ word: String) -> String {
        switch word {
        case "BCM": return "Usage: BCM <message>"
        case "ATU": return "Usage: ATU"
        case "SRB": return "Usage: SRB <username1> [username2 ...]"
        case "SRM": return "Usage: SRM <roomID> <message>"
        case "RDM": return "Usage: RDM <b|s> <timestamp>, e.g. RDM b 1 Jun 2022 21:30:04"
        case "OUT": return "Usage: OUT"
        case "UPD", "UDP": return "Usage: UPD <username> <filename>"
        default: return invalidCommand
        }
    }

    /// Users one SRB may list besides the issuer; bounds the reply to one frame.
    public static let maxRoomInvitees = 99

    public static let words = ["BCM", "ATU", "SRB", "SRM", "RDM", "OUT", "UPD"]

    /// The wire fields after the command word.
    public var arguments: [String] {
        switch self {
        case .broadcast(let message): return [message]
        case .activeUsers, .logout: return []
        case .buildRoom(let users): return users
        case .roomMessage(let room, let message): return [room, message]
        case .readMessages(let scope, let since): return [scope.rawValue, since]
        case .upload(let user, let file): return [user, file]
        }
    }
}

public enum CommandParseResult: Equatable, Sendable {
    /// An empty line: show the prompt again.
    case empty
    case command(Command)
    /// One line to show the user.
    case error(String)
}

public enum CommandParser {
    /// Parses a line typed at the prompt. Command words are upper-case; arguments are
    /// separated by spaces; a message is the rest of the line, verbatim.
    public static func parse(_ line: String) -> CommandParseResult {
        if line.allSatisfy({ $0 == " " }) { return .empty }
        if Text.containsControlCharacter(line) {
            return .error("Error. Control characters (tabs, escapes, line breaks) are not allowed")
        }
        let word: Substring
        let rest: Substring
        if let space = Text.firstSpace(in: line[...]) {
            word = line[line.startIndex..<space]
            rest = line[line.unicodeScalars.index(after: space)...]
        } else {
            word = line[...]
            rest = ""
        }
        switch word {
        case "BCM":
            return finish(.broadcast(message: String(rest)))
        case "ATU":
            return finish(rest.isEmpty ? .activeUsers : nil, word: "ATU")
        case "SRB":
            return finish(.buildRoom(users: Text.words(rest).map(String.init)))
        case "SRM":
            let (room, message) = splitFirst(rest)
            return finish(.roomMessage(room: String(room), message: String(message)))
        case "RDM":
            let (scope, since) = splitFirst(rest)
            return finishRead(scope: scope, since: since)
        case "OUT":
            return finish(rest.isEmpty ? .logout : nil, word: "OUT")
        case "UPD", "UDP":
            let (user, file) = splitFirst(rest)
            return finish(.upload(user: String(user), file: String(file)))
        default:
            return .error(Command.invalidCommand)
        }
    }

    /// Decodes and validates a command from wire fields (word first).
    public static func decode(_ fields: [Substring]) -> CommandParseResult {
        guard let word = fields.first else { return .error(Command.invalidCommand) }
        let args = fields.dropFirst()
        if args.contains(where: { Text.containsControlCharacter($0) }) {
            return .error("Error. Control characters (tabs, escapes, line breaks) are not allowed")
        }
        func arity(_ n: Int) -> Bool { args.count == n }
        func arg(_ i: Int) -> String { String(fields[1 + i]) }
        switch word {
        case "BCM": return arity(1) ? finish(.broadcast(message: arg(0))) : .error(Command.usage("BCM"))
        case "ATU": return finish(arity(0) ? .activeUsers : nil, word: "ATU")
        case "SRB": return finish(.buildRoom(users: args.map(String.init)))
        case "SRM": return arity(2) ? finish(.roomMessage(room: arg(0), message: arg(1))) : .error(Command.usage("SRM"))
        case "RDM": return arity(2) ? finishRead(scope: fields[1], since: fields[2]) : .error(Command.usage("RDM"))
        case "OUT": return finish(arity(0) ? .logout : nil, word: "OUT")
        case "UPD", "UDP": return arity(2) ? finish(.upload(user: arg(0), file: arg(1))) : .error(Command.usage("UPD"))
        default: return .error(Command.invalidCommand)
        }
    }

    private static func splitFirst(_ text: Substring) -> (Substring, Substring) {
        guard let space = Text.firstSpace(in: text) else { return (text, "") }
        return (text[text.startIndex..<space], text[text.unicodeScalars.index(after: space)...])
    }

    private static func finish(_ command: Command?, word: String) -> CommandParseResult {
        guard let command else { return .error(Command.usage(word)) }
        return finish(command)
    }

    private static func finishRead(scope: Substring, since: Substring) -> CommandParseResult {
        if scope.isEmpty || since.isEmpty { return .error(Command.usage("RDM")) }
        guard let kind = Command.ReadScope(rawValue: String(scope)) else {
            return .error("Error. RDM message type must be 'b' (broadcast) or 's' (separate room), not '\(scope)'. \(Command.usage("RDM"))")
        }
        return finish(.readMessages(kind, since: String(since)))
    }

    /// Checks the arguments of a fully split command.
    private static func finish(_ command: Command) -> CommandParseResult {
        switch command {
        case .broadcast(let message), .roomMessage(_, let message):
            if message.utf8.allSatisfy({ $0 == 0x20 }) { return .error(Command.usage(command.word)) }
            if case .roomMessage(let room, _) = command, room.isEmpty { return .error(Command.usage("SRM")) }
            if message.utf8.count > Text.maxMessageBytes {
                return .error("Error. Message is too long (at most \(Text.maxMessageBytes) bytes)")
            }
        case .buildRoom(let users):
            if users.isEmpty || users.contains(where: \.isEmpty) { return .error(Command.usage("SRB")) }
            if users.count > Command.maxRoomInvitees {
                return .error("Error. A separate room can have at most \(Command.maxRoomInvitees + 1) members")
            }
            if users.contains(where: { $0.utf8.count > Text.maxUsernameBytes }) {
                return .error("Error. A username has at most \(Text.maxUsernameBytes) bytes")
            }
        case .readMessages(_, let since):
            if Timestamp.Fields(since) == nil {
                return .error("Error. Invalid timestamp '\(since)': expected \(Timestamp.expectedFormat)")
            }
        case .upload(let user, let file):
            if user.isEmpty || file.isEmpty { return .error(Command.usage("UPD")) }
            if user.utf8.count > Text.maxUsernameBytes || file.utf8.count > Text.maxFileNameBytes {
                return .error("Error. The username or file name is too long")
            }
        case .activeUsers, .logout:
            break
        }
        return .command(command)
    }
}
