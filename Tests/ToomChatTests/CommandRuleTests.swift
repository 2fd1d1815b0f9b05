import Testing
import ToomChat
import ToomCore

/// Spec §5, every command and error string, with a test clock.
@Suite struct CommandRuleTests {
    @Test func broadcastsAreNumberedFromTheRecordAndWrittenBeforeTheReply() {
        var chat = TestChat(snapshot: ChatSnapshot(lastBroadcast: 41))
        let hans = chat.login("hans")
        let ts = chat.timestamp
        let record = MessageRecord(number: 42, timestamp: ts, user: "hans", message: "Hello; everyone")
        #expect(chat.send(hans, "BCM\tHello; everyone") == [
            .write(.broadcast(record, time: chat.now.wall), by: hans),
            .send(hans, [.ok(kind: "BCM", fields: ["42", ts])]),
            .deliver([], .event(kind: "B", fields: ["42", ts, "hans", "Hello; everyone"])),
            .print(["hans broadcasted BCM #42 \"Hello; everyone\" at \(ts)."]),
        ])
        #expect(chat.send(hans, "BCM\tagain").writes.first == .broadcast(
            MessageRecord(number: 43, timestamp: ts, user: "hans", message: "again"), time: chat.now.wall))
    }

    @Test func badCommandsGetTheirErrors() {
        var chat = TestChat()
        let hans = chat.login("hans")
        let cases: [(String, ServerFrame)] = [
            ("bcm\thi", error(.invalidCommand, "Error. Invalid command!")),
            ("HELLO\t1", error(.invalidCommand, "Error. Invalid command!")),
            ("BCM", error(.usage, "Usage: BCM <message>")),
            ("BCM\t   ", error(.usage, "Usage: BCM <message>")),
            ("ATU\tx", error(.usage, "Usage: ATU")),
            ("SRB", error(.usage, "Usage: SRB <username1> [username2 ...]")),
            ("SRM\t1", error(.usage, "Usage: SRM <roomID> <message>")),
            ("RDM\tb", error(.usage, "Usage: RDM <b|s> <timestamp>, e.g. RDM b 1 Jun 2022 21:30:04")),
            ("OUT\tnow", error(.usage, "Usage: OUT")),
            ("UPD\tyoda", error(.usage, "Usage: UPD <username> <filename>")),
            ("BCM\ta\u{1B}[2J", error(.invalidArgument, "Error. Control characters (tabs, escapes, line breaks) are not allowed")),
            ("BCM\t" + String(repeating: "x", count: 4097), error(.invalidArgument, "Error. Message is too long (at most 4096 bytes)")),
            ("RDM\tx\t1 Jun 2022 21:30:04", error(.invalidArgument, "Error. RDM message type must be 'b' (broadcast) or 's' (separate room), not 'x'. Usage: RDM <b|s> <timestamp>, e.g. RDM b 1 Jun 2022 21:30:04")),
            ("RDM\tb\t31 Feb 2022 21:30:04", error(.invalidArgument, "Error. Invalid timestamp '31 Feb 2022 21:30:04': expected D Mon YYYY HH:MM:SS (e.g. 1 Jun 2022 21:30:04)")),
        ]
        for (frame, reply) in cases {
            #expect(chat.send(hans, frame) == [.send(hans, [reply])], "\(frame)")
        }
    }

    @Test func atuListsTheOthersInLoginOrder() {
        var chat = TestChat()
        let hans = chat.login("hans", udpPort: 6001)
        #expect(chat.send(hans, "ATU") == [.send(hans, [.ok(kind: "ATU", fields: ["0"])]),
                                           .print(["hans issued ATU command", "no other active user"])])
        let since = chat.timestamp
        _ = chat.login("yoda", udpPort: 6002, from: "10.0.0.2")
        _ = chat.login("luke", udpPort: 6003, from: "10.0.0.3")
        #expect(chat.send(hans, "ATU") == [
            .send(hans, [.item(kind: "USER", fields: ["yoda", "10.0.0.2", "6002", since]),
                         .item(kind: "USER", fields: ["luke", "10.0.0.3", "6003", since]),
                         .ok(kind: "ATU", fields: ["2"])]),
            .print(["hans issued ATU command", "yoda, 10.0.0.2, 6002, active since \(since).",
                    "luke, 10.0.0.3, 6003, active since \(since)."]),
        ])
    }

    @Test func srbChecksItsMembersAndNeverBuildsTheSameRoomTwice() {
        var chat = TestChat()
        let hans = chat.login("hans")
        _ = chat.login("yoda")
        func srb(_ args: String) -> [ChatAction] { chat.send(hans, "SRB\t" + args) }
        #expect(srb("yoda\thans").frames(to: hans) == [error(.selfReference, "You cannot build a separate room with yourself")])
        #expect(srb("vader\tghost\tyoda") == [
            .send(hans, [error(.noSuchUser, "vader is offline", "ghost does not exist")]),
            .print(["hans issued SRB command", "vader is offline", "ghost does not exist"])])
        #expect(srb("vader").frames(to: hans) == [error(.offline, "vader is offline")])
        #expect(srb("yoda\tyoda") == [
            .write(.room(RoomRecord(id: 1, members: ["hans", "yoda"])), by: hans),
            .send(hans, [.ok(kind: "SRB", fields: ["1", "hans", "yoda"])]),
            .deliver([SessionID(2)], .event(kind: "SRB", fields: ["1", "hans", "yoda"])),
            .print(["hans issued SRB command", "Separate chat room has been created, room ID: 1, users in this room: hans, yoda"])])
        #expect(srb("yoda").frames(to: hans) == [error(.roomExists, "a separate room (ID: 1) already created for these users")])
        _ = chat.login("luke")
        #expect(srb("luke\tyoda").frames(to: hans) == [.ok(kind: "SRB", fields: ["2", "hans", "luke", "yoda"])])
    }

    @Test func srmNeedsARoomItsSenderIsIn() {
        var chat = TestChat(snapshot: ChatSnapshot(rooms: [(RoomRecord(id: 4, members: ["hans", "yoda"]), 7)]))
        let hans = chat.login("hans")
        let luke = chat.login("luke")
        #expect(chat.send(hans, "SRM\tabc\tx").frames(to: hans) == [error(.noSuchRoom, "The separate room does not exist")])
        #expect(chat.send(hans, "SRM\t+4\tx").frames(to: hans) == [error(.noSuchRoom, "The separate room does not exist")])
        #expect(chat.send(hans, "SRM\t5\tx").frames(to: hans) == [error(.noSuchRoom, "The separate room does not exist")])
        #expect(chat.send(luke, "SRM\t4\tx").frames(to: luke) == [error(.notMember, "You are not in this separate room chat")])
        let ts = chat.timestamp
        let record = MessageRecord(number: 8, timestamp: ts, user: "hans", message: "hi room")
        #expect(chat.send(hans, "SRM\t4\thi room") == [
            .write(.roomMessage(room: 4, record, time: chat.now.wall), by: hans),
            .send(hans, [.ok(kind: "SRM", fields: ["4", "8", ts])]),
            .deliver([], .event(kind: "S", fields: ["4", "8", ts, "hans", "hi room"])),
            .print(["hans issued a message in separate room 4: #8; \(ts); hans; hi room"])])
        // Rooms built after a restart continue the numbering of ids.
        _ = chat.login("yoda")
        #expect(chat.send(hans, "SRB\tluke").frames(to: hans) == [.ok(kind: "SRB", fields: ["5", "hans", "luke"])])
    }

    @Test func rdmAsksTheStoreForWhatWasThereWhenItWasAsked() {
        var chat = TestChat(snapshot: ChatSnapshot(lastBroadcast: 3, rooms: [
            (RoomRecord(id: 1, members: ["yoda", "luke"]), 5), (RoomRecord(id: 2, members: ["hans", "yoda"]), 0),
            (RoomRecord(id: 3, members: ["hans", "luke"]), 2)]))
        let hans = chat.login("hans")
        let after = Timestamp.parse("1 Jun 2022 21:00:00")!
        #expect(chat.send(hans, "RDM\tb\t1 Jun 2022 21:00:00") == [
            .print(["hans issued RDM command"]),
            .readHistory(hans, HistoryRequest(user: "hans", after: after, sources: [.init(room: nil, through: 3)]))])
        // Rooms in creation order; a room with no message has nothing to read.
        #expect(chat.send(hans, "RDM\ts\t01 Jun 2022 21:00:00") == [
            .print(["hans issued RDM command"]),
            .readHistory(hans, HistoryRequest(user: "hans", after: after, sources: [.init(room: 3, through: 2)]))])
    }

    @Test func outLogsOutAndRenumbersWhoIsOnline() {
        var chat = TestChat()
        let hans = chat.login("hans")
        _ = chat.login("yoda")
        _ = chat.login("luke")
        #expect(chat.send(hans, "OUT") == [
            .write(.logout(user: "hans"), by: nil), .send(hans, [.ok(kind: "OUT", fields: ["hans"])]),
            .print(["hans logout"]), .close(hans)])
        #expect(chat.core.onlineUsers.map { "\($0.sequence) \($0.user)" } == ["1 yoda", "2 luke"])
        #expect(chat.core.disconnected(hans, at: chat.now) == [])
    }

    @Test func aDroppedConnectionLogsItsUserOut() {
        var chat = TestChat()
        let hans = chat.login("hans")
        #expect(chat.core.disconnected(hans, at: chat.now) == [.write(.logout(user: "hans"), by: nil), .print(["hans disconnected"])])
        #expect(chat.core.onlineUsers.isEmpty)
        _ = chat.login("hans")
    }

    @Test func updIntroducesTheAudienceBeforeAnsweringThePresenter() {
        var chat = TestChat()
        let hans = chat.login("hans")
        let yoda = chat.login("yoda", udpPort: 6002, from: "10.0.0.2")
        #expect(chat.send(hans, "UPD\thans\tv.mp4").frames(to: hans) == [error(.selfReference, "You cannot upload a file to yourself")])
        #expect(chat.send(hans, "UPD\tghost\tv.mp4").frames(to: hans) == [error(.noSuchUser, "ghost does not exist")])
        #expect(chat.send(hans, "UPD\tvader\tv.mp4").frames(to: hans) == [error(.offline, "vader is offline")])
        #expect(chat.send(hans, "UPD\tyoda\t../x").frames(to: hans)
                == [error(.invalidArgument, "Error. ../x is not a plain file name: '/', '..' and control characters are not allowed")])
        let actions = chat.send(hans, "UDP\tyoda\tv.mp4")
        guard actions.count == 2, case .send(yoda, let toAudience) = actions[0], case .send(hans, let toPresenter) = actions[1],
              case .event(kind: "OFFER", fields: let offer)? = toAudience.first,
              case .ok(kind: "UPD", fields: let reply)? = toPresenter.first else {
            Issue.record("unexpected \(actions)")
            return
        }
        #expect(offer.prefix(2) == ["hans", "v.mp4"])
        #expect(reply.prefix(3) == ["yoda", "10.0.0.2", "6002"])
        #expect(offer[2] == reply[3] && TransferToken(hex: reply[3]) != nil)
        #expect(offer[3] == reply[4] && reply[4].utf8.count == 64 && reply[4] != reply[3] + reply[3])
        #expect(chat.send(hans, "UPD\tyoda\tv.mp4").frames(to: hans).first != .ok(kind: "UPD", fields: reply), "tokens are one-time")
    }

    @Test func aFailedWriteRecordsNothingAndTheNumberIsUsedAgain() {
        var chat = TestChat()
        let hans = chat.login("hans")
        _ = chat.login("yoda")
        let bcm = chat.send(hans, "BCM\tlost")
        #expect(chat.core.writeFailed(bcm.writes[0], by: hans, error: "write messagelog.txt: No space left on device", at: chat.now) == [
            .print(["error: write messagelog.txt: No space left on device"]),
            .send(hans, [error(.storage, "Error. The server could not store that; nothing was recorded")])])
        #expect(chat.send(hans, "BCM\tkept").frames(to: hans).first == .ok(kind: "BCM", fields: ["1", chat.timestamp]))

        let srb = chat.send(hans, "SRB\tyoda")
        _ = chat.core.writeFailed(srb.writes[0], by: hans, error: "disk", at: chat.now)
        #expect(chat.send(hans, "SRB\tyoda").frames(to: hans) == [.ok(kind: "SRB", fields: ["1", "hans", "yoda"])])
        let srm = chat.send(hans, "SRM\t1\tlost")
        _ = chat.core.writeFailed(srm.writes[0], by: hans, error: "disk", at: chat.now)
        #expect(chat.send(hans, "SRM\t1\tkept").frames(to: hans) == [.ok(kind: "SRM", fields: ["1", "1", chat.timestamp])])

        let luke = chat.connect()
        chat.send(luke, "HELLO\t1")
        chat.send(luke, "USER\tluke")
        let login = chat.send(luke, "PASS\tforce\t6000")
        #expect(chat.core.writeFailed(login.writes[0], by: luke, error: "disk", at: chat.now).frames(to: luke)
                == [error(.storage, "The server could not record your login; please try again later")])
        #expect(!chat.core.onlineUsers.contains { $0.user == "luke" })
        #expect(chat.send(luke, "PASS\tforce\t6000").frames(to: luke) == [.ok(kind: "LOGIN", fields: ["luke"])])
    }

    @Test func theOperatorKicksAUser() {
        var chat = TestChat()
        let hans = chat.login("hans")
        #expect(chat.core.kick("hans", at: chat.now) == [
            .write(.logout(user: "hans"), by: nil),
            .send(hans, [.event(kind: "KICKED", fields: ["You have been disconnected by the server operator"])]),
            .close(hans), .print(["hans disconnected by the operator"])])
        #expect(chat.core.kick("hans", at: chat.now) == nil)
        #expect(chat.send(hans, "ATU") == [])
    }

    @Test func aShutdownTellsEverySessionAndAnswersNothingMore() {
        var chat = TestChat()
        let waiting = chat.connect()
        let hans = chat.login("hans")
        #expect(chat.core.shutdown(at: chat.now) == [
            .send(waiting, [.event(kind: "SHUTDOWN", fields: ["The server is shutting down. Goodbye!"])]), .close(waiting),
            .write(.logout(user: "hans"), by: nil),
            .send(hans, [.event(kind: "SHUTDOWN", fields: ["The server is shutting down. Goodbye!"])]), .close(hans)])
        #expect(chat.core.onlineUsers.isEmpty)
        #expect(chat.core.connect(SessionID(99), address: "10.0.0.9", at: chat.now) == [.close(SessionID(99))])
    }

    @Test func aClientThatDoesNotReadIsCutOff() {
        var chat = TestChat()
        let hans = chat.login("hans")
        #expect(chat.core.tooSlow(hans, unread: 1_048_600, at: chat.now) == [
            .write(.logout(user: "hans"), by: nil),
            .send(hans, [.event(kind: "TOO_SLOW", fields: ["You were disconnected: your client left 1048600 bytes unread"])]),
            .close(hans), .print(["hans disconnected: not reading what it is sent (1048600 bytes unread)"])])
        #expect(chat.core.tooSlow(hans, unread: 1, at: chat.now) == [])
    }
}
