import Foundation
import Histogram
import NIOCore
import NIOPosix
import ToomTestSupport

/// Several servers on one PostgreSQL (spec §11), against a cluster of the scenario's own:
/// ingest with 1 and 2 servers on one database and with the file store, against pgbench
/// running a one-row insert transaction with the same number of clients on the same
/// database in the same run (the database's own limit); fan-out with each; and the latency
/// of a live delivery from a sender on one server to listeners on the other.
///
/// Ingest runs with the ingest scenario's 100 clients, and again with 20: a batch holds
/// what its server's clients sent while the one before was committing, so with few clients
/// a second server halves every batch and nearly doubles the cost per message (the 20-client
/// rows show it; docs/BENCHMARKS.md).
struct ClusterScenario {
    let context: BenchContext
    let clients = 100
    let fewClients = 20
    /// Fan-out: live clients, spread over the servers, the first `liveSenders` sending.
    let live = 40
    let liveSenders = 4
    let senders = 4
    let listeners = 4

    /// One configuration's figures.
    struct Run {
        var ingest: IngestScenario.Measured
        var few: IngestScenario.Measured
        var fanout: FanoutLoad.Result
        /// CPU seconds per message of the many-client ingest: of the database, of all the servers
        /// together. Measured with PostgreSQL only; the file store's run leaves them 0.
        var databaseCPU = 0.0
        var serversCPU = 0.0
    }

