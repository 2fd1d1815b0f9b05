import Foundation
import Testing
import ToomCore
import ToomSecurity
import ToomTestSupport

/// Spec §12 across real NATs: two homes behind nftables NATs, the server on the "internet"
/// (`NATLab`), clients in their own network namespaces; and the server's UDP port on loopback.
@Suite(.serialized) struct NATTests {
    static let lab = NetworkNamespace.isAvailable

    /// A server on the lab's internet and hans at home A: yoda where `yodaAt` says.
    private func hansAndYoda(_ lab: NATLab, yodaAt yodaHost: NetworkNamespace, server extra: [String] = [],
                             clients: [String] = []) async throws -> (TestServer, ToomProcess, ToomProcess) {
        let server = try await TestServer(extra: extra, launcher: lab.server.launcher, host: lab.serverAddress)
        let hans = try await server.login("hans", extra: ["--plaintext"] + clients, launcher: lab.hostA.launcher)
        let yoda = try await server.login("yoda", extra: ["--plaintext"] + clients, launcher: yodaHost.launcher)
        return (server, hans, yoda)
    }

    private func send(_ size: Int, named name: String, from hans: ToomProcess, to yoda: ToomProcess) async throws -> Data {
        let data = Data((0..<size).map { _ in UInt8.random(in: 0...255) })
        try data.write(to: hans.directory.appendingPathComponent(name))
        hans.send("UPD yoda \(name)")
        try await hans.expect(Messages.uploaded(name))
        try await yoda.expect(Messages.received(name, from: "hans"))
        #expect(try Data(contentsOf: yoda.directory.appendingPathComponent("hans_\(name)")) == data)
        return data
    }

    /// Two cone NATs: hole punching opens a direct path, and no file byte crosses the server.
    @Test(.enabled(if: lab)) func twoConeNATsGoDirect() async throws {
        let lab = try NATLab(homeA: .cone, homeB: .cone)
        defer { lab.remove() }
        let (server, hans, yoda) = try await hansAndYoda(lab, yodaAt: lab.hostB)
        defer { withExtendedLifetime(server) {} }
        let before = try lab.serverUDPBytes()
        _ = try await send(4 << 20, named: "punched.bin", from: hans, to: yoda)
        #expect(try lab.serverUDPBytes() - before < 64 << 10, "only registrations reach the server")
    }

    /// Two clients behind one NAT talk over their LAN.
    @Test(.enabled(if: lab)) func oneLANStaysOnTheLAN() async throws {
        let lab = try NATLab()
        defer { lab.remove() }
        let (server, hans, yoda) = try await hansAndYoda(lab, yodaAt: lab.hostA2)
        defer { withExtendedLifetime(server) {} }
        let before = try lab.serverUDPBytes()
        _ = try await send(4 << 20, named: "lan.bin", from: hans, to: yoda)
        #expect(try lab.serverUDPBytes() - before < 64 << 10)
    }

    /// A symmetric NAT picks a new port for every destination: no direct path, so the
    /// transfer goes through the server's relay, encrypted end to end all the same.
    @Test(.enabled(if: lab)) func aSymmetricNATIsRelayed() async throws {
        let lab = try NATLab(homeA: .cone, homeB: .symmetric)
        defer { lab.remove() }
        let (server, hans, yoda) = try await hansAndYoda(lab, yodaAt: lab.hostB)
        defer { withExtendedLifetime(server) {} }
        let before = try lab.serverUDPBytes()
        _ = try await send(2 << 20, named: "relayed.bin", from: hans, to: yoda)
        #expect(try lab.serverUDPBytes() - before > 2 << 20, "every byte went through the server")
    }

    /// The mirror: the presenter is the one behind the symmetric NAT.
    @Test(.enabled(if: lab)) func aSymmetricNATOnThePresentersSideIsRelayedToo() async throws {
        let lab = try NATLab(homeA: .symmetric, homeB: .cone)
        defer { lab.remove() }
        let (server, hans, yoda) = try await hansAndYoda(lab, yodaAt: lab.hostB)
        defer { withExtendedLifetime(server) {} }
        _ = try await send(1 << 20, named: "mirror.bin", from: hans, to: yoda)
    }

