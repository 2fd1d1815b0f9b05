import Foundation
import NIOCore
import NIOPosix

/// Many clients logged in at once: how long logging them all in takes, and the server's
/// memory per session. References: the echo server accepting as many connections and
/// echoing the same three frames on each, and ngircd holding as many registered users.
struct SessionsScenario {
    let context: BenchContext

    func run() async throws -> ResultTable {
        let count = context.quick ? 2_000 : 10_000
        let group = MultiThreadedEventLoopGroup.singleton

        let plain = try await toomSessions(count, tls: false, group: group)
        let toomBefore = plain.start, toomSeconds = plain.seconds, toomPerSession = plain.perSession, online = plain.online
        let tls = try await toomSessions(count, tls: true, group: group)

        let echoScratch = try Scratch("sessions-echo")
        let echo = try await ServerProcess(executable: context.benchPath, arguments: ["echo-server"], directory: echoScratch.url)
        let echoBefore = echo.residentBytes
        let (echoSeconds, echoClients) = try await logIn(count, port: echo.port, peer: .echo, group: group)
        let echoPerConnection = (echo.residentBytes - echoBefore) / Double(count)
        for client in echoClients { await client.close() }
        try await echo.stop()

        var ngircd: (start: Double, perSession: Double)?
        if Ngircd.path != nil {
            let ircScratch = try Scratch("sessions-ngircd")
            ngircd = try await Ngircd.start(in: ircScratch).whileRunning { irc in
                let before = irc.residentBytes
                // ngircd listens with a backlog of 10: more connects at once only wait for SYN retries.
                let (_, ircClients) = try await logIn(count, port: irc.port, peer: .irc, group: group, width: 10)
                let measured = (before, (irc.residentBytes - before) / Double(count))
                for client in ircClients { await client.close() }
                return measured
            }
        }

        var table = ResultTable("sessions: \(count) clients logged in at once")
        table.add("sessions held (userlog.txt lines)", value: Double(online), reference: Double(count), unit: .count,
                  target: .ratioAtLeast(1))
        table.add("time to log in all \(count)", value: toomSeconds, reference: echoSeconds, unit: .seconds,
                  target: .ratioAtMost(5))
        table.add("server memory per session (vs echo)", value: toomPerSession, reference: echoPerConnection, unit: .bytes,
                  target: nil)
        table.add("server memory per session (vs ngircd)", value: toomPerSession, reference: ngircd?.perSession, unit: .bytes,
                  target: ngircd == nil ? nil : .ratioAtMost(1))
        table.add("TLS sessions held", value: Double(tls.online), reference: Double(count), unit: .count, target: .ratioAtLeast(1))
        table.add("TLS: time to log in all \(count)", value: tls.seconds, reference: toomSeconds, unit: .seconds, target: nil)
        table.add("TLS: server memory per session", value: tls.perSession, reference: toomPerSession, unit: .bytes, target: nil)
        table.add("resident size at start (vs echo)", value: toomBefore, reference: echoBefore, unit: .bytes, target: nil)
        table.add("resident size at start (vs ngircd)", value: toomBefore, reference: ngircd?.start, unit: .bytes, target: nil)
        table.notes.append("Login = connect, HELLO, USER, PASS (three round trips), 256 at a time; the echo server gets the same three frames; the TLS rows log in the same way over TLS (the client pins the server's fingerprint) and compare against plaintext toom; ngircd gets NICK and USER and counts as logged in at the end of its welcome (numeric 376), 10 at a time. Memory is the growth of the server's resident set over the logins, divided by the sessions; resident size at start is before the first client.")
        if ngircd == nil { table.notes.append("ngircd: SKIPPED, \(Ngircd.skipReason)") }
        return table
    }

    /// Logs `count` users in to a fresh toom server, plaintext or TLS: sessions held, seconds,
    /// memory per session, resident size at start.
    private func toomSessions(_ count: Int, tls: Bool, group: EventLoopGroup) async throws
        -> (online: Int, seconds: Double, perSession: Double, start: Double) {
        let scratch = try Scratch(tls ? "sessions-tls" : "sessions")
        try scratch.write("credentials.txt", benchCredentials(count))
        let server = try await ServerProcess(executable: context.toomPath,
                                       arguments: ["server", "0", "3", "--host", "127.0.0.1", "--data-dir", scratch.url.path,
                                                   "--max-connections", String(count + 100)],
                                       directory: scratch.url)
        return try await server.whileRunning { server in
            let before = server.residentBytes
            let fingerprint = tls ? try await server.fingerprint() : nil
            let (seconds, clients) = try await logIn(count, port: server.port, peer: .toom, group: group, fingerprint: fingerprint)
            let online = (try? String(contentsOf: scratch.url.appendingPathComponent("userlog.txt"), encoding: .utf8))?
                .split(separator: "\n").count ?? 0
            let perSession = (server.residentBytes - before) / Double(count)
            for client in clients { await client.close() }
            return (online, seconds, perSession, before)
        }
    }

    private func logIn(_ count: Int, port: Int, peer: LineClient.Peer, group: EventLoopGroup,
                       width: Int = 256, fingerprint: String? = nil) async throws -> (Double, [LineClient]) {
        let clients = ClientList(count)
        let start = DispatchTime.now()
        try await forEachConcurrently(count, width: width) { i in
            let client = try await LineClient.connect(port: port, peer: peer, group: group, fingerprint: fingerprint)
            clients.set(i, client)
            if peer == .irc {
                try await Ngircd.register(client, nick: "u\(i)")
            } else {
                _ = try await client.request("HELLO\t1\ttoom-bench\n")
                _ = try await client.request("USER\tu\(i)\n")
                _ = try await client.request("PASS\tp\(i)\t9\n")
            }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        return (seconds, clients.all)
    }
}

/// Clients kept open while the next ones log in.
final class ClientList: @unchecked Sendable {
    private let lock = NSLock()
    private var clients: [LineClient?]
    init(_ count: Int) { clients = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ client: LineClient) { lock.withLock { clients[i] = client } }
    var all: [LineClient] { lock.withLock { clients.compactMap { $0 } } }
}