    func run() async throws -> ResultTable {
        if let reason = ThrowawayPostgres.unavailableReason {
            // Every other scenario still runs: say why this one did not.
            var table = ResultTable("cluster: several servers on one PostgreSQL")
            table.notes.append("SKIPPED: \(reason)")
            return table
        }
        let seconds = context.quick ? 3.0 : 10.0
        let postgres = try await ThrowawayPostgres.start()
        defer { postgres.stop() }

        // The file store, one server.
        let scratch = try Scratch("cluster-files")
        try scratch.write("credentials.txt", benchCredentials(clients + live + senders + listeners))
        let files = try await ServerProcess(executable: context.toomPath,
                                            arguments: ["server", "0", "3", "--host", "127.0.0.1", "--data-dir", scratch.url.path]
                                                + context.noFloodControl, directory: scratch.url)
        let fileStore = try await files.whileRunning { server in try await measure([server], seconds: seconds) }

        // One and two servers on one database, both set up at once and measured in turns:
        // the ratio of two runs a minute apart on shared cores moved by a third.
        var setups: [Int: [ServerProcess]] = [:]
        var directories: [Scratch] = []
        for count in [1, 2] {
            let url = try await postgres.createDatabase()
            let imported = try await ToomTestSupport.run([context.toomPath, "import", scratch.url.path, "--store", url])
            guard imported.status == 0 else { throw BenchError("toom import: \(imported.err)") }
            var servers: [ServerProcess] = []
            for n in 0..<count {
                let data = try Scratch("cluster-\(count)-\(n)")
                directories.append(data)
                servers.append(try await ServerProcess(executable: context.toomPath,
                                                       arguments: ["server", "0", "3", "--host", "127.0.0.1", "--data-dir", data.url.path,
                                                                   "--store", url] + context.noFloodControl,
                                                       directory: data.url))
            }
            setups[count] = servers
        }
        let runs = try await measureInTurns(setups, seconds: seconds, postgres: postgres)
        let delivery = try await crossServerDelivery(from: setups[2]![0], to: setups[2]![1], seconds: seconds)
        for server in setups.values.joined() { try await server.stop() }
        withExtendedLifetime(directories) {}

        // pgbench: the same numbers of clients inserting one row per transaction.
        let pgbench = try await measurePgbench(postgres, clients: clients, seconds: seconds)
        let pgbenchFew = try await measurePgbench(postgres, clients: fewClients, seconds: seconds)

        let one = runs[1]!, two = runs[2]!
        var table = ResultTable("cluster: \(clients) (and \(fewClients)) clients sending BCM for \(Int(seconds)) s, PostgreSQL \(ThrowawayPostgres.binaries ?? "")")
        table.add("1 server on PostgreSQL: messages per second (vs pgbench)", value: one.ingest.rate, reference: pgbench?.rate,
                  unit: .rate("msg"), target: pgbench == nil ? nil : .ratioAtLeast(0.5))
        table.add("2 servers on one database (vs 1 server)", value: two.ingest.rate, reference: one.ingest.rate, unit: .rate("msg"),
                  target: .ratioAtLeast(0.8))
        table.add("1 server on PostgreSQL (vs the file store)", value: one.ingest.rate, reference: fileStore.ingest.rate,
                  unit: .rate("msg"), target: nil)
        for p in [50.0, 99.0] {
            table.add("latency p\(Int(p)), 1 server (vs the file store)", value: Double(one.ingest.latency.valueAtPercentile(p)),
                      reference: Double(fileStore.ingest.latency.valueAtPercentile(p)), unit: .microseconds, target: nil)
        }
        table.add("server CPU per message, 1 server (vs the file store)", value: one.ingest.cpuPerMessage * 1e6,
                  reference: fileStore.ingest.cpuPerMessage * 1e6, unit: .microseconds, target: nil)
        table.add("servers' CPU per message, 2 servers together (vs 1)", value: two.serversCPU * 1e6,
                  reference: one.serversCPU * 1e6, unit: .microseconds, target: nil)
        table.add("database CPU per message, 1 server (vs pgbench per insert)", value: one.databaseCPU * 1e6,
                  reference: pgbench.map { $0.databaseCPU * 1e6 }, unit: .microseconds, target: nil)
        table.add("database CPU per message, 2 servers (vs 1)", value: two.databaseCPU * 1e6,
                  reference: one.databaseCPU * 1e6, unit: .microseconds, target: nil)
        table.add("\(fewClients) clients: 1 server (vs pgbench, \(fewClients) clients)", value: one.few.rate, reference: pgbenchFew?.rate,
                  unit: .rate("msg"), target: nil)
        table.add("\(fewClients) clients: 2 servers (vs 1 server)", value: two.few.rate, reference: one.few.rate,
                  unit: .rate("msg"), target: nil)
        table.add("fan-out: deliveries per second, 1 server on PostgreSQL (vs the file store)", value: one.fanout.rate,
                  reference: fileStore.fanout.rate, unit: .rate("delivery"), target: nil)
        table.add("fan-out: 2 servers on one database (vs 1 server)", value: two.fanout.rate, reference: one.fanout.rate,
                  unit: .rate("delivery"), target: nil)
        table.add("cross-server delivery latency p50", value: Double(delivery.latency.valueAtPercentile(50)), reference: nil,
                  unit: .microseconds, target: nil)
        table.add("cross-server delivery latency p99", value: Double(delivery.latency.valueAtPercentile(99)), reference: nil,
                  unit: .microseconds, target: .valueAtMost(50_000, "50 ms"))
        table.notes.append("Cross-server delivery: \(senders) senders on one server, \(listeners) live listeners on the other; \(delivery.deliveries) deliveries timed, out of order, after a gap or twice: \(delivery.disorder), messages not delivered to everyone: \(delivery.missing).")
        let fanouts = [("the file store", fileStore.fanout), ("1 server", one.fanout), ("2 servers", two.fanout)]
        table.notes.append("Fan-out: \(live) live clients spread over the servers, \(liveSenders) of them sending, each with up to 4 messages not yet received by all others; " + fanouts.map { "\($0): out of order, after a gap or twice \($1.disorder), not delivered to everyone \($1.missing)" }.joined(separator: "; ") + ".")
        table.notes.append("With PostgreSQL, one server and two servers (each on a database of its own) run at the same time and are measured in turns, \(rounds) turns of \(Self.turn(seconds)) s each with \(clients) clients and again with \(fewClients); each figure is the median of its turns.")
        table.notes.append("Each ingest client has one request outstanding; a message counts once its reply arrived, i.e. once its transaction committed (PostgreSQL with fsync and synchronous_commit on, on this machine's disk). With two servers the clients are split between them. pgbench runs `insert into bench_messages (ts, username, message) values (...)` with \(clients) (and \(fewClients)) clients, one transaction per insert, on the same cluster. Database CPU is the user+system time of the PostgreSQL server's processes (the postmaster, its live children and those that exited) over the \(clients)-client run, divided by the messages (pgbench: its transactions); the servers' CPU sums both servers' processes.")
        if pgbench == nil { table.notes.append("pgbench: SKIPPED, not found next to initdb") }
        return table
    }

