import Foundation
import NIOCore
import NIOPosix

/// 100 live clients online, 10 of them sending broadcasts: deliveries per second and the
/// latency from send to receipt. References in the same run: the NIO relay, and ngircd with
/// the same shape (100 clients in one channel, 10 sending PRIVMSG) when it is installed.
struct FanoutScenario {
    let context: BenchContext
    let clients = 100
    let senders = 10
    /// Messages of one sender on their way to their receivers at once.
    let window = 8

    struct Measured {
        let result: FanoutLoad.Result
        /// Server CPU time per delivery, seconds.
        let cpuPerDelivery: Double
    }

    /// Rounds of the three measurements, each server first in one of them; each figure is the
    /// median of its rounds. Single runs on these shared cores moved the ratio to ngircd
    /// between 0.6 and 1.8.
    var rounds: Int { context.quick ? 3 : 5 }

    func run() async throws -> ResultTable {
        let seconds = context.quick ? 3.0 : 10.0
        let turn = seconds / Double(rounds)
        let measurements: [@Sendable () async throws -> Result<Measured, Skipped>] = [
            { .success(try await measureRelay(seconds: turn)) },
            { try await measureToom(seconds: turn) },
            { try await measureNgircd(seconds: turn) },
        ]
        var outcomes: [[Result<Measured, Skipped>]] = Array(repeating: [], count: measurements.count)
        for round in 0..<rounds {
            for k in 0..<measurements.count {
                let which = (round + k) % measurements.count
                outcomes[which].append(try await measurements[which]())
            }
        }
        let relay = try Self.median(outcomes[0]).get()
        let toom = Self.median(outcomes[1])
        let ngircd = Self.median(outcomes[2])

        var table = ResultTable("fanout: \(clients) live clients, \(senders) of them sending, for \(Int(seconds)) s")
        table.notes.append("The relay, toom and ngircd are measured in \(rounds) rounds of \(IngestScenario.format(turn)) s each, every server first in one round, each with a fresh server and fresh clients; each figure is the median of its rounds (latencies: of all the rounds' deliveries).")
        let mine = try? toom.get()
        for (name, reference, target) in [("relay", Optional(relay), 0.8), ("ngircd", try? ngircd.get(), 1.0)] {
            table.add("deliveries per second (vs \(name))", value: mine?.result.rate, reference: reference?.result.rate,
                      unit: .rate("msg"), target: mine != nil && reference != nil ? .ratioAtLeast(target) : nil)
            for p in [50.0, 99.0] {
                table.add("delivery latency p\(Int(p)) (vs \(name))", value: mine.map { Double($0.result.latency.valueAtPercentile(p)) },
                          reference: reference.map { Double($0.result.latency.valueAtPercentile(p)) }, unit: .microseconds, target: nil)
            }
            table.add("server CPU per delivery (vs \(name))", value: mine.map { $0.cpuPerDelivery * 1e6 },
                      reference: reference.map { $0.cpuPerDelivery * 1e6 }, unit: .microseconds, target: nil)
        }
        table.notes.append("Every client is live (toom: HELLO with `live`; ngircd: all in one channel). Each sender keeps up to \(window) messages not yet received by all \(clients - 1) others; a delivery counts when a receiver reads it, its latency is from the sender's write to that read. The relay writes each frame to every connection, the sender's own copy included (not counted). Server CPU is the process's user+system time over the run (/proc/<pid>/stat) divided by the deliveries.")
        for (name, outcome) in [("toom", toom), ("ngircd", ngircd)] {
            switch outcome {
            case .success(let measured):
                table.notes.append("\(name): \(measured.result.deliveries) deliveries timed over the rounds; out of order, after a gap or twice: \(measured.result.disorder); messages not delivered to everyone: \(measured.result.missing).")
            case .failure(let error):
                table.notes.append("\(name): SKIPPED, \(error)")
            }
        }
        return table
    }

    /// The median rate and CPU per delivery, all the rounds' latencies and the sums of their
    /// counts; skipped if any round was.
    static func median(_ rounds: [Result<Measured, Skipped>]) -> Result<Measured, Skipped> {
        var measured: [Measured] = []
        for round in rounds {
            switch round {
            case .success(let one): measured.append(one)
            case .failure(let skipped): return .failure(skipped)
            }
        }
        var latency = measured[0].result.latency
        for one in measured.dropFirst() { latency.add(one.result.latency) }
        func sum(_ count: KeyPath<FanoutLoad.Result, Int>) -> Int { measured.map { $0.result[keyPath: count] }.reduce(0, +) }
        let result = FanoutLoad.Result(rate: ToomBench.median(measured.map(\.result.rate)), latency: latency, deliveries: sum(\.deliveries),
                                       total: sum(\.total), disorder: sum(\.disorder), missing: sum(\.missing))
        return .success(Measured(result: result, cpuPerDelivery: ToomBench.median(measured.map(\.cpuPerDelivery))))
    }

