import Foundation
import ToomTestSupport
import Testing
import ToomCore

/// What one client may hold of the server: frame and message sizes, time to log in,
/// connections, unread replies, failed logins per address. Each limit ends with a clear
/// one-line error where the client can read it, and the server goes on serving others.
@Suite struct LimitTests {
    @Test func framesAndMessagesHaveAMaximumSize() async throws {
        let server = try await TestServer()
        let raw = try RawConnection(port: server.port)
        try raw.login("hans", "falcon*solo")
        let largest = String(repeating: "m", count: Text.maxMessageBytes)
        raw.send("BCM\t\(largest)\n")
        #expect(raw.readLine()?.hasPrefix("OK\tBCM\t1\t") == true)
        raw.send("BCM\t\(largest)m\n")
        #expect(raw.readLine() == "ERR\tinvalid_argument\tError. Message is too long (at most \(Text.maxMessageBytes) bytes)")
        // The longest frame is answered (here: the message is too long); one byte more closes the connection.
        let frameRoom = Wire.maxFrameBytes - "BCM\t\n".utf8.count
        raw.send("BCM\t\(String(repeating: "f", count: frameRoom))\n")
        #expect(raw.readLine()?.hasPrefix("ERR\tinvalid_argument\tError. Message is too long") == true)
        raw.send("BCM\t\(String(repeating: "f", count: frameRoom + 1))\n")
        #expect(raw.readLine() == "ERR\tbad_frame\tProtocol error: a frame is longer than \(Wire.maxFrameBytes) bytes")
        #expect(await raw.isClosedByServer())
        #expect(server.fileLines("messagelog.txt").count == 1)

        let yoda = try await server.login("yoda")
        #expect(try await yoda.command("BCM \(largest)m") == ["Error. Message is too long (at most \(Text.maxMessageBytes) bytes)"])
    }

    @Test func aLoginMustFinishInTime() async throws {
        let server = try await TestServer(extra: ["--login-timeout", "0.5"])
        let loggedIn = try RawConnection(port: server.port)
        try loggedIn.login("hans", "falcon*solo")
        let silent = try RawConnection(port: server.port)
        let halfway = try RawConnection(port: server.port)
        halfway.send("HELLO\t1\ttest\nUSER\tyoda\nPA")
        #expect(halfway.readLine() == "HELLO\t1")
        #expect(halfway.readLine() == "OK\tUSER")
        let expected = "ERR\tlogin_timeout\tLogin timed out: no login within 0.5 seconds. Please connect again"
        #expect(silent.readLine() == expected)
        #expect(await silent.isClosedByServer())
        #expect(halfway.readLine() == expected)
        #expect(await halfway.isClosedByServer())
        // Its own time limit has passed too, but it logged in: still served.
        loggedIn.send("BCM\tstill here\n")
        #expect(loggedIn.readLine()?.hasPrefix("OK\tBCM\t1\t") == true)
        #expect(server.fileLines("userlog.txt").count == 1)
    }

    @Test func connectionsBeyondTheMaximumAreRefusedPolitely() async throws {
        let server = try await TestServer(extra: ["--max-connections", "3"])
        var open: [RawConnection] = []
        for _ in 0..<3 {
            let raw = try RawConnection(port: server.port)
            raw.send("HELLO\t1\ttest\n")
            #expect(raw.readLine() == "HELLO\t1")
            open.append(raw)
        }
        let refused = try RawConnection(port: server.port)
        #expect(refused.readLine() == "ERR\tlimit\tThe server is full (3 connections). Please try again later")
        #expect(await refused.isClosedByServer())
        // The real client says the same and exits.
        let client = try server.client()
        try await client.expect("The server is full (3 connections). Please try again later")
        #expect(try await client.waitForExit() == 1)

        open.removeFirst()
        try await eventually("a connection to be admitted again") {
            let raw = try RawConnection(port: server.port)
            raw.send("HELLO\t1\ttest\n")
            return raw.readLine() == "HELLO\t1"
        }
    }

    @Test func aClientThatAsksButDoesNotReadIsNotReadEither() async throws {
        let server = try await TestServer()
        // A history worth 400 KB per read-back.
        let writer = try RawConnection(port: server.port)
        try writer.login("yoda", "wise@!man")
        let big = String(repeating: "h", count: 4000)
        for _ in 0..<100 { writer.send("BCM\t\(big)\n") }
        for n in 1...100 { #expect(writer.readLine()?.hasPrefix("OK\tBCM\t\(n)\t") == true) }

        // Asks for it again and again, never reading a byte: 1,000 answers would be 400 MB.
        let reader = try RawConnection(port: server.port, receiveBuffer: 4096)
        try reader.login("hans", "falcon*solo")
        let requests = String(repeating: "RDM\tb\t1 Jan 2020 00:00:00\n", count: 1000)
        let asking = Thread { reader.send(requests) }
        asking.start()
        // Others are served meanwhile.
        for n in 101...110 {
            writer.send("BCM\tstill serving\n")
            #expect(writer.readLine()?.hasPrefix("OK\tBCM\t\(n)\t") == true)
        }
        let luke = try await server.login("luke")
        #expect(try await luke.command("BCM back").first?.hasPrefix("Broadcast message, #111") == true)
        // The server read one request and is writing its answer as fast as the client takes
        // it; the rest wait in the client's socket, costing the server nothing.
        let resident = try #require(Self.residentKilobytes(of: server.process.process.processIdentifier!))
        #expect(resident < 150_000, "the server holds \(resident) KB")
        #expect(server.fileLines("userlog.txt").contains { $0.contains("; hans; ") })
    }

    /// VmRSS of a process, from /proc.
    static func residentKilobytes(of pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return nil }
        return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
    }

    @Test func oneAddressCannotGuessThroughManyAccounts() async throws {
        let server = try await TestServer(attempts: 5, extra: ["--address-failures", "4", "--address-block-seconds", "600"])
        let first = try RawConnection(port: server.port)
        first.send("HELLO\t1\ttest\n")
        #expect(first.readLine() == "HELLO\t1")
        for name in ["nobody", "root"] {
            first.send("USER\t\(name)\n")
            #expect(first.readLine() == "ERR\tinvalid_username\tInvalid Username. Please try again")
        }
        first.send("USER\thans\nPASS\twrong\t9\n")
        #expect(first.readLine() == "OK\tUSER")
        #expect(first.readLine() == "ERR\tinvalid_password\tInvalid Password. Please try again")
        // The fourth failure, across two accounts, refuses the address: even the right
        // password, sent right behind it. (How long the refusal lasts is timed exactly, with
        // a test clock, in the rule tests.)
        let second = try RawConnection(port: server.port)
        second.send("HELLO\t1\ttest\nUSER\tyoda\nPASS\twrong\t9\nPASS\twise@!man\t9\n")
        #expect(second.readLine() == "HELLO\t1")
        #expect(second.readLine() == "OK\tUSER")
        #expect(second.readLine() == "ERR\tinvalid_password\tInvalid Password. Please try again")
        let refusal = "ERR\taddress_blocked\tToo many failed logins from your address. Please try again later"
        #expect(second.readLine() == refusal)
        #expect(await second.isClosedByServer())
        let client = try server.client()
        client.send("luke")
        try await client.expect("Too many failed logins from your address. Please try again later")
        #expect(try await client.waitForExit() == 1)
        try await server.process.expect("address 127.0.0.1 refused for 600 seconds after 4 failed logins")
        // Neither account was blocked on its own (5 attempts each).
        #expect(!server.process.stdout.contains("blocked for"))
    }
}