    /// Ingest with both client counts, then fan-out, on the file store's one server.
    private func measure(_ servers: [ServerProcess], seconds: Double) async throws -> Run {
        let ingest = IngestScenario(context: context)
        let connections = try await logIn(servers, users: 0..<clients)
        let many = try await ingest.drive(connections, server: servers[0], seconds: seconds, frame: Self.frame)
        let few = try await ingest.drive(Array(connections.prefix(fewClients)), server: servers[0], seconds: seconds, frame: Self.frame)
        for connection in connections { await connection.close() }
        return Run(ingest: many, few: few, fanout: try await fanOut(servers, seconds: seconds))
    }

    static let frame: @Sendable (Int, Int) -> String = { i, k in "BCM\tmessage \(k) from u\(i)\n" }
    let rounds = 3
    /// How long each turn lasts.
    static func turn(_ seconds: Double) -> Double { seconds / 2 }

    /// Ingest on each setup (servers by count, each set with a database of its own) in
    /// turns, with 100 clients and then 20; then fan-out on each. Medians of the turns.
    private func measureInTurns(_ setups: [Int: [ServerProcess]], seconds: Double,
                                postgres: ThrowawayPostgres) async throws -> [Int: Run] {
        let ingest = IngestScenario(context: context)
        var connections: [Int: [LineClient]] = [:]
        for (count, servers) in setups { connections[count] = try await logIn(servers, users: 0..<clients) }
        struct Turn { var measured: IngestScenario.Measured; var databaseCPU: Double; var serversCPU: Double }
        var turns: [Int: [Int: [Turn]]] = [:]  // by client count, then server count
        for width in [clients, fewClients] {
            for _ in 0..<rounds {
                for count in setups.keys.sorted() {
                    let servers = setups[count]!
                    let databaseBefore = postgres.cpuSeconds
                    let serversBefore = servers.map(\.cpuSeconds).reduce(0, +)
                    let measured = try await ingest.drive(Array(connections[count]!.prefix(width)), server: servers[0],
                                                          seconds: Self.turn(seconds), frame: Self.frame)
                    let messages = Double(max(1, measured.messages))
                    turns[width, default: [:]][count, default: []].append(Turn(
                        measured: measured, databaseCPU: (postgres.cpuSeconds - databaseBefore) / messages,
                        serversCPU: (servers.map(\.cpuSeconds).reduce(0, +) - serversBefore) / messages))
                }
            }
        }
        for connection in connections.values.joined() { await connection.close() }
        /// The turn of the median rate, with the medians of the CPU figures.
        func summary(_ turns: [Turn]) -> (IngestScenario.Measured, Double, Double) {
            (median(turns, by: \.measured.rate).measured, median(turns.map(\.databaseCPU)), median(turns.map(\.serversCPU)))
        }
        var runs: [Int: Run] = [:]
        for count in setups.keys.sorted() {
            let (many, databaseCPU, serversCPU) = summary(turns[clients]![count]!)
            let (few, _, _) = summary(turns[fewClients]![count]!)
            runs[count] = Run(ingest: many, few: few, fanout: try await fanOut(setups[count]!, seconds: seconds),
                              databaseCPU: databaseCPU, serversCPU: serversCPU)
        }
        return runs
    }

    /// Logs `users` in, spread over the servers in turn.
    private func logIn(_ servers: [ServerProcess], users: Range<Int>, live: FanoutLoad? = nil) async throws -> [LineClient] {
        var connections: [LineClient] = []
        for (k, i) in users.enumerated() {
            let client = try await LineClient.connect(port: servers[k % servers.count].port, peer: .toom,
                                                      group: MultiThreadedEventLoopGroup.singleton, deliveries: live.map { ($0, k) })
            connections.append(client)
            _ = try await client.request(live == nil ? "HELLO\t1\ttoom-bench\n" : "HELLO\t1\ttoom-bench\tlive\n")
            _ = try await client.request("USER\tu\(i)\n")
            let pass = try await client.requestLines("PASS\tp\(i)\t9\n")
            guard pass.last?.hasPrefix("OK") == true else {
                for connection in connections { await connection.close() }
                throw BenchError("u\(i) could not log in: \(pass)")
            }
        }
        return connections
    }

