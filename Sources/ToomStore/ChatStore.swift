import ToomChat
import ToomCore

/// Where the chat's record lives: accounts, the message logs, rooms, who is online. The
/// server carries out the rules' writes through it and reads RDM answers from it, and
/// never knows which store it has.
public protocol ChatStore: AnyObject, Sendable {
    /// Username → stored password (as typed, or a hash). Lines that cannot be used go to `warn`.
    func loadAccounts(warn: (String) -> Void) throws -> [String: StoredPassword]
    /// True when the accounts changed since they were last loaded. Cheap: asked on logins.
    func accountsChanged() -> Bool
    /// The numbering and rooms the rules start from.
    func snapshot() -> ChatSnapshot
    /// Carries out one write. A ticket means the write must be durable (`whenDurable`)
    /// before anything that depends on it is said.
    func apply(_ write: StoreWrite) throws -> UInt64?
    /// Calls `done` once every write up to `ticket` is durable, with the error if not.
    func whenDurable(_ ticket: UInt64, _ done: @escaping @Sendable (Error?) -> Void)
    /// Reads an RDM answer lazily; used off the event loops.
    func history(_ request: HistoryRequest) -> HistoryCursor
    /// Carries out what writes deferred (many logouts share one rewrite). Off the event loops.
    func flush() throws
    /// Checks the old records once, in the background, reporting what is wrong.
    func verify(warn: @escaping @Sendable (String) -> Void)
    /// Finishes pending writes; returns a line for the operator about them, if any.
    func close() -> String?

    /// Batching, for a store that can carry out many writes in fewer system calls: takes
    /// the write without carrying it out yet and returns its position in the batch, or
    /// nil when this write must go through `apply` instead. Nothing that depends on a staged
    /// write may be said before `writeStaged` has carried it out.
    func stage(_ write: StoreWrite) throws -> Int?
    /// Carries out every staged write, in the order staged, and starts a new batch.
    func writeStaged() -> StagedWrites

    /// A store that several servers share (spec §11); nil when this server alone writes the
    /// record (the file store).
    var shared: SharedStore? { get }
}

/// What became of a batch of staged writes.
public struct StagedWrites {
    /// With `--sync`: the ticket that covers every write of the batch (`whenDurable`).
    public var ticket: UInt64?
    /// The writes that failed, by their position in the batch, with why. Nothing of them is
    /// in the record; the rules are told (`ChatCore.writeFailed`) as for a failed `apply`.
    public var failed: [Int: Error]

    public init(ticket: UInt64? = nil, failed: [Int: Error] = [:]) {
        self.ticket = ticket
        self.failed = failed
    }
}

extension ChatStore {
    public var shared: SharedStore? { nil }

    /// A store that does not batch: every write goes through `apply`.
    public func stage(_ write: StoreWrite) throws -> Int? { nil }
    public func writeStaged() -> StagedWrites { StagedWrites() }
}

/// What one server passes to the server a user is online on.
public enum Forwarded: Sendable, Equatable {
    /// Encoded frames for the user's session (an `UPD` offer).
    case frames(String)
    /// The operator kicked the user (`toom admin kick` through another server).
    case kick
}

/// The part of a store that several servers share. Its writes are asynchronous: the store
/// numbers messages and rooms when it commits, and the server says "stored" only after the
/// commit. What any server committed comes back to every server, in commit order, once.
public protocol SharedStore: AnyObject, Sendable {
    /// Commits one write without blocking the caller; `done` gets the write as stored (with
    /// its numbers), a `SharedWriteRefusal`, or the error.
    func commit(_ write: StoreWrite, _ done: @escaping @Sendable (Result<StoreWrite, Error>) -> Void)
    /// Starts following the record: `events` gets what any server committed after the
    /// snapshot, in commit order and once each; `online` gets who is online on every server
    /// whenever that may have changed (and at least every few seconds).
    func follow(events: @escaping @Sendable ([SharedEvent]) -> Void,
                online: @escaping @Sendable ([UserLogRecord], _ blocked: [String: Duration]) -> Void,
                forwarded: @escaping @Sendable (String, Forwarded) -> Void)
    /// Passes something to whichever server `user` is online on (best effort: a wake-up
    /// message, lost if that server is not listening at that moment).
    func forward(to user: String, _ what: Forwarded)
    /// Stops following, takes this server's users off the record and ends its lease.
    func stop() async
}

/// One message of an RDM answer: from a room, or a broadcast.
public struct HistoryItem: Sendable, Equatable {
    public let room: Int?
    public let record: MessageRecord

    public init(room: Int?, record: MessageRecord) {
        self.room = room
        self.record = record
    }

    /// The `ITEM` frame of the answer.
    public var frame: ServerFrame {
        let r = record
        if let room { return .item(kind: "S", fields: [String(room), String(r.number), r.timestamp, r.user, r.message]) }
        return .item(kind: "B", fields: [String(r.number), r.timestamp, r.user, r.message])
    }
}

/// An RDM answer being read, a message at a time.
public protocol HistoryCursor: AnyObject {
    /// The next message, nil at the end.
    func next() throws -> HistoryItem?
}