    private func measureRelay(seconds: Double) async throws -> Measured {
        let scratch = try Scratch("fanout-relay")
        let server = try await ServerProcess(executable: context.benchPath, arguments: ["relay-server"], directory: scratch.url)
        return try await server.whileRunning { server in
            try await measure(server, peer: .echo, seconds: seconds, frame: { "BCM\t\($0)\n" }) { _, _ in }
        }
    }

    /// A failure (not thrown) when this toom does not grant live delivery.
    private func measureToom(seconds: Double) async throws -> Result<Measured, Skipped> {
        let scratch = try Scratch("fanout-toom")
        try scratch.write("credentials.txt", benchCredentials(clients))
        let server = try await ServerProcess(executable: context.toomPath,
                                             arguments: ["server", "0", "3", "--host", "127.0.0.1", "--data-dir", scratch.url.path]
                                                 + context.noFloodControl,
                                             directory: scratch.url)
        do {
            return .success(try await server.whileRunning { server in try await measure(server, peer: .toom, seconds: seconds, frame: { "BCM\t\($0)\n" }) { client, i in
                let hello = try await client.requestLines("HELLO\t1\ttoom-bench\tlive\n")
                guard let granted = hello.last, granted.hasPrefix("HELLO\t"), granted.split(separator: "\t").dropFirst(2).contains("live") else {
                    throw Skipped("this toom does not grant live delivery (it answered \(hello.last.map { "\"\($0.replacingOccurrences(of: "\t", with: " "))\"" } ?? "nothing") to HELLO 1 toom-bench live)")
                }
                _ = try await client.request("USER\tu\(i)\n")
                let pass = try await client.requestLines("PASS\tp\(i)\t9\n")
                guard pass.last?.hasPrefix("OK") == true else { throw BenchError("u\(i) could not log in: \(pass)") }
            } })
        } catch let skipped as Skipped {
            return .failure(skipped)
        }
    }

    private func measureNgircd(seconds: Double) async throws -> Result<Measured, Skipped> {
        guard Ngircd.path != nil else { return .failure(Skipped(Ngircd.skipReason)) }
        let scratch = try Scratch("fanout-ngircd")
        let server = try await Ngircd.start(in: scratch)
        return .success(try await server.whileRunning { server in
            try await measure(server, peer: .irc, seconds: seconds, width: 50,
                              frame: { "PRIVMSG #fanout :\($0)\r\n" }) { client, i in
                try await Ngircd.logIn(client, nick: "u\(i)", join: "#fanout")
            }
        })
    }

    /// Connects and logs in every client (`width` at a time), then runs the load; clients
    /// 0..<senders send.
    private func measure(_ server: ServerProcess, peer: LineClient.Peer, seconds: Double, width: Int = 100,
                         frame: @escaping @Sendable (String) -> String,
                         logIn: @escaping @Sendable (LineClient, Int) async throws -> Void) async throws -> Measured {
        let load = FanoutLoad(senders: senders, receivers: clients - 1, window: window, frame: frame)
        let list = ClientList(clients)
        let port = server.port
        do {
            try await forEachConcurrently(clients, width: width) { i in
                let client = try await LineClient.connect(port: port, peer: peer, group: MultiThreadedEventLoopGroup.singleton,
                                                          deliveries: (load, i))
                list.set(i, client)
                try await logIn(client, i)
            }
        } catch {
            for client in list.all { await client.close() }
            throw error
        }
        let connections = list.all
        let cpuBefore = server.cpuSeconds
        let result = try await load.run(from: connections.prefix(senders).map(\.channel), seconds: seconds)
        let cpu = server.cpuSeconds - cpuBefore
        for client in connections { await client.close() }
        if result.deliveries == 0 { throw BenchError("no deliveries arrived") }
        return Measured(result: result, cpuPerDelivery: cpu / Double(max(1, result.total)))
    }
}

/// Why a part of a scenario could not run here; the table says so instead of a figure.
struct Skipped: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
