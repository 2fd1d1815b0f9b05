import Testing
import ToomChat
import ToomCore

/// Spec §12: what the rules say to `p2p` clients, and what they tell the server's UDP port.
@Suite struct TransferIntroductionTests {
    static let hansKey = String(repeating: "a1", count: 32)
    static let yodaKey = String(repeating: "b2", count: 32)

    /// Logs in with `p2p`, sending `key`; returns the session and its registration.
    private func p2pLogin(_ chat: inout TestChat, _ user: String, key: String, udpPort: Int, from address: String)
        -> (SessionID, registration: UInt64, secret: [UInt8]) {
        let id = chat.connect(from: address)
        #expect(chat.send(id, "HELLO\t1\ttoom\tlive\tp2p").frames(to: id) == [.hello(version: 1, capabilities: ["live", "p2p"])])
        chat.send(id, "USER\t\(user)")
        let actions = chat.send(id, "PASS\t\(TestChat.accounts[user]!)\t\(udpPort)\t\(key)")
        guard case .rendezvous(.open(id, let registration, let secret))? = actions.first(where: {
            if case .rendezvous = $0 { return true } else { return false }
        }) else {
            Issue.record("no registration in \(actions)")
            return (id, 0, [])
        }
        #expect(secret.count == 32)
        let idHex = Hex.encode(withUnsafeBytes(of: registration.bigEndian) { Array($0) })
        #expect(actions.frames(to: id) == [.ok(kind: "LOGIN", fields: [user, idHex, Hex.encode(secret)])])
        return (id, registration, secret)
    }

    @Test func p2pIsGrantedOnlyByAServerWithAUDPPort() {
        var plain = TestChat()
        let id = plain.connect()
        #expect(plain.send(id, "HELLO\t1\ttoom\tp2p").frames(to: id) == [.hello(version: 1, capabilities: [])])
        // Without the capability a fourth PASS field is not a key.
        plain.send(id, "USER\thans")
        #expect(plain.send(id, "PASS\tfalcon*solo\t6000\t\(Self.hansKey)").frames(to: id)
                == [.error(code: .notLoggedIn, messages: ["Please log in first"])])
    }

    @Test func aKeyThatIsNotHexIsRefused() {
        var chat = TestChat(rendezvous: true)
        let id = chat.connect()
        chat.send(id, "HELLO\t1\ttoom\tp2p")
        chat.send(id, "USER\thans")
        #expect(chat.send(id, "PASS\tfalcon*solo\t6000\tnot-a-key").frames(to: id)
                == [.error(code: .invalidArgument, messages: ["The transfer key must be 64 lower-case hex digits"])])
    }

    @Test func anUploadBetweenP2PClientsCarriesKeysCandidatesAndTheRelay() throws {
        var chat = TestChat(rendezvous: true, relay: true)
        let (hans, _, _) = p2pLogin(&chat, "hans", key: Self.hansKey, udpPort: 6001, from: "198.18.0.7")
        let (yoda, _, _) = p2pLogin(&chat, "yoda", key: Self.yodaKey, udpPort: 6002, from: "2001:db8::9")
        let seen = try #require(TransferCandidate("198.51.100.4:40000"))
        let lan = try #require(TransferCandidate("100.64.1.2:6002"))
        chat.core.registered(yoda, candidates: [seen, lan])

        let actions = chat.send(hans, "UPD\tyoda\tv.mp4")
        guard case .event("OFFER", let offer)? = actions.frames(to: yoda).first,
              case .ok("UPD", let reply)? = actions.frames(to: hans).first else {
            Issue.record("\(actions)")
            return
        }
        let token = try #require(TransferToken(hex: offer[2]))
        #expect(actions.first == .rendezvous(.introduce(transfer: token.id, presenter: hans, audience: yoda)))
        // The audience learns the presenter's key and where it is (hans never registered:
        // only the address of his connection with his UDP port).
        #expect(offer == ["hans", "v.mp4", token.hex, "x25519:" + Self.hansKey, "relay", "198.18.0.7:6001"])
        // The presenter learns the audience's key and every candidate, what was seen first.
        #expect(reply == ["yoda", "2001:db8::9", "6002", token.hex, "x25519:" + Self.yodaKey, "relay",
                          "198.51.100.4:40000", "100.64.1.2:6002", "[2001:db8::9]:6002"])
        // No key minted by the server travels.
        #expect(!(offer + reply).contains { $0.count == 64 && !$0.hasPrefix("x25519:") && $0 != Self.hansKey })
    }

    @Test func withoutARelayTheOfferSaysSo() {
        var chat = TestChat(rendezvous: true, relay: false)
        let (hans, _, _) = p2pLogin(&chat, "hans", key: Self.hansKey, udpPort: 6001, from: "198.18.0.7")
        let (yoda, _, _) = p2pLogin(&chat, "yoda", key: Self.yodaKey, udpPort: 6002, from: "198.18.0.8")
        let actions = chat.send(hans, "UPD\tyoda\tv.mp4")
        guard case .ok("UPD", let reply)? = actions.frames(to: hans).first else { Issue.record("\(actions)"); return }
        #expect(reply[5] == "norelay")
        #expect(actions.frames(to: yoda).count == 1)
    }

    /// A v1 client on either side gets the v1 frames, with a key the server made.
    @Test func aV1ClientOnEitherSideGetsWhatItAlwaysGot() {
        var chat = TestChat(rendezvous: true, relay: true)
        let (hans, _, _) = p2pLogin(&chat, "hans", key: Self.hansKey, udpPort: 6001, from: "198.18.0.7")
        let yoda = chat.login("yoda", udpPort: 6002)
        for (from, to, name) in [(hans, yoda, "yoda"), (yoda, hans, "hans")] {
            let actions = chat.send(from, "UPD\t\(name)\tv.mp4")
            guard case .event("OFFER", let offer)? = actions.frames(to: to).first,
                  case .ok("UPD", let reply)? = actions.frames(to: from).first else { Issue.record("\(actions)"); return }
            #expect(offer.count == 4 && offer[3].count == 64 && reply.count == 5 && reply[4] == offer[3])
            #expect(!actions.contains { if case .rendezvous = $0 { true } else { false } })
        }
    }

    @Test func loggingOutClosesTheRegistration() {
        var chat = TestChat(rendezvous: true, relay: true)
        let (hans, _, _) = p2pLogin(&chat, "hans", key: Self.hansKey, udpPort: 6001, from: "198.18.0.7")
        #expect(chat.send(hans, "OUT").first == .rendezvous(.close(hans)))
        let (yoda, _, _) = p2pLogin(&chat, "yoda", key: Self.yodaKey, udpPort: 6002, from: "198.18.0.8")
        #expect(chat.core.kick("yoda", at: chat.now)?.first == .rendezvous(.close(yoda)))
        let (luke, _, _) = p2pLogin(&chat, "luke", key: Self.yodaKey, udpPort: 6003, from: "198.18.0.9")
        #expect(chat.core.disconnected(luke, at: chat.now).first == .rendezvous(.close(luke)))
    }
}
