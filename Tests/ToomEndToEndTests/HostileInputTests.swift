import Foundation
import Testing
import ToomCore

/// Bad input closes only the offending connection, with a one-line reason, and stores nothing.
@Suite struct HostileInputTests {
    @Test func anOversizedFrameClosesOnlyThatConnection() async throws {
        let server = try await TestServer()
        let hans = try await server.login("hans")
        let raw = try RawConnection(port: server.port)
        raw.send(Array(repeating: UInt8(ascii: "A"), count: 100_000))
        let reply = try #require(raw.readLine())
        #expect(reply.hasPrefix("ERR\tbad_frame\t") && reply.contains("\(Wire.maxFrameBytes) bytes"))
        #expect(await raw.isClosedByServer())
        #expect(try await hans.command("BCM still here").first?.hasPrefix("Broadcast message, #1") == true)
    }

    @Test func aLongFrameThatArrivesWholeIsRefused() async throws {
        let server = try await TestServer()
        let raw = try RawConnection(port: server.port)
        try raw.login("hans", "falcon*solo")
        raw.send("BCM\t" + String(repeating: "z", count: Wire.maxFrameBytes + 10) + "\n")
        #expect(raw.readLine()?.hasPrefix("ERR\tbad_frame\t") == true)
        #expect(await raw.isClosedByServer())
        #expect(server.file("messagelog.txt") == "")
    }

    @Test func aRoomListTooLongForOneFrameIsRefusedByTheClient() async throws {
        let server = try await TestServer()
        let hans = try await server.login("hans")
        let names = (1...3000).map { "ghost\($0)" }.joined(separator: " ")
        let reply = try await hans.command("SRB " + names)
        #expect(reply.count == 1 && reply[0].contains("at most 100 members"))
        #expect(try await hans.command("ATU") == [Messages.noOtherActiveUser])
    }

    @Test func invalidUTF8IsRefused() async throws {
        let server = try await TestServer()
        let raw = try RawConnection(port: server.port)
        raw.send([0x48, 0x45, 0x4C, 0x4C, 0x4F, 0x09, 0xFF, 0xFE, 0x0A])
        #expect(raw.readLine()?.hasPrefix("ERR\tbad_frame\tProtocol error: a frame is not valid UTF-8") == true)
        #expect(await raw.isClosedByServer())
    }

    @Test func aVersionMismatchIsExplained() async throws {
        let server = try await TestServer()
        let raw = try RawConnection(port: server.port)
        raw.send("HELLO\t99\tfuture-client\n")
        let reply = try #require(raw.readLine())
        #expect(reply.hasPrefix("ERR\tunsupported_version\t") && reply.contains("version 1"))
        #expect(await raw.isClosedByServer())
    }

    @Test func theFirstFrameMustBeHello() async throws {
        let server = try await TestServer()
        let raw = try RawConnection(port: server.port)
        raw.send("GET / HTTP/1.1\r\n")
        #expect(raw.readLine()?.hasPrefix("ERR\tbad_frame\t") == true)
        #expect(await raw.isClosedByServer())
    }

    @Test func commandsNeedALogin() async throws {
        let server = try await TestServer()
        let raw = try RawConnection(port: server.port)
        raw.send("HELLO\t1\ttest\n")
        #expect(raw.readLine() == "HELLO\t1")
        raw.send("BCM\tsneaky\n")
        #expect(raw.readLine()?.hasPrefix("ERR\tnot_logged_in\t") == true)
        raw.send("USER\thans\n")
        #expect(raw.readLine() == "OK\tUSER")
        raw.send("PASS\tfalcon*solo\tnot-a-port\n")
        #expect(raw.readLine()?.hasPrefix("ERR\tinvalid_argument\t") == true)
        #expect(server.file("messagelog.txt") == "")
    }

    @Test func theServerRevalidatesCommands() async throws {
        let server = try await TestServer()
        let raw = try RawConnection(port: server.port)
        try raw.login("hans", "falcon*solo")
        // Things the real client never sends: controls, empty and oversized messages, extra fields.
        for frame in ["BCM\tclear\u{1B}[2J", "BCM\tnew\u{85}line", "BCM\t", "BCM\ta\tb",
                      "BCM\t" + String(repeating: "y", count: Text.maxMessageBytes + 1),
                      "SRB\t", "RDM\tb\t31 Feb 2022 25:61:61", "RDM\tq\t1 Jun 2022 21:30:04", "NOPE"] {
            raw.send(frame + "\n")
            let reply = try #require(raw.readLine(), "\(frame)")
            #expect(reply.hasPrefix("ERR\t"), "\(frame) -> \(reply)")
        }
        raw.send("BCM\tfine\n")
        #expect(raw.readLine()?.hasPrefix("OK\tBCM\t1\t") == true)
        #expect(server.fileLines("messagelog.txt").count == 1)
    }

