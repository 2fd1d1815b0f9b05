import Foundation
import Testing
import ToomTestSupport
import ToomCore

extension RawConnection {
    /// Sends FIN: the server sees the end of input while this side can still read.
    func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    /// Makes the coming close a reset (RST) instead of an orderly FIN.
    func resetOnClose() {
        var linger = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<linger>.size))
    }
}

extension TestServer {
    /// Descriptors the server process has open (sockets, logs, event loops).
    var openDescriptors: Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(process.process.processIdentifier!)/fd").count) ?? -1
    }

    /// Checks that a normal client still logs in and gets a broadcast stored, then logs out.
    func servesANormalClient(as user: String = "luke") async throws {
        let client = try await login(user)
        let reply = try await client.command("BCM still serving")
        #expect(reply.count == 1 && reply[0].hasPrefix("Broadcast message, #"), "\(reply)")
        client.send("OUT")
        #expect(try await client.waitForExit() == 0)
    }
}

/// Connections that misbehave: random bytes, a 10 MB frame, floods of connections,
/// connections that stop half-way. Each is closed (with a one-line reason where one fits)
/// and the server goes on serving normal clients.
@Suite struct HostileConnectionTests {
    @Test func randomBytesCloseOnlyTheirConnection() async throws {
        let server = try await TestServer()
        var random = SeededRandom(seed: SeededRandom.seed(for: "random bytes"))
        let frames = ["HELLO\t1\ttest", "USER\thans", "PASS\tfalcon*solo\t9", "BCM\thello", "SRB\tyoda",
                      "SRM\t1\thi", "RDM\tb\t1 Jun 2022 21:30:04", "ATU", "OUT"]
        for attempt in 0..<60 {
            let raw = try RawConnection(port: server.port)
            var bytes: [UInt8]
            if attempt % 2 == 0 {
                bytes = random.bytes(Int.random(in: 1...3000, using: &random))
            } else {
                // Valid frames with a few bytes flipped, inserted or removed.
                bytes = Array(frames.map { $0 + "\n" }.joined().utf8)
                for _ in 0..<Int.random(in: 1...8, using: &random) {
                    let at = Int.random(in: 0..<bytes.count, using: &random)
                    switch Int.random(in: 0..<3, using: &random) {
                    case 0: bytes[at] = UInt8.random(in: 0...255, using: &random)
                    case 1: bytes.insert(UInt8.random(in: 0...255, using: &random), at: at)
                    default: bytes.remove(at: at)
                    }
                }
            }
            raw.send(bytes)
            raw.shutdownWrite()
            #expect(await raw.isClosedByServer(), "attempt \(attempt)")
        }
        for line in server.fileLines("messagelog.txt") {
            #expect((try? MessageRecord.parse(line).get()) != nil, "\(line)")
        }
        try await eventually("nobody online") { server.fileLines("userlog.txt").isEmpty }
        try await server.servesANormalClient()
    }

    @Test func aTenMegabyteFrameIsCutOffEarly() async throws {
        let server = try await TestServer()
        let raw = try RawConnection(port: server.port)
        let frame = [UInt8](repeating: UInt8(ascii: "B"), count: 10 * 1024 * 1024) + [0x0A]
        let sender = Thread { raw.send(frame) }
        sender.start()
        // The reason arrives before the connection closes; the rest of the 10 MB is never read.
        let reply = raw.readLine()
        #expect(reply == nil || reply == "ERR\tbad_frame\tProtocol error: a frame is longer than \(Wire.maxFrameBytes) bytes")
        #expect(await raw.isClosedByServer())
        try await server.servesANormalClient()
    }