    /// Every client live, spread over the servers; the first few send broadcasts.
    private func fanOut(_ servers: [ServerProcess], seconds: Double) async throws -> FanoutLoad.Result {
        let load = FanoutLoad(senders: liveSenders, receivers: live - 1, window: 4, frame: { "BCM\t\($0)\n" })
        let connections = try await logIn(servers, users: clients..<(clients + live), live: load)
        let result = try await load.run(from: connections.prefix(liveSenders).map(\.channel), seconds: seconds)
        for connection in connections { await connection.close() }
        return result
    }

    /// Senders on `a` (not live), live listeners on `b`: every delivery crossed servers.
    private func crossServerDelivery(from a: ServerProcess, to b: ServerProcess, seconds: Double) async throws -> FanoutLoad.Result {
        let load = FanoutLoad(senders: senders, receivers: listeners, window: 4, frame: { "BCM\t\($0)\n" })
        var senderChannels: [Channel] = []
        var all: [LineClient] = []
        for i in 0..<(senders + listeners) {
            let listening = i >= senders
            let user = clients + live + i
            let client = try await LineClient.connect(port: listening ? b.port : a.port, peer: .toom,
                                                      group: MultiThreadedEventLoopGroup.singleton, deliveries: (load, i))
            _ = try await client.request(listening ? "HELLO\t1\ttoom-bench\tlive\n" : "HELLO\t1\ttoom-bench\n")
            _ = try await client.request("USER\tu\(user)\n")
            let pass = try await client.requestLines("PASS\tp\(user)\t9\n")
            guard pass.last?.hasPrefix("OK") == true else { throw BenchError("u\(user) could not log in: \(pass)") }
            if !listening { senderChannels.append(client.channel) }
            all.append(client)
        }
        let result = try await load.run(from: senderChannels, seconds: seconds)
        for client in all { await client.close() }
        return result
    }

    /// Transactions per second of pgbench inserting one row each, and the database's CPU
    /// seconds per transaction; nil without pgbench.
    private func measurePgbench(_ postgres: ThrowawayPostgres, clients: Int, seconds: Double) async throws -> (rate: Double, databaseCPU: Double)? {
        guard let bin = ThrowawayPostgres.binaries, FileManager.default.isExecutableFile(atPath: bin + "/pgbench") else { return nil }
        let url = try await postgres.createDatabase()
        let name = ThrowawayPostgres.database(of: url)
        try await postgres.psql(name, "create table bench_messages (id bigserial primary key, ts text, username text, message text)")
        let scratch = try Scratch("cluster-pgbench")
        try scratch.write("insert.sql", "insert into bench_messages (ts, username, message) values ('26 Nov 2026 04:00:00', 'u1', 'message 1 from u1');\n")
        let databaseBefore = postgres.cpuSeconds
        let processesBefore = postgres.processCount
        let result = try await ToomTestSupport.run([bin + "/pgbench", "-n", "-c", String(clients), "-j", "2", "-T", String(Int(seconds)), "-M", "prepared",
                                    "-f", scratch.url.appendingPathComponent("insert.sql").path,
                                    "postgresql://toom@127.0.0.1:\(postgres.port)/\(name)"])
        guard result.status == 0, let line = result.out.split(separator: "\n").first(where: { $0.hasPrefix("tps = ") }),
              let tps = Double(line.dropFirst(6).prefix { $0 != " " }) else {
            throw BenchError("pgbench failed: \(result.out)\(result.err)")
        }
        // pgbench's connections' processes end after it does; their time counts once they have.
        try await eventually("pgbench's database connections to end", timeout: .seconds(10)) { postgres.processCount <= processesBefore }
        let databaseCPU = postgres.cpuSeconds - databaseBefore
        let processed = result.out.split(separator: "\n").first(where: { $0.hasPrefix("number of transactions actually processed: ") })
            .flatMap { Double($0.split(separator: " ").last ?? "") } ?? tps * seconds
        return (tps, databaseCPU / max(1, processed))
    }
}
