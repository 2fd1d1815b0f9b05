import ToomCore
import ToomStore

/// One message read back from a log.
public struct ReplayRecord: Equatable, Sendable {
    public var kind: LogKind
    public var record: MessageRecord
    /// The timestamp as epoch seconds, read in the local time zone.
    public var time: Int64

    public init(kind: LogKind, record: MessageRecord, time: Int64) {
        self.kind = kind
        self.record = record
        self.time = time
    }
}

/// Which messages to show. Empty sets mean no restriction.
public struct ReplayFilter: Sendable {
    public var rooms: Set<Int>
    public var broadcasts: Bool
    public var users: Set<String>
    /// Inclusive bounds, epoch seconds.
    public var since: Int64?
    public var until: Int64?

    public init(rooms: Set<Int> = [], broadcasts: Bool = false, users: Set<String> = [],
                since: Int64? = nil, until: Int64? = nil) {
        self.rooms = rooms
        self.broadcasts = broadcasts
        self.users = users
        self.since = since
        self.until = until
    }

    /// Whether a log is read at all: every log unless rooms or broadcasts were chosen.
    public func includes(_ kind: LogKind) -> Bool {
        if rooms.isEmpty && !broadcasts { return true }
        switch kind {
        case .broadcast: return broadcasts
        case .room(let id): return rooms.contains(id)
        }
    }

    public func includes(_ record: ReplayRecord) -> Bool {
        if !users.isEmpty && !users.contains(record.record.user) { return false }
        if let since, record.time < since { return false }
        if let until, record.time > until { return false }
        return true
    }
}
