import Foundation
import NIOCore
import NIOPosix

/// Many clients logged in at once: how long logging them all in takes, and the server's
/// memory per session. Reference: the echo server accepting as many connections and
/// echoing the same three frames on each.
struct SessionsScenario {
    let context: BenchContext

    func run() async throws -> ResultTable {
        let count = context.quick ? 2_000 : 10_000
        let group = MultiThreadedEventLoopGroup.singleton

        let (online, toomSeconds, toomPerSession) = try await toomSessions(count, tls: false, group: group)
        let (tlsOnline, tlsSeconds, tlsPerSession) = try await toomSessions(count, tls: true, group: group)

        let echoScratch = try Scratch("sessions-echo")
        let echo = try ServerProcess(executable: context.benchPath, arguments: ["echo-server"], directory: echoScratch.url)
        let echoBefore = echo.residentBytes
        let (echoSeconds, echoClients) = try await logIn(count, port: echo.port, peer: .echo, group: group)
        let echoPerConnection = (echo.residentBytes - echoBefore) / Double(count)
        for client in echoClients { await client.close() }
        echo.stop()

        var table = ResultTable("sessions: \(count) clients logged in at once")
        table.add("sessions held (userlog.txt lines)", value: Double(online), reference: Double(count), unit: .count,
                  target: .ratioAtLeast(1))
        table.add("time to log in all \(count)", value: toomSeconds, reference: echoSeconds, unit: .seconds,
                  target: .ratioAtMost(5))
        table.add("server memory per session", value: toomPerSession, reference: echoPerConnection, unit: .bytes,
                  target: .valueAtMost(16 * 1024, "≤ 16 KiB"))
        table.add("TLS sessions held", value: Double(tlsOnline), reference: Double(count), unit: .count, target: .ratioAtLeast(1))
        table.add("TLS: time to log in all \(count)", value: tlsSeconds, reference: toomSeconds, unit: .seconds, target: nil)
        table.add("TLS: server memory per session", value: tlsPerSession, reference: toomPerSession, unit: .bytes, target: nil)
        table.notes.append("Login = connect, HELLO, USER, PASS (three round trips), 256 at a time; the reference echoes the same three frames. Memory is the growth of the server's resident set over the run, divided by the sessions. The TLS rows compare against plaintext toom: each session adds a TLS handshake (P-256, pinned fingerprint) and the TLS state the server keeps.")
        return table
    }

    /// Sessions held, seconds to log them all in, and the server's memory per session.
    private func toomSessions(_ count: Int, tls: Bool, group: EventLoopGroup) async throws -> (Int, Double, Double) {
        let scratch = try Scratch(tls ? "sessions-tls" : "sessions")
        try scratch.write("credentials.txt", benchCredentials(count))
        let server = try ServerProcess(executable: context.toomPath,
                                       arguments: ["server", "0", "3", "--host", "127.0.0.1", "--data-dir", scratch.url.path,
                                                   "--max-connections", String(count + 100)],
                                       directory: scratch.url)
        let before = server.residentBytes
        let (seconds, clients) = try await logIn(count, port: server.port, peer: .toom, group: group,
                                                 fingerprint: tls ? server.fingerprint() : nil)
        let online = (try? String(contentsOf: scratch.url.appendingPathComponent("userlog.txt"), encoding: .utf8))?
            .split(separator: "\n").count ?? 0
        let perSession = (server.residentBytes - before) / Double(count)
        for client in clients { await client.close() }
        server.stop()
        return (online, seconds, perSession)
    }

    private func logIn(_ count: Int, port: Int, peer: LineClient.Peer, group: EventLoopGroup,
                       fingerprint: String? = nil) async throws -> (Double, [LineClient]) {
        let clients = ClientList(count)
        let start = DispatchTime.now()
        try await forEachConcurrently(count, width: 256) { i in
            let client = try await LineClient.connect(port: port, peer: peer, group: group, fingerprint: fingerprint)
            _ = try await client.request("HELLO\t1\ttoom-bench\n")
            _ = try await client.request("USER\tu\(i)\n")
            _ = try await client.request("PASS\tp\(i)\t9\n")
            clients.set(i, client)
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