    /// Without a relay (`--relay-rate 0`) such a transfer fails, saying why.
    @Test(.enabled(if: lab)) func withoutTheRelayNoDirectPathIsAFailure() async throws {
        let lab = try NATLab(homeA: .cone, homeB: .symmetric)
        defer { lab.remove() }
        let (server, hans, yoda) = try await hansAndYoda(lab, yodaAt: lab.hostB, server: ["--relay-rate", "0"],
                                                    clients: ["--transfer-timeout", "3"])
        defer { withExtendedLifetime(server) {} }
        try Data(count: 1000).write(to: hans.directory.appendingPathComponent("stuck.bin"))
        hans.send("UPD yoda stuck.bin")
        try await hans.expect(Messages.uploadFailed("stuck.bin", to: "yoda",
            reason: "no direct path to the receiver was found within 3 seconds, and the server does not relay"))
        #expect(!FileManager.default.fileExists(atPath: yoda.directory.appendingPathComponent("hans_stuck.bin").path))
    }

    /// The relay keeps to `--relay-rate` for every transfer together: 1 MiB at 256 KiB a
    /// second takes at least 3 seconds once relayed (after the 5 seconds of looking for a
    /// direct path), and still arrives whole.
    @Test(.enabled(if: lab)) func theRelayKeepsToItsRate() async throws {
        let lab = try NATLab(homeA: .cone, homeB: .symmetric)
        defer { lab.remove() }
        let (server, hans, yoda) = try await hansAndYoda(lab, yodaAt: lab.hostB, server: ["--relay-rate", "256K"],
                                                    clients: ["--transfer-timeout", "20"])
        defer { withExtendedLifetime(server) {} }
        let clock = ContinuousClock()
        let started = clock.now
        _ = try await send(1 << 20, named: "capped.bin", from: hans, to: yoda)
        #expect(clock.now - started >= .seconds(8), "5 s looking, then at least 3 s at the capped rate")
    }

    /// A relayed transfer resumes as any other: the audience killed halfway, logged in again,
    /// and the same `UPD` sends only the rest, through the relay again.
    @Test(.enabled(if: lab)) func aRelayedTransferResumesAfterTheAudienceWasKilled() async throws {
        let lab = try NATLab(homeA: .cone, homeB: .symmetric)
        defer { lab.remove() }
        let options = ["--plaintext", "--transfer-timeout", "3"]
        let server = try await TestServer(extra: ["--relay-rate", "1M"], launcher: lab.server.launcher,
                                          host: lab.serverAddress)
        let hans = try await server.login("hans", extra: options, launcher: lab.hostA.launcher)
        var yoda = try await server.login("yoda", extra: options, launcher: lab.hostB.launcher)
        let data = Data((0..<(6 << 20)).map { _ in UInt8.random(in: 0...255) })
        try data.write(to: hans.directory.appendingPathComponent("long.bin"))
        hans.send("UPD yoda long.bin")
        let record = yoda.directory.appendingPathComponent(".hans_long.bin.part-record").path
        try await eventually("a record of part of the file") {
            ((try? FileManager.default.attributesOfItem(atPath: record)[.size] as? Int) ?? 0) > 0
        }
        yoda.signal(SIGKILL)
        _ = try await yoda.waitForExit()
        try await hans.expect(Messages.uploadFailed("long.bin", to: "yoda", reason: ""))
        yoda = try await server.login("yoda", extra: options, launcher: lab.hostB.launcher)
        hans.send("UPD yoda long.bin")
        try await hans.expect("Resuming long.bin to yoda at ")
        let resumed = try await hans.expect("%")
        #expect((Int(resumed.dropLast()) ?? 0) > 0, "resumed at \(resumed)")
        try await hans.expect(Messages.uploaded("long.bin"))
        try await yoda.expect(Messages.received("long.bin", from: "hans"))
        #expect(try Data(contentsOf: yoda.directory.appendingPathComponent("hans_long.bin")) == data)
    }

