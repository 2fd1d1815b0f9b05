import Foundation
import Histogram
import NIOCore
import NIOPosix

/// 100 clients sending BCM and SRM as fast as the replies come back: durable messages per
/// second, their latency, and the server's CPU time per message. References in the same run:
/// the echo server answering the same frames (over NIO, and without it), and ngircd relaying
/// each message to a listener.
struct IngestScenario {
    let context: BenchContext
    let clients = 100

    struct Measured {
        let rate: Double
        let latency: Histogram<UInt64>
        /// Server CPU time per message, seconds.
        let cpuPerMessage: Double
        /// Of that, user space.
        let userPerMessage: Double
        let messages: Int
    }

    /// Turns of the timed load per server: toom, the echo servers and ngircd are set up at once
    /// and measured in turns, and each figure is the median of its turns. Single runs a minute
    /// apart on these shared cores differed by a third, in rate and in CPU per message alike.
    var rounds: Int { context.quick ? 3 : 5 }

    func run() async throws -> ResultTable {
        let seconds = context.quick ? 3.0 : 10.0
        let group = MultiThreadedEventLoopGroup.singleton
        let frame: @Sendable (Int, Int) -> String = { i, k in
            k % 2 == 0 ? "BCM\tmessage \(k) from u\(i)\n" : "SRM\t\(i / 2 + 1)\tmessage \(k) from u\(i)\n"
        }

        let toomScratch = try Scratch("ingest")
        let toomServer = try await startToom(in: toomScratch, extra: [])
        let turns: [String: [Measured]] = try await toomServer.whileRunning { toomServer in
            let toomConnections = try await logIn(port: toomServer.port, group: group, fingerprint: nil)
            let echoScratch = try Scratch("ingest-echo")
            let echo = try await ServerProcess(executable: context.benchPath, arguments: ["echo-server"], directory: echoScratch.url)
            let plainScratch = try Scratch("ingest-plain-echo")
            let plain = try await ServerProcess(executable: context.benchPath, arguments: ["plain-echo-server"], directory: plainScratch.url)
            return try await plain.whileRunning { plain in try await echo.whileRunning { echo in
                var loads: [(String, [LineClient], ServerProcess, @Sendable (Int, Int) -> String)] = [("toom", toomConnections, toomServer, frame)]
                for (name, server) in [("echo", echo), ("plain echo", plain)] {
                    var connections: [LineClient] = []
                    for _ in 0..<clients { connections.append(try await LineClient.connect(port: server.port, peer: .echo, group: group)) }
                    loads.append((name, connections, server, frame))
                }
                let ngircdScratch = try Scratch("ingest-ngircd")
                let ngircd = Ngircd.path == nil ? nil : try await Ngircd.start(in: ngircdScratch)
                func measure() async throws -> [String: [Measured]] {
                    var listener: LineClient?
                    if let ngircd {
                        let irc = try await ngircdConnections(ngircd)
                        loads.append(("ngircd", irc.senders, ngircd, Self.ircFrame))
                        listener = irc.listener
                    }
                    var turns: [String: [Measured]] = [:]
                    for round in 0..<rounds {
                        // Each server goes first in turn.
                        for k in 0..<loads.count {
                            let (name, connections, server, frame) = loads[(round + k) % loads.count]
                            turns[name, default: []].append(try await drive(connections, server: server, seconds: seconds / Double(rounds), frame: frame))
                        }
                    }
                    for (_, connections, _, _) in loads { for connection in connections { await connection.close() } }
                    await listener?.close()
                    return turns
                }
                if let ngircd { return try await ngircd.whileRunning { _ in try await measure() } }
                return try await measure()
            } }
        }
        let stored = (try? String(contentsOf: toomScratch.url.appendingPathComponent("messagelog.txt"), encoding: .utf8))?
            .split(separator: "\n").count ?? 0
        if stored == 0 { throw BenchError("no broadcasts were stored") }

        // --sync and TLS are compared with plain toom: one run each, after the turns.
        var results: [String: Measured] = [:]
        for (label, extra, tls) in [("toom --sync", ["--sync"], false), ("toom TLS", [], true)] {
            let scratch = try Scratch("ingest")
            let server = try await startToom(in: scratch, extra: extra)
            results[label] = try await server.whileRunning { server in
                let connections = try await logIn(port: server.port, group: group, fingerprint: tls ? server.fingerprint() : nil)
                let measured = try await drive(connections, server: server, seconds: seconds, frame: frame)
                for connection in connections { await connection.close() }
                return measured
            }
        }
        results["toom"] = Self.median(turns["toom"]!)
        let reference = Self.median(turns["echo"]!)
        let plainEcho = Self.median(turns["plain echo"]!)
        let ngircd: Result<Measured, Skipped> = turns["ngircd"].map { .success(Self.median($0)) } ?? .failure(Skipped(Ngircd.skipReason))
        let irc = try? ngircd.get()

        let toom = results["toom"]!
        let synced = results["toom --sync"]!
        var table = ResultTable("ingest: \(clients) clients sending BCM and SRM for \(Int(seconds)) s")
        table.add("durable messages per second", value: toom.rate, reference: reference.rate, unit: .rate("msg"), target: .ratioAtLeast(0.8))
        for p in [50.0, 99.0, 99.9] {
            table.add("latency p\(p == 99.9 ? "99.9" : String(Int(p)))", value: Double(toom.latency.valueAtPercentile(p)),
                      reference: Double(reference.latency.valueAtPercentile(p)), unit: .microseconds, target: nil)
        }
        table.add("server CPU per message (vs echo)", value: toom.cpuPerMessage * 1e6, reference: reference.cpuPerMessage * 1e6,
                  unit: .microseconds, target: nil)
        table.add("server CPU per message (vs ngircd)", value: toom.cpuPerMessage * 1e6, reference: irc.map { $0.cpuPerMessage * 1e6 },
                  unit: .microseconds, target: irc == nil ? nil : .ratioAtMost(1))
        table.add("  of which user space (vs echo)", value: toom.userPerMessage * 1e6, reference: reference.userPerMessage * 1e6,
                  unit: .microseconds, target: nil)
        table.add("  of which user space (vs ngircd)", value: toom.userPerMessage * 1e6, reference: irc.map { $0.userPerMessage * 1e6 },
                  unit: .microseconds, target: nil)
        table.add("echo without NIO: CPU per message (vs the NIO echo)", value: plainEcho.cpuPerMessage * 1e6,
                  reference: reference.cpuPerMessage * 1e6, unit: .microseconds, target: nil)
        table.add("  of which user space (vs the NIO echo)", value: plainEcho.userPerMessage * 1e6,
                  reference: reference.userPerMessage * 1e6, unit: .microseconds, target: nil)
        table.add("messages per second (vs ngircd)", value: toom.rate, reference: irc?.rate, unit: .rate("msg"), target: nil)
        table.add("with --sync: messages per second", value: synced.rate, reference: toom.rate, unit: .rate("msg"), target: nil)
        table.add("with --sync: latency p99", value: Double(synced.latency.valueAtPercentile(99)),
                  reference: Double(toom.latency.valueAtPercentile(99)), unit: .microseconds, target: nil)
        let tls = results["toom TLS"]!
        table.add("with TLS: messages per second", value: tls.rate, reference: toom.rate, unit: .rate("msg"), target: .ratioAtLeast(0.7))
        table.add("with TLS: latency p99", value: Double(tls.latency.valueAtPercentile(99)),
                  reference: Double(toom.latency.valueAtPercentile(99)), unit: .microseconds, target: nil)
        table.add("with TLS: server CPU per message", value: tls.cpuPerMessage * 1e6, reference: toom.cpuPerMessage * 1e6,
                  unit: .microseconds, target: nil)
        table.notes.append("The echo without NIO (toom-bench plain-echo-server) answers the same frames from one thread with epoll and the system calls, as ngircd is built: what NIO's channel pipeline costs per message is the difference to the NIO echo server, i.e. the most an event loop of toom's own could save.")
        table.notes.append("toom, the echo servers and ngircd run at the same time and are measured in \(rounds) turns of \(Self.format(seconds / Double(rounds))) s each, every server first in one turn; each figure is the median of its turns (latencies: of all the turns' requests).")
        table.notes.append("Each client has one request outstanding and alternates BCM and SRM (rooms of two). A message counts once its reply arrived, i.e. once it is in the log file. The --sync and TLS rows compare against plain toom (plaintext connections), not the echo server; TLS clients pin the server's fingerprint, as toom client --fingerprint does.")
        table.notes.append("Server CPU per message: the server process's user+system time over the timed run (/proc/<pid>/stat), divided by the messages; \"of which user space\" is its user time alone (the rest is the kernel's work for it: TCP on both ends of loopback, files, epoll). ngircd's load has the same request-reply shape: PRIVMSG to a channel the senders are not in, with one listener in it, then PING; the PONG is the reply.")
        if case .failure(let skipped) = ngircd { table.notes.append("ngircd: SKIPPED, \(skipped)") }
        return table
    }

