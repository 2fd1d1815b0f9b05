/// The files of a data directory (spec §3), named in one place for the server, `toom
/// replay` and `--fresh`.
public enum LogFiles {
    public static let credentials = "credentials.txt"
    public static let broadcasts = "messagelog.txt"
    public static let users = "userlog.txt"
    public static let rooms = "rooms.txt"

    /// The files `--fresh` moves aside.
    public static func isLog(_ name: String) -> Bool {
        name == broadcasts || name == users || name == rooms || LogKind(fileName: name) != nil
    }
}

/// Which message log: the broadcasts or one room's.
public enum LogKind: Equatable, Hashable, Sendable, Comparable {
    case broadcast
    case room(Int)

    /// The file it is kept in.
    public var fileName: String {
        switch self {
        case .broadcast: return LogFiles.broadcasts
        case .room(let id): return "SR_\(id)_messageLog.txt"
        }
    }

    /// `messagelog.txt` or `SR_<id>_messageLog.txt`; nil for any other name.
    public init?(fileName: String) {
        if fileName == LogFiles.broadcasts {
            self = .broadcast
            return
        }
        guard fileName.hasPrefix("SR_"), fileName.hasSuffix("_messageLog.txt") else { return nil }
        let digits = fileName.dropFirst(3).dropLast("_messageLog.txt".count)
        guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let id = Int(digits), id > 0 else { return nil }
        self = .room(id)
    }
}
