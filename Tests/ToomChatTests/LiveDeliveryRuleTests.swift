import Testing
import ToomChat
import ToomCore

/// Spec §8: who receives which delivery, in what order, and flood control.
@Suite struct LiveDeliveryRuleTests {
    @Test func aBroadcastReachesEveryOtherLiveUserOnceAndNotItsSender() {
        var chat = TestChat()
        let hans = chat.login("hans")
        let yoda = chat.login("yoda")
        let quiet = chat.login("luke", live: false)
        let waiting = chat.connect()
        chat.send(waiting, "HELLO\t1\ttoom\tlive")
        let ts = chat.timestamp
        let actions = chat.send(hans, "BCM\thello")
        #expect(actions.deliveries == [.deliver([yoda], .event(kind: "B", fields: ["1", ts, "hans", "hello"]))])
        #expect(actions.frames(to: hans) == [.ok(kind: "BCM", fields: ["1", ts])])
        #expect(actions.frames(to: quiet).isEmpty)
        #expect(actions.frames(to: waiting).isEmpty, "not logged in yet")
    }

    @Test func deliveriesComeInNumberOrder() {
        var chat = TestChat()
        let hans = chat.login("hans")
        let yoda = chat.login("yoda")
        let luke = chat.login("luke")
        var seen: [String] = []
        for (sender, text) in [(hans, "a"), (luke, "b"), (hans, "c"), (luke, "d")] {
            for frame in chat.send(sender, "BCM\t" + text).frames(to: yoda) {
                if case .event(kind: "B", fields: let fields) = frame { seen.append(fields[0] + fields[3]) }
            }
        }
        #expect(seen == ["1a", "2b", "3c", "4d"])
    }

    @Test func aRoomMessageReachesItsOtherLiveMembersOnly() {
        var chat = TestChat()
        let hans = chat.login("hans")
        let yoda = chat.login("yoda")
        let luke = chat.login("luke")
        chat.send(hans, "SRB\tyoda")
        let ts = chat.timestamp
        let actions = chat.send(yoda, "SRM\t1\tmeet at the hangar")
        #expect(actions.deliveries == [.deliver([hans], .event(kind: "S", fields: ["1", "1", ts, "yoda", "meet at the hangar"]))])
        #expect(actions.frames(to: luke).isEmpty)
    }

    @Test func membersOfANewRoomWhoAreOnlineAreToldWithTheSrbSentence() {
        var chat = TestChat()
        let hans = chat.login("hans")
        let yoda = chat.login("yoda")
        let luke = chat.login("luke", live: false)
        let actions = chat.send(hans, "SRB\tyoda\tluke")
        #expect(actions.deliveries == [.deliver([yoda], .event(kind: "SRB", fields: ["1", "hans", "yoda", "luke"]))])
        #expect(ReplyRenderer.lines(for: [.ok(kind: "SRB", fields: ["1", "hans", "yoda", "luke"])])
                == ["Separate chat room has been created, room ID: 1, users in this room: hans, yoda, luke"])
        #expect(actions.frames(to: luke).isEmpty)
    }

    @Test func aClientThatDidNotAskReceivesNothingUnsolicitedButOffersAndNotices() {
        var chat = TestChat()
        let v1 = chat.login("yoda", live: false)
        let hans = chat.login("hans")
        var received: [ServerFrame] = []
        for frame in ["BCM\tx", "SRB\tyoda", "SRM\t1\ty"] { received += chat.send(hans, frame).frames(to: v1) }
        #expect(received.isEmpty)
        #expect(chat.send(hans, "UPD\tyoda\tf").frames(to: v1).count == 1, "an upload offer is not a delivery")
    }

    @Test func aFlooderIsHeldBackNeverRefused() {
        var chat = TestChat(messageRate: 2, messageBurst: 3)
        let hans = chat.login("hans")
        for n in 1...3 { #expect(chat.send(hans, "BCM\t\(n)").writes.count == 1) }
        // Commands that reach nobody's screen are not metered.
        #expect(chat.send(hans, "ATU").frames(to: hans).count == 1)
        let held = chat.send(hans, "BCM\t4")
        #expect(held == [.hold(hans, until: chat.now.monotonic + .milliseconds(500))])
        chat.advance(.milliseconds(499))
        #expect(chat.send(hans, "BCM\t4") == [.hold(hans, until: chat.now.monotonic + .milliseconds(1))])
        chat.advance(.milliseconds(1))
        #expect(chat.send(hans, "BCM\t4").frames(to: hans).first == .ok(kind: "BCM", fields: ["4", chat.timestamp]))
        // Others are not slowed by it.
        let yoda = chat.login("yoda")
        for n in 1...3 { #expect(chat.send(yoda, "BCM\tfree \(n)").writes.count == 1) }
        // After a quiet while the burst is back, no more.
        chat.advance(.seconds(60))
        for n in 1...3 { #expect(chat.send(hans, "BCM\t\(n)").writes.count == 1) }
        guard case .hold? = chat.send(hans, "BCM\tx").first else { Issue.record("the burst is at most 3"); return }
    }

    @Test func noRateMeansNoFloodControl() {
        var chat = TestChat(messageRate: 0, messageBurst: 1)
        let hans = chat.login("hans")
        for n in 1...100 { #expect(chat.send(hans, "BCM\t\(n)").writes.count == 1) }
    }
}
