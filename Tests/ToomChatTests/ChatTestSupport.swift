import Testing
import ToomChat
import ToomCore

/// A chat core driven by a test clock: frames in, actions out, no sockets and no waiting.
struct TestChat {
    static let accounts = ["hans": "falcon*solo", "yoda": "wise@!man", "vader": "sithlord**", "luke": "force"]
    static let start = Timestamp.parse("1 Jun 2022 21:30:04")!

    var core: ChatCore
    var now = Moment(monotonic: .seconds(1_000), wall: TestChat.start)
    private var nextSession = 1

    init(attempts: Int = 3, addressFailures: Int = 0, messageRate: Double = 0, messageBurst: Int = 5,
         snapshot: ChatSnapshot = ChatSnapshot(), rendezvous: Bool = false, relay: Bool = false) {
        var random = Counter()
        _ = random.next()
        core = ChatCore(settings: ChatSettings(attempts: attempts, addressFailures: addressFailures,
                                               messageRate: messageRate, messageBurst: messageBurst,
                                               rendezvous: rendezvous, relay: relay),
                        accounts: Self.accounts.mapValues { .plain($0) }, snapshot: snapshot, random: random)
    }

    /// Deterministic "random" numbers, so tokens are predictable.
    struct Counter: RandomNumberGenerator {
        var value: UInt64 = 0x1234
        mutating func next() -> UInt64 {
            value &+= 0x9E37_79B9_7F4A_7C15
            return value
        }
    }

    mutating func advance(_ duration: Duration) {
        now.monotonic += duration
        now.wall += duration.components.seconds
    }

    mutating func connect(from address: String = "10.0.0.1") -> SessionID {
        let id = SessionID(nextSession)
        nextSession += 1
        let actions = core.connect(id, address: address, at: now)
        #expect(actions == [.loginDeadline(id, at: now.monotonic + core.settings.loginTimeout)])
        return id
    }

    /// Sends one frame (fields separated by tabs). A password check is answered at once, as
    /// the server's thread pool would.
    @discardableResult
    mutating func send(_ id: SessionID, _ frame: String) -> [ChatAction] {
        var actions = core.receive(frame.split(separator: "\t", omittingEmptySubsequences: false), from: id, at: now)
        if case .verifyPassword(let who, let candidate, let stored)? = actions.last {
            actions.removeLast()
            actions += core.passwordChecked(who, matches: stored == .plain(candidate), at: now)
        }
        return actions
    }

    /// Connects, greets and names the account: the session waits for its password.
    mutating func atPassword(_ user: String, from address: String = "10.0.0.1") -> SessionID {
        let id = connect(from: address)
        send(id, "HELLO\t1")
        #expect(send(id, "USER\t\(user)") == [.send(id, [.ok(kind: "USER", fields: [])])])
        return id
    }

    /// Connects and logs in; returns the session.
    mutating func login(_ user: String, udpPort: Int = 6000, live: Bool = true, from address: String = "10.0.0.1") -> SessionID {
        let id = connect(from: address)
        send(id, live ? "HELLO\t1\ttoom\tlive" : "HELLO\t1\ttoom")
        send(id, "USER\t\(user)")
        let actions = send(id, "PASS\t\(Self.accounts[user]!)\t\(udpPort)")
        #expect(actions.contains(.send(id, [.ok(kind: "LOGIN", fields: [user])])))
        return id
    }

    var timestamp: String { Timestamp.format(now.wall) }
}

extension [ChatAction] {
    /// The frames sent to one session, in order.
    func frames(to id: SessionID) -> [ServerFrame] {
        flatMap { action -> [ServerFrame] in
            switch action {
            case .send(let to, let frames) where to == id: return frames
            case .deliver(let ids, let frame) where ids.contains(id): return [frame]
            default: return []
            }
        }
    }

    var printed: [String] {
        flatMap { action -> [String] in
            guard case .print(let lines) = action else { return [] }
            return lines
        }
    }

    var writes: [StoreWrite] {
        compactMap { action -> StoreWrite? in
            guard case .write(let write, _) = action else { return nil }
            return write
        }
    }

    var deliveries: [ChatAction] {
        filter { action in
            guard case .deliver = action else { return false }
            return true
        }
    }

    func closes(_ id: SessionID) -> Bool { contains(.close(id)) }
}

func error(_ code: ErrorCode, _ messages: String...) -> ServerFrame { .error(code: code, messages: messages) }
