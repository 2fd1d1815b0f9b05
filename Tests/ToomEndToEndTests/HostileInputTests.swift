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
        #expect(raw.isClosedByServer())
        #expect(try await hans.command("BCM still here").first?.hasPrefix("Broadcast message, #1") == true)
    }

    @Test func aLongFrameThatArrivesWholeIsRefused() async throws {
        let server = try await TestServer()
        let raw = try RawConnection(port: server.port)
        try raw.login("hans", "falcon*solo")
        raw.send("BCM\t" + String(repeating: "z", count: Wire.maxFrameBytes + 10) + "\n")
        #expect(raw.readLine()?.hasPrefix("ERR\tbad_frame\t") == true)
        #expect(raw.isClosedByServer())
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
        #expect(raw.isClosedByServer())
    }

    @Test func aVersionMismatchIsExplained() async throws {
        let server = try await TestServer()
        let raw = try RawConnection(port: server.port)
        raw.send("HELLO\t99\tfuture-client\n")
        let reply = try #require(raw.readLine())
        #expect(reply.hasPrefix("ERR\tunsupported_version\t") && reply.contains("version 1"))
        #expect(raw.isClosedByServer())
    }

    @Test func theFirstFrameMustBeHello() async throws {
        let server = try await TestServer()
        let raw = try RawConnection(port: server.port)
        raw.send("GET / HTTP/1.1\r\n")
        #expect(raw.readLine()?.hasPrefix("ERR\tbad_frame\t") == true)
        #expect(raw.isClosedByServer())
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
}