    private func startToom(in scratch: Scratch, extra: [String]) async throws -> ServerProcess {
        try scratch.write("credentials.txt", benchCredentials(clients))
        return try await ServerProcess(executable: context.toomPath,
                                       arguments: ["server", "0", "3", "--host", "127.0.0.1", "--data-dir", scratch.url.path]
                                           + extra + context.noFloodControl,
                                       directory: scratch.url)
    }

    /// Logs every client in; rooms of two: u0 with u1, u2 with u3, ...
    private func logIn(port: Int, group: EventLoopGroup, fingerprint: String?) async throws -> [LineClient] {
        var connections: [LineClient] = []
        for i in 0..<clients {
            let client = try await LineClient.connect(port: port, peer: .toom, group: group, fingerprint: fingerprint)
            _ = try await client.request("HELLO\t1\ttoom-bench\n")
            _ = try await client.request("USER\tu\(i)\n")
            _ = try await client.request("PASS\tp\(i)\t9\n")
            connections.append(client)
        }
        for i in stride(from: 0, to: clients, by: 2) {
            _ = try await connections[i].request("SRB\tu\(i + 1)\n")
        }
        return connections
    }

    /// ngircd's load has the same request-reply shape: a PRIVMSG to a channel the sender is
    /// not in, then PING; the PONG is the reply.
    private static let ircFrame: @Sendable (Int, Int) -> String = { i, k in "PRIVMSG #ingest :message \(k) from u\(i)\r\nPING :\(k)\r\n" }

