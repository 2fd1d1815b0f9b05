import Testing
import ToomChat
import ToomCore

/// The rules with a store that several servers share (spec §11): the store numbers at
/// commit, the reply that says "stored" follows the commit, and live deliveries come from
/// what any server committed, once each, never to the author.
@Suite struct SharedStoreRuleTests {
    static func chat() -> TestChat { TestChat(snapshot: ChatSnapshot(lastBroadcast: 7, shared: true)) }

    /// Logs in through the commit of the login, as the engine would.
    static func login(_ chat: inout TestChat, _ user: String) -> SessionID {
        let id = chat.connect()
        chat.send(id, "HELLO\t1\ttoom\tlive")
        chat.send(id, "USER\t\(user)")
        let actions = chat.send(id, "PASS\t\(TestChat.accounts[user]!)\t6000")
        #expect(actions.frames(to: id).isEmpty, "nothing is said before the login is committed")
        guard case .write(let write, let by)? = actions.first, actions.count == 1 else {
            Issue.record("expected only the login's write, got \(actions)")
            return id
        }
        let committed = chat.core.committed(write, by: by, at: chat.now)
        #expect(committed.frames(to: id) == [.ok(kind: "LOGIN", fields: [user])])
        return id
    }

    @Test func aBroadcastIsNumberedByTheStoreAndAnsweredAfterTheCommit() {
        var chat = Self.chat()
        let hans = Self.login(&chat, "hans")
        let yoda = Self.login(&chat, "yoda")
        let ts = chat.timestamp
        let actions = chat.send(hans, "BCM\thello")
        #expect(actions == [.write(.broadcast(MessageRecord(number: 0, timestamp: ts, user: "hans", message: "hello"),
                                              time: chat.now.wall), by: hans)])
        // Another server committed #8 meanwhile; this one is #9.
        let stored = MessageRecord(number: 9, timestamp: ts, user: "hans", message: "hello")
        let reply = chat.core.committed(.broadcast(stored, time: chat.now.wall), by: hans, at: chat.now)
        #expect(reply.frames(to: hans) == [.ok(kind: "BCM", fields: ["9", ts])])
        #expect(reply.frames(to: yoda).isEmpty, "deliveries come from the feed")
        let feed = chat.core.arrived([.broadcast(MessageRecord(number: 8, timestamp: ts, user: "vader", message: "first")), .broadcast(stored)],
                                     at: chat.now)
        #expect(feed.frames(to: yoda) == [.event(kind: "B", fields: ["8", ts, "vader", "first"]),
                                          .event(kind: "B", fields: ["9", ts, "hans", "hello"])])
        #expect(feed.frames(to: hans) == [.event(kind: "B", fields: ["8", ts, "vader", "first"])], "no copy to the author")
    }

    @Test func usersOfOtherServersCountAsOnline() {
        var chat = Self.chat()
        let hans = Self.login(&chat, "hans")
        chat.core.onlineEverywhere([
            UserLogRecord(sequence: 1, timestamp: "1 Jun 2022 21:00:00", user: "hans", address: "10.0.0.1", udpPort: 6000),
            UserLogRecord(sequence: 2, timestamp: "1 Jun 2022 21:00:01", user: "yoda", address: "10.0.0.9", udpPort: 7000),
        ])
        let atu = chat.send(hans, "ATU")
        #expect(atu.frames(to: hans) == [.item(kind: "USER", fields: ["yoda", "10.0.0.9", "7000", "1 Jun 2022 21:00:01"]),
                                         .ok(kind: "ATU", fields: ["1"])])
        // Online elsewhere is for the store to decide, at commit.
        let luke = chat.atPassword("luke")
        guard case .write(let write, _)? = chat.send(luke, "PASS\tforce\t6000").first else {
            Issue.record("no login write")
            return
        }
        let refused = chat.core.refused(write, by: luke, because: .alreadyOnline, at: chat.now)
        #expect(refused.frames(to: luke) == [error(.alreadyLoggedIn, "luke is already logged in")])
        #expect(refused.closes(luke))
        // A room with yoda, who is on another server, is built by the store.
        let srb = chat.send(hans, "SRB\tyoda")
        #expect(srb == [.write(.room(RoomRecord(id: 0, members: ["hans", "yoda"])), by: hans)])
        let built = chat.core.committed(.room(RoomRecord(id: 3, members: ["hans", "yoda"])), by: hans, at: chat.now)
        #expect(built.frames(to: hans) == [.ok(kind: "SRB", fields: ["3", "hans", "yoda"])])
        let exists = chat.core.refused(.room(RoomRecord(id: 0, members: ["hans", "yoda"])), by: hans, because: .roomExists(3), at: chat.now)
        #expect(exists.frames(to: hans) == [error(.roomExists, "a separate room (ID: 3) already created for these users")])
    }

    @Test func aBlockHoldsEverywhereAndALiftElsewhereReachesIt() {
        var chat = Self.chat()
        let vader = chat.atPassword("vader")
        var last: [ChatAction] = []
        for _ in 0..<3 { last = chat.send(vader, "PASS\twrong\t6000") }
        #expect(last.writes == [.block(user: "vader", seconds: 10)], "the block is written for the other servers")
        // The store has not seen it yet: it holds here.
        chat.core.onlineEverywhere([], blocked: [:], at: chat.now)
        #expect(chat.core.blocked(at: chat.now).map(\.user) == ["vader"])
        // A block made on another server holds here too.
        chat.core.onlineEverywhere([], blocked: ["vader": .seconds(8), "luke": .seconds(5)], at: chat.now)
        #expect(chat.core.blocked(at: chat.now).map(\.user) == ["luke", "vader"])
        // Lifted through another server: gone from the store, gone here.
        chat.advance(.seconds(4))
        chat.core.onlineEverywhere([], blocked: [:], at: chat.now)
        #expect(chat.core.blocked(at: chat.now).isEmpty)
    }

    @Test func aLoginCommittedAfterItsSessionWentIsUndone() {
        var chat = Self.chat()
        let luke = chat.atPassword("luke")
        guard case .write(let write, _)? = chat.send(luke, "PASS\tforce\t6000").first else {
            Issue.record("no login write")
            return
        }
        _ = chat.core.disconnected(luke, at: chat.now)
        #expect(chat.core.committed(write, by: luke, at: chat.now) == [.write(.logout(user: "luke"), by: nil)])
    }
}