    @Test func nulAndNewlineCannotForgeALogLine() async throws {
        let server = try await TestServer()
        let raw = try RawConnection(port: server.port)
        try raw.login("hans", "falcon*solo")
        let refused = "ERR\tinvalid_argument\tError. Control characters (tabs, escapes, line breaks) are not allowed"
        for frame in ["BCM\tnul\u{0}inside", "BCM\tcarriage\rreturn", "SRB\tyo\u{0}da", "RDM\tb\t1 Jun 2022 21:30:04\u{0}"] {
            raw.send(frame + "\n")
            #expect(raw.readLine() == refused, "\(frame.debugDescription)")
        }
        // A newline ends the frame: what follows is a frame of its own, not part of the message.
        raw.send("BCM\tfirst\n2; 1 Jun 2022 21:30:04; yoda; forged\n")
        #expect(raw.readLine()?.hasPrefix("OK\tBCM\t1\t") == true)
        #expect(raw.readLine() == "ERR\tinvalid_command\tError. Invalid command!")
        raw.send("USER\thans\u{0}\n")
        #expect(raw.readLine()?.hasPrefix("ERR\t") == true)
        let lines = server.fileLines("messagelog.txt")
        #expect(lines.count == 1 && lines[0].hasSuffix("; hans; first"), "\(lines)")
        #expect(server.file("messagelog.txt")?.utf8.contains(0) == false)

        // The real client refuses them before sending.
        let yoda = try await server.login("yoda")
        #expect(try await yoda.command("BCM nul\u{0}inside") == ["Error. Control characters (tabs, escapes, line breaks) are not allowed"])
        #expect(server.fileLines("messagelog.txt").count == 1)
        try await server.servesANormalClient()
    }

    @Test func oddRoomIdsAreRoomsThatDoNotExist() async throws {
        let server = try await TestServer()
        let hans = try await server.login("hans")
        let yoda = try await server.login("yoda")
        #expect(try await hans.command("SRB yoda").first?.hasPrefix("Separate chat room has been created, room ID: 1") == true)
        for id in ["99999999999999999999", "-1", "0", "+1", "1.0", "0x1", "\u{661}", "1e3"] {
            #expect(try await hans.command("SRM \(id) hello") == [Messages.noSuchRoom], "room id \(id)")
        }
        let raw = try RawConnection(port: server.port)
        try raw.login("vader", "sithlord**")
        raw.send("SRM\t99999999999999999999999999999999999999\thi\n")
        #expect(raw.readLine() == "ERR\tno_such_room\t\(Messages.noSuchRoom)")
        #expect(try await hans.command("SRM 1 hello").first?.hasPrefix("Separate room message, #1 issued at ") == true)
        let logs = try FileManager.default.contentsOfDirectory(atPath: server.data.path).filter { $0.hasPrefix("SR_") }
        #expect(logs == ["SR_1_messageLog.txt"])
        #expect(try await yoda.command("RDM s 1 Jan 2020 00:00:00").count == 2)
        try await server.servesANormalClient()
    }

    @Test func impossibleTimestampsAreRefusedWithTheFormat() async throws {
        let server = try await TestServer()
        let hans = try await server.login("hans")
        for timestamp in ["31 Feb 2022 25:61:61", "29 Feb 2023 00:00:00", "1 Jun 99999 21:30:04", "0 Jun 2022 21:30:04",
                          "1 Jun 2022 21:30:04 PM", "1 June 2022 21:30:04", "-1 Jun 2022 21:30:04"] {
            #expect(try await hans.command("RDM b \(timestamp)") == ["Error. Invalid timestamp '\(timestamp)': expected \(Timestamp.expectedFormat)"])
        }
        let raw = try RawConnection(port: server.port)
        try raw.login("yoda", "wise@!man")
        raw.send("RDM\ts\t31 Feb 2022 25:61:61\n")
        #expect(raw.readLine() == "ERR\tinvalid_argument\tError. Invalid timestamp '31 Feb 2022 25:61:61': expected \(Timestamp.expectedFormat)")
        #expect(try await hans.command("RDM b 29 Feb 2024 00:00:00") == [Messages.noNewMessage])
        try await server.servesANormalClient()
    }

    @Test func usernamesWithSpacesOrSlashesAreUnknown() async throws {
        let server = try await TestServer()
        let before = try FileManager.default.subpathsOfDirectory(atPath: server.root.url.path).sorted()
        let raw = try RawConnection(port: server.port)
        raw.send("HELLO\t1\ttest\n")
        #expect(raw.readLine() == "HELLO\t1")
        for name in ["luke skywalker", "hans falcon*solo", "../credentials.txt", "hans/..", "/etc/passwd", ".", "..", "\\hans"] {
            raw.send("USER\t\(name)\n")
            #expect(raw.readLine() == "ERR\tinvalid_username\t\(Messages.invalidUsername)", "\(name)")
        }
        let client = try server.client()
        client.send("luke skywalker")
        try await client.expect(Messages.invalidUsername + "\n" + Messages.usernamePrompt)
        client.send("luke")
        client.send(passwords["luke"]!)
        try await client.expect(Messages.welcome)
        client.send("OUT")
        #expect(try await client.waitForExit() == 0)
        // Nothing was created for them (the client's own directory aside).
        let after = try FileManager.default.subpathsOfDirectory(atPath: server.root.url.path).sorted()
        #expect(after.filter { !$0.hasPrefix("client-") } == before)
    }

    @Test func aSecondLoginOfAnOnlineUserIsRefused() async throws {
        let server = try await TestServer()
        let first = try RawConnection(port: server.port)
        try first.login("hans", "falcon*solo")
        let second = try RawConnection(port: server.port)
        second.send("HELLO\t1\ttest\nUSER\thans\nPASS\tfalcon*solo\t9\n")
        #expect(second.readLine() == "HELLO\t1")
        #expect(second.readLine() == "OK\tUSER")
        #expect(second.readLine() == "ERR\talready_logged_in\thans is already logged in")
        #expect(await second.isClosedByServer())
        // The first session is untouched.
        first.send("BCM\tstill mine\n")
        #expect(first.readLine()?.hasPrefix("OK\tBCM\t1\t") == true)
        #expect(server.fileLines("userlog.txt").count == 1)
        try await server.servesANormalClient()
    }
}