    /// 100 registered senders outside the channel, and the one listener in it.
    private func ngircdConnections(_ server: ServerProcess) async throws -> (senders: [LineClient], listener: LineClient) {
        let group = MultiThreadedEventLoopGroup.singleton
        let listener = try await LineClient.connect(port: server.port, peer: .irc, group: group)
        try await Ngircd.logIn(listener, nick: "listener", join: "#ingest")
        let list = ClientList(clients)
        let port = server.port
        try await forEachConcurrently(clients, width: 50) { i in
            let client = try await LineClient.connect(port: port, peer: .irc, group: group)
            list.set(i, client)
            try await Ngircd.logIn(client, nick: "u\(i)", join: nil)
        }
        let connections = list.all
        // A refused PRIVMSG would be answered (404) before the PONG.
        let trial = try await connections[0].requestLines("PRIVMSG #ingest :trial\r\nPING :trial\r\n")
        guard trial.count == 1 else { throw BenchError("ngircd did not take a PRIVMSG to #ingest: \(trial)") }
        return (connections, listener)
    }

    /// The median rate and CPU per message of the turns, with every turn's latencies.
    static func median(_ turns: [Measured]) -> Measured {
        var latency = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        for turn in turns { latency.add(turn.latency) }
        return Measured(rate: ToomBench.median(turns.map(\.rate)), latency: latency, cpuPerMessage: ToomBench.median(turns.map(\.cpuPerMessage)),
                        userPerMessage: ToomBench.median(turns.map(\.userPerMessage)), messages: turns.map(\.messages).reduce(0, +))
    }

    static func format(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? String(Int(seconds)) : String(format: "%.1f", seconds)
    }

    /// Every connection sends back to back until the time is up; returns the rate, the latencies (µs)
    /// and the server's CPU time per message.
    func drive(_ connections: [LineClient], server: ServerProcess, seconds: Double,
                       frame: @escaping @Sendable (Int, Int) -> String) async throws -> Measured {
        let before = server.cpuTimes
        let start = DispatchTime.now().uptimeNanoseconds
        let deadline = start + UInt64(seconds * 1e9)
        let histograms = try await withThrowingTaskGroup(of: (Int, Histogram<UInt64>).self) { group in
            for (i, connection) in connections.enumerated() {
                group.addTask {
                    var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
                    var k = 0
                    while DispatchTime.now().uptimeNanoseconds < deadline {
                        let sent = DispatchTime.now().uptimeNanoseconds
                        _ = try await connection.request(frame(i, k))
                        histogram.record((DispatchTime.now().uptimeNanoseconds - sent) / 1000)
                        k += 1
                    }
                    return (k, histogram)
                }
            }
            var all: [(Int, Histogram<UInt64>)] = []
            for try await result in group { all.append(result) }
            return all
        }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let after = server.cpuTimes
        let cpu = after.total - before.total, user = after.user - before.user
        var merged = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        for (_, histogram) in histograms { merged.add(histogram) }
        let messages = histograms.map(\.0).reduce(0, +)
        return Measured(rate: Double(messages) / elapsed, latency: merged, cpuPerMessage: cpu / Double(max(1, messages)),
                        userPerMessage: user / Double(max(1, messages)), messages: messages)
    }
}
