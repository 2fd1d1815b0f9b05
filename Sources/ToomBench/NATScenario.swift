import Foundation
import ToomTestSupport

/// `nat` (spec §12): `UPD` between clients in `NATLab`'s homes, through the real `toom`
/// binaries. Direct across two cone NATs against the same routed path without NATs;
/// relayed (a symmetric NAT, the relay unlimited) against direct, with the server's CPU
/// per relayed GiB; the time to a direct path; IPv6 loopback against IPv4. Each transfer's
/// rate leaves out the time to its path, measured in the same setting with a 1-byte file.
struct NATScenario {
    let context: BenchContext

    private var size: Int { context.quick ? 64 << 20 : 256 << 20 }
    private var rounds: Int { context.quick ? 1 : 3 }
    private var pathSamples: Int { context.quick ? 10 : 40 }

    func run() async throws -> ResultTable {
        var table = ResultTable("NAT traversal and the relay (spec §12)")
        if let reason = NetworkNamespace.unavailableReason {
            table.notes.append("Skipped: \(reason).")
            return table
        }
        var direct: [Double] = [], routed: [Double] = [], relayed: [Double] = [], cpu: [Double] = []
        var v4: [Double] = [], v6: [Double] = []
        var directPath: [Double] = [], routedPath: [Double] = []
        for _ in 0..<rounds {
            try await withLab(.routed, .routed) { pair in
                routed.append(try await pair.rate(size))
                if routedPath.isEmpty { routedPath = try await pair.pathTimes(pathSamples) }
            }
            try await withLab(.cone, .cone) { pair in
                direct.append(try await pair.rate(size))
                if directPath.isEmpty { directPath = try await pair.pathTimes(pathSamples) }
            }
            try await withLab(.cone, .symmetric) { pair in
                let before = pair.server.cpuSeconds
                relayed.append(try await pair.rate(size))
                cpu.append((pair.server.cpuSeconds - before) / (Double(size) / Double(1 << 30)))
            }
            v4.append(try await withLoopback("127.0.0.1") { pair in try await pair.rate(size) })
            v6.append(try await withLoopback("::1") { pair in try await pair.rate(size) })
        }
        let mb = ResultTable.Unit.rate("MB")
        table.add("direct across two cone NATs (MB/s)", value: median(direct).map { $0 / 1e6 },
                  reference: median(routed).map { $0 / 1e6 }, unit: mb, target: .ratioAtLeast(0.9))
        table.add("relayed, unlimited relay (MB/s) vs direct", value: median(relayed).map { $0 / 1e6 },
                  reference: median(direct).map { $0 / 1e6 }, unit: mb, target: .ratioAtLeast(0.5))
        let turn = try await TURNReference.cpuPerGiB()
        table.add("server CPU per relayed GiB (vs coturn)", value: median(cpu), reference: turn.seconds, unit: .seconds,
                  target: nil)
        if let why = turn.missing { table.notes.append("coturn not measured: \(why).") }
        table.add("time to a direct path, p50", value: percentile(directPath, 0.5),
                  reference: percentile(routedPath, 0.5), unit: .seconds, target: nil)
        table.add("time to a direct path, p99", value: percentile(directPath, 0.99),
                  reference: percentile(routedPath, 0.99), unit: .seconds, target: .valueAtMost(2, "≤ 2 s"))
        table.add("IPv6 loopback (MB/s) vs IPv4", value: median(v6).map { $0 / 1e6 },
                  reference: median(v4).map { $0 / 1e6 }, unit: mb, target: .ratioAtLeast(0.9))
        table.notes.append("""
            \(size >> 20) MiB a transfer, medians of \(rounds) rounds (each setting once a round, in turns); rates leave \
            out the time to the path (a 1-byte UPD in the same setting: \(pathSamples) of them for the path times, \
            which are whole 1-byte UPDs from the command to `has been uploaded`, references on the routed path \
            without NATs). Relayed: home B behind `masquerade random`, `--relay-rate 100G`. The coturn reference: \
            `turnserver` on loopback relaying between `turnutils_uclient -y` clients (4 of them, 1,400-byte \
            messages, as fast as they go), its CPU over the bytes its clients received.
            """)
        return table
    }

    // MARK: Settings

    /// A server on the lab's internet, hans at home A, yoda at home B.
    private func withLab(_ a: NATLab.NAT, _ b: NATLab.NAT, _ body: (inout Pair) async throws -> Void) async throws {
        let lab = try NATLab(homeA: a, homeB: b)
        defer { lab.remove() }
        let scratch = try Scratch("nat")
        var pair = try await Pair.start(context, scratch: scratch, host: lab.serverAddress, server: lab.server.launcher,
                                        hans: lab.hostA.launcher, yoda: lab.hostB.launcher)
        defer { pair.stop() }
        try await body(&pair)
    }

    private func withLoopback(_ host: String, _ body: (inout Pair) async throws -> Double) async throws -> Double {
        let scratch = try Scratch("loopback")
        var pair = try await Pair.start(context, scratch: scratch, host: host, server: [], hans: [], yoda: [])
        defer { pair.stop() }
        return try await body(&pair)
    }

    private func median(_ values: [Double]) -> Double? {
        values.isEmpty ? nil : values.sorted()[values.count / 2]
    }