    /// IPv6 end to end: the server on ::1, `ATU` and `userlog.txt` show ::1, and a file
    /// travels over IPv6.
    @Test func ipv6OnLoopback() async throws {
        // One server: where it cannot listen on ::1, the system has no IPv6 loopback.
        guard let server = try? await TestServer(host: "::1") else {
            print("SKIPPED ipv6OnLoopback: this system has no IPv6 loopback")
            return
        }
        let hans = try await server.login("hans", extra: ["--plaintext"])
        let yoda = try await server.login("yoda", extra: ["--plaintext"])
        let listing = try await hans.command("ATU")
        #expect(listing.count == 1 && listing[0].hasPrefix("yoda, ::1, "), "\(listing)")
        #expect(server.fileLines("userlog.txt").allSatisfy { $0.contains("; ::1; ") })
        _ = try await send(2 << 20, named: "six.bin", from: hans, to: yoda)
    }

    /// A host name is resolved, and tried at every address it resolves to (where `localhost`
    /// is also ::1, that one is refused first): a server on 127.0.0.1 alone is reached.
    @Test func aHostNameIsTriedAtEveryAddress() async throws {
        let server = try await TestServer(host: "127.0.0.1")
        let client = try await server.login("hans", extra: ["--plaintext"], serverHost: "localhost")
        client.send("OUT")
        try await client.expect("Bye, hans!")
    }

    /// Nothing but an authentic registration gets an answer from the server's UDP port,
    /// and that answer is never larger than what came in.
    @Test func theServersUDPPortAnswersOnlyAuthenticRegistrations() async throws {
        let server = try await TestServer()
        // A p2p login by hand, for a registration id and secret.
        let connection = try RawConnection(port: server.port)
        connection.send("HELLO\t1\tprobe\tp2p\n")
        #expect(connection.readLine() == "HELLO\t1\tp2p")
        connection.send("USER\thans\n")
        #expect(connection.readLine() == "OK\tUSER")
        connection.send("PASS\tfalcon*solo\t9\t\(String(repeating: "ab", count: 32))\n")
        let login = try #require(connection.readLine()).split(separator: "\t")
        #expect(login.count == 5 && login[0] == "OK" && login[2] == "hans")
        let id = try #require(Hex.decode(login[3], count: 8)).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let secret = try #require(RendezvousSecret(hex: login[4]))

        let socket = try UDPProbe(port: server.port)
        let forged = RendezvousSecret(bytes: Array(repeating: 7, count: 32))
        socket.send(Array("hello?".utf8))
        socket.send([0x54, 0x46, 2, 1] + Array(repeating: 1, count: 1400))  // a transfer nobody introduced
        socket.send(RendezvousDatagram.register(id: id, number: 1, candidates: [], secret: forged))
        socket.send(Array(RendezvousDatagram.register(id: id, number: 1, candidates: [], secret: secret).prefix(60)))
        let real = RendezvousDatagram.register(id: id, number: 2, candidates: [], secret: secret)
        socket.send(real)
        socket.send(real)  // a replay
        // Datagrams on loopback keep their order: the first answer is the real one's.
        let answer = try #require(socket.receive(), "no answer to an authentic registration")
        #expect(answer.count <= real.count)
        #expect(answer.withUnsafeBytes { RendezvousDatagram.openRegistered($0, secret: secret) }?.number == 2)
        let next = RendezvousDatagram.register(id: id, number: 3, candidates: [], secret: secret)
        socket.send(next)
        let second = try #require(socket.receive())
        #expect(second.withUnsafeBytes { RendezvousDatagram.openRegistered($0, secret: secret) }?.number == 3,
                "the replay got no answer")
    }
}

/// A UDP socket on loopback that talks to one port, waiting at most 10 s for an answer.
final class UDPProbe: @unchecked Sendable {
    let fd: Int32
    let target: sockaddr_in

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError(description: "socket: \(errno)") }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        target = address
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) {
        var address = target
        _ = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(fd, bytes, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
    }

    func receive() -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 65536)
        let count = recv(fd, &buffer, buffer.count, 0)
        return count < 0 ? nil : Array(buffer.prefix(count))
    }
}