    @Test func tenThousandConnectionsOpenedAndDroppedLeaveNothingBehind() async throws {
        let server = try await TestServer()
        try await server.servesANormalClient(as: "hans")
        let baseline = server.openDescriptors
        #expect(baseline > 0)
        // In waves of 200, so that this process needs few descriptors. The last of each wave
        // waits for its greeting: the server has then taken every earlier connection off
        // its (first in, first out) accept queue, which therefore never overflows.
        for _ in 0..<50 {
            var connections: [RawConnection] = []
            for index in 0..<199 {
                let raw = try RawConnection(port: server.port)
                switch index % 4 {
                case 0: break
                case 1: raw.send("HELLO\t1\ttest\n")
                case 2: raw.resetOnClose()
                default: raw.send("HELLO\t1\ttest\nUSER\tha")
                }
                connections.append(raw)
            }
            let last = try RawConnection(port: server.port)
            last.send("HELLO\t1\ttest\n")
            #expect(last.readLine() == "HELLO\t1")
        }
        try await eventually("the server to close all 10,000 connections (baseline \(baseline) descriptors, now \(server.openDescriptors))") {
            server.openDescriptors <= baseline
        }
        #expect(server.fileLines("userlog.txt").isEmpty)
        try await server.servesANormalClient()
    }

    @Test func halfClosedConnectionsAreClosed() async throws {
        let server = try await TestServer()
        // Before login, half a frame and then the end of input.
        let early = try RawConnection(port: server.port)
        early.send("HELLO\t1\ttest\nUSER\tha")
        early.shutdownWrite()
        #expect(early.readLine() == "HELLO\t1")
        #expect(await early.isClosedByServer())
        // Logged in, half a command and then the end of input: logged out, nothing stored.
        let online = try RawConnection(port: server.port)
        try online.login("hans", "falcon*solo")
        online.send("BCM\tnever finish")
        online.shutdownWrite()
        #expect(await online.isClosedByServer())
        try await server.process.expect("hans disconnected")
        try await eventually("userlog.txt to be empty") { server.fileLines("userlog.txt").isEmpty }
        #expect(server.file("messagelog.txt") == "")
        try await server.servesANormalClient(as: "hans")
    }

    /// A scripted client sends everything and closes its side at once. The password check
    /// waits off the event loop while the socket is still read (reading pauses only once a
    /// frame arrives during a wait), so the end of input can come before the answer: the
    /// answer still goes out, and so do those of the frames that came after the wait.
    @Test func aClientThatClosesItsSideAtOnceGetsEveryAnswer() async throws {
        let server = try await TestServer()
        for afterTheWait in ["", "BCM\tsent before the login was checked\n"] {
            let raw = try RawConnection(port: server.port)
            raw.send("HELLO\t1\ttest\nUSER\thans\nPASS\tfalcon*solo\t9\n" + afterTheWait)
            raw.shutdownWrite()
            let lines = try await offThePool { () -> [String] in
                var lines: [String] = []
                while let line = raw.readLine() { lines.append(line) }
                return lines
            }
            #expect(Array(lines.prefix(3)) == ["HELLO\t1", "OK\tUSER", "OK\tLOGIN\thans"], "\(lines)")
            if afterTheWait.isEmpty {
                #expect(lines.count == 3, "\(lines)")
            } else {
                #expect(lines.count == 4 && lines[3].hasPrefix("OK\tBCM\t"), "\(lines)")
            }
            try await server.process.expect("hans disconnected")
        }
        #expect(server.fileLines("messagelog.txt").count == 1)
    }

    static let ss = ["/usr/bin/ss", "/bin/ss", "/usr/sbin/ss", "/sbin/ss"].first(where: FileManager.default.isExecutableFile)

    @Test(.enabled(if: ss != nil, "ss is not installed (Debian package iproute2)"))
    func idleConnectionsAreProbedWithKeepalive() async throws {
        let server = try await TestServer()
        let raw = try RawConnection(port: server.port)
        try raw.login("hans", "falcon*solo")
        // The server's side of the connection runs a keepalive timer once it is idle, so a
        // peer that vanished without a FIN (network cut, machine off) is noticed and its
        // user logged out.
        var sockets = ""
        try await eventually("a keepalive timer on the server's socket; ss shows:\n\(sockets)") {
            sockets = try Self.socketTimers(port: server.port)
            return sockets.contains("timer:(keepalive,")
        }
        _ = raw
    }

    /// `ss` lines for the established connections on the server's port.
    static func socketTimers(port: Int) throws -> String {
        let (status, text) = try runCapturing(try #require(ss), ["-tnoH", "state", "established", "( sport = :\(port) )"])
        guard status == 0 else { throw HarnessError(description: "ss failed (\(status)): \(text)") }
        return text
    }
}