    private func percentile(_ values: [Double], _ p: Double) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)]
    }

    /// A server and two logged-in clients, hans sending to yoda.
    struct Pair {
        let server: ServerProcess
        let hans: ChildProcess
        let yoda: ChildProcess
        let hansDirectory: URL
        var uploads = 0

        static func start(_ context: BenchContext, scratch: Scratch, host: String, server launcher: [String],
                          hans hansLauncher: [String], yoda yodaLauncher: [String]) async throws -> Pair {
            try scratch.write("credentials.txt", "hans falcon*solo\nyoda wise@!man\n")
            let server = try await ServerProcess(executable: launcher.first ?? context.toomPath,
                                                 arguments: Array(launcher.dropFirst()) + (launcher.isEmpty ? [] : [context.toomPath])
                                                     + ["server", "0", "3", "--host", host, "--data-dir", scratch.url.path,
                                                        "--relay-rate", "100G"],
                                                 directory: scratch.url)
            func client(_ user: String, _ password: String, _ launcher: [String]) throws -> (ChildProcess, URL) {
                let directory = scratch.url.appendingPathComponent(user)
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                let child = ChildProcess(launcher + [context.toomPath, "client", host, String(server.port), "0", "--plaintext",
                                                     "--transfer-timeout", "30"],
                                         directory: directory, environment: ["HOME": directory.path])
                child.write(Array("\(user)\n\(password)\n".utf8))
                return (child, directory)
            }
            let (hans, hansDirectory) = try client("hans", "falcon*solo", hansLauncher)
            let (yoda, _) = try client("yoda", "wise@!man", yodaLauncher)
            for child in [hans, yoda] {
                try await eventually("a client to log in: \(String(decoding: child.stderr, as: UTF8.self))") {
                    String(decoding: child.stdout, as: UTF8.self).contains("Welcome to TOOM!")
                }
            }
            return Pair(server: server, hans: hans, yoda: yoda, hansDirectory: hansDirectory)
        }

        /// Seconds from `UPD` to `has been uploaded` for a file of `size` bytes.
        mutating func upload(_ size: Int) async throws -> Double {
            uploads += 1
            let name = "f\(uploads).bin"
            let path = hansDirectory.appendingPathComponent(name).path
            FileManager.default.createFile(atPath: path, contents: nil)
            try FileHandle(forWritingAtPath: path).map { handle in
                try handle.truncate(atOffset: UInt64(size))
                try handle.close()
            }
            let done = "\(name) has been uploaded"
            let clock = ContinuousClock()
            let started = clock.now
            hans.write(Array("UPD yoda \(name)\n".utf8))
            let hans = self.hans
            try await eventually("\(name) to be uploaded", timeout: .seconds(120), every: .milliseconds(2)) {
                let text = String(decoding: hans.stdout, as: UTF8.self)
                if text.contains("Upload of \(name)") { throw BenchError(text) }
                return text.contains(done)
            }
            try? FileManager.default.removeItem(atPath: path)
            let elapsed = clock.now - started
            return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        }

        /// Bytes a second once the path is found: the time of a 1-byte UPD (the median of
        /// three, after one that warms up neighbour tables and NAT mappings) taken off.
        mutating func rate(_ size: Int) async throws -> Double {
            _ = try await upload(1)
            var paths: [Double] = []
            for _ in 0..<3 { paths.append(try await upload(1)) }
            let whole = try await upload(size)
            return Double(size) / max(whole - paths.sorted()[1], 1e-3)
        }

        mutating func pathTimes(_ count: Int) async throws -> [Double] {
            var times: [Double] = []
            for _ in 0..<count { times.append(try await upload(1)) }
            return times
        }

        func stop() {
            for child in [hans, yoda] { child.closeInput() }
            server.child.signal(SIGTERM)
        }
    }
}

/// coturn's `turnserver` relaying between the clients of its own load tool, for the CPU a
/// TURN relay spends per GiB; nil where coturn is not installed (Debian package `coturn`).
enum TURNReference {
    static func cpuPerGiB() async throws -> (seconds: Double?, missing: String?) {
        guard let server = NetworkNamespace.tool("turnserver"), let client = NetworkNamespace.tool("turnutils_uclient")
        else { return (nil, "no turnserver and turnutils_uclient (Debian package coturn)") }
        let port = 34_780 + Int.random(in: 0..<1000)
        let turn = ChildProcess([server, "-n", "--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1",
                                 "--listening-port", String(port), "--no-auth", "--no-tls", "--no-dtls", "--no-cli",
                                 "--allow-loopback-peers", "--min-port", "50000", "--max-port", "50400",
                                 "--log-file", "stdout", "--simple-log"])
        defer { turn.signal(SIGTERM) }
        try await eventually("turnserver to start") {
            String(decoding: turn.stdout, as: UTF8.self).contains("Total General servers") || !turn.isRunning
        }
        guard turn.isRunning, let pid = turn.processIdentifier else {
            return (nil, "turnserver exited: \(String(decoding: turn.stdout + turn.stderr, as: UTF8.self).suffix(300))")
        }
        let before = Resources.cpuSeconds(of: pid)
        let load = try await run([client, "-y", "-m", "4", "-n", "10000", "-l", "1400", "-z", "0", "-c",
                                  "-p", String(port), "127.0.0.1"])
        let cpu = Resources.cpuSeconds(of: pid) - before
        // "tot_recv_bytes ~ N": what the clients got through the relay (it reports on either stream).
        let report = load.out + load.err
        let totals = report.split(separator: "\n").filter { $0.contains("tot_recv_bytes ~ ") }
        guard let line = totals.last, let number = line.split(separator: "~").last,
              let bytes = Double(number.trimmingCharacters(in: .whitespaces)), bytes > 0
        else { return (nil, "turnutils_uclient said: \(report.suffix(300))") }
        return (cpu / (bytes / Double(1 << 30)), nil)
    }
}
