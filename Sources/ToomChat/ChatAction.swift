import ToomCore

/// One connection as the rules know it. The shell hands out the numbers.
public struct SessionID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let value: Int
    public init(_ value: Int) { self.value = value }
    public static func < (a: SessionID, b: SessionID) -> Bool { a.value < b.value }
    public var description: String { "#\(value)" }
}

/// The time as the rules see it; they have no clock of their own.
public struct Moment: Sendable, Equatable {
    /// A clock that never goes back (blocks, flood control, timeouts).
    public var monotonic: Duration
    /// Seconds since 1970, for the timestamps written to the logs.
    public var wall: Int64

    public init(monotonic: Duration, wall: Int64) {
        self.monotonic = monotonic
        self.wall = wall
    }
}

/// A change to the record (spec §3). What follows a write in the same step happens only
/// once the write is done; if it fails, the rules are told (`ChatCore.writeFailed`).
public enum StoreWrite: Sendable, Equatable {
    case broadcast(MessageRecord, time: Int64)
    case roomMessage(room: Int, MessageRecord, time: Int64)
    case room(RoomRecord)
    /// A login: the `userlog.txt` line.
    case login(UserLogRecord)
    /// A logout: the user's line goes and the rest are renumbered. Cannot fail: the file
    /// follows later, and many logouts share one rewrite.
    case logout(user: String)
    /// A shared store only: an account blocked for `seconds` (spec §4), which holds on
    /// every server; and a block lifted by the operator. The file store keeps blocks in
    /// the rules' memory and never sees these.
    case block(user: String, seconds: Double)
    case unblock(user: String)
}

/// An RDM to answer from the store: the messages after `after` among the first `through`
/// of each log, as `ITEM` frames, then `OK RDM <count>`. The numbers are taken when the
/// command runs, so messages stored while the answer is read are not in it.
public struct HistoryRequest: Sendable, Equatable {
    public struct Source: Sendable, Equatable {
        /// nil: the broadcast log.
        public let room: Int?
        public let through: Int

        public init(room: Int?, through: Int) {
            self.room = room
            self.through = through
        }
    }

    public let user: String
    public let after: Int64
    public let sources: [Source]

    public init(user: String, after: Int64, sources: [Source]) {
        self.user = user
        self.after = after
        self.sources = sources
    }
}

/// What must happen after one input, in order.
public enum ChatAction: Sendable, Equatable {
    /// Frames for one session: a reply, or an event.
    case send(SessionID, [ServerFrame])
    /// One frame for many sessions: a live delivery. Never includes its sender.
    case deliver([SessionID], ServerFrame)
    /// A durable write; the actions after it wait for it.
    case write(StoreWrite, by: SessionID?)
    /// Event lines for the server's terminal (spec §5).
    case print([String])
    /// Close the session's connection once what was sent to it has gone.
    case close(SessionID)
    /// Check a password off the event loops, then call `ChatCore.passwordChecked`.
    /// Frames from the session wait meanwhile.
    case verifyPassword(SessionID, candidate: String, stored: StoredPassword)
    /// Answer RDM from the store, streamed.
    case readHistory(SessionID, HistoryRequest)
    /// Flood control: the frame was not taken; offer it again at `until`. Frames after it wait.
    case hold(SessionID, until: Duration)
    /// Call `ChatCore.loginDeadline` for the session at this time.
    case loginDeadline(SessionID, at: Duration)
    /// The session logged in.
    case loggedIn(SessionID, user: String)
    /// Frames for a user online on another server (a shared store only): an `UPD` offer.
    case forward(user: String, [ServerFrame])
    /// What the server's UDP port knows of sessions and transfers (spec §12).
    case rendezvous(RendezvousChange)
}

/// Changes to what the server's UDP port accepts: a session's registrations, and the
/// transfers it may relay.
public enum RendezvousChange: Sendable, Equatable {
    /// A `p2p` session logged in: its client registers with this id, authenticated with this secret.
    case open(SessionID, registration: UInt64, secret: [UInt8])
    /// The session ended: its registration and every relay it was part of go.
    case close(SessionID)
    /// The server introduced a transfer between two sessions: it may relay it.
    case introduce(transfer: UInt64, presenter: SessionID, audience: SessionID)
}

/// The rules' settings: spec §4 and §8, and the login limits.
public struct ChatSettings: Sendable {
    public var attempts: Int
    public var blockDuration: Duration
    public var loginTimeout: Duration
    /// Failed logins from one address within `addressWindow` that refuse it; 0 turns this off.
    public var addressFailures: Int
    public var addressWindow: Duration
    public var addressBlockDuration: Duration
    /// Messages a second per user once the burst is spent; 0 turns flood control off.
    public var messageRate: Double
    public var messageBurst: Int
    /// The server listens for UDP on its port (spec §12): `p2p` can be granted.
    public var rendezvous: Bool
    /// The server relays transfers that find no direct path (`--relay-rate` above 0).
    public var relay: Bool

    public init(attempts: Int, blockDuration: Duration = .seconds(10), loginTimeout: Duration = .seconds(60),
                addressFailures: Int = 20, addressWindow: Duration = .seconds(60),
                addressBlockDuration: Duration = .seconds(60),
                messageRate: Double = ChatSettings.defaultMessageRate, messageBurst: Int = ChatSettings.defaultMessageBurst,
                rendezvous: Bool = false, relay: Bool = false) {
        self.attempts = attempts
        self.blockDuration = blockDuration
        self.loginTimeout = loginTimeout
        self.addressFailures = addressFailures
        self.addressWindow = addressWindow
        self.addressBlockDuration = addressBlockDuration
        self.messageRate = messageRate
        self.messageBurst = messageBurst
        self.rendezvous = rendezvous
        self.relay = relay
    }

    /// Far above what a person types (one message a second is fast), so only scripts meet it.
    public static let defaultMessageRate: Double = 10
    public static let defaultMessageBurst = 40
}

/// What the rules start from: the numbering and rooms the store recovered.
public struct ChatSnapshot: Sendable {
    public var lastBroadcast: Int
    public var rooms: [(room: RoomRecord, lastMessage: Int)]
    /// The record is shared by several servers (spec §11): the store numbers messages and
    /// rooms when it commits (`ChatCore.committed`), and live deliveries come from what any
    /// server committed, in commit order (`ChatCore.arrived`).
    public var shared: Bool

    public init(lastBroadcast: Int = 0, rooms: [(room: RoomRecord, lastMessage: Int)] = [], shared: Bool = false) {
        self.lastBroadcast = lastBroadcast
        self.rooms = rooms
        self.shared = shared
    }
}

/// What a shared store tells every server: a message or a room that some server committed,
/// in commit order, with the number the store gave it.
public enum SharedEvent: Sendable, Equatable {
    case broadcast(MessageRecord)
    case roomMessage(room: Int, MessageRecord)
    case room(RoomRecord)
}

/// A write that a shared store refused because another server got there first.
public enum SharedWriteRefusal: Error, Sendable, Equatable {
    /// The user is online on some server.
    case alreadyOnline
    /// A room with the same members exists, with this id.
    case roomExists(Int)
}
