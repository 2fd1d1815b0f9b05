import Foundation
import Histogram
import NIOCore
import NIOPosix
import ToomSecurity

/// Logins with hashed passwords (spec §9): how many per second, and what a burst of them
/// does to everyone else. Ten users chat at a steady pace; their message latency is measured
/// without a burst, then while 100 users log in at once. References, in the same run: the
/// latency without the burst, and the same burst against plaintext lines.
struct LoginsScenario {
    let context: BenchContext
    let burst = 100
    let chatters = 10

    func run() async throws -> ResultTable {
        let group = MultiThreadedEventLoopGroup.singleton
        let seconds = context.quick ? 2.0 : 5.0
        // The server's own parameters: what `toom passwd` writes.
        let hashes = try await withThrowingTaskGroup(of: (Int, String).self) { tasks in
            for i in 0..<burst { tasks.addTask { (i, "b\(i) \(try PasswordCheck.hash("p\(i)").text)\n") } }
            var lines = [String](repeating: "", count: burst)
            for try await (i, line) in tasks { lines[i] = line }
            return lines.joined()
        }
        let chatterLines = (0..<chatters).map { "c\($0) p\($0)\n" }.joined()

        var table = ResultTable("logins: \(burst) at once with scrypt hashes, while \(chatters) users chat")
        var plainRate = 0.0
        for hashed in [false, true] {
            let scratch = try Scratch("logins")
            try scratch.write("credentials.txt", chatterLines + (hashed ? hashes : benchCredentials(burst).replacingOccurrences(of: "u", with: "b")))
            // Flood control off: the chatters' pace is above its default rate.
            let server = try await ServerProcess(executable: context.toomPath,
                                                 arguments: ["server", "0", "3", "--host", "127.0.0.1", "--data-dir", scratch.url.path]
                                                     + context.noFloodControl,
                                                 directory: scratch.url)
            var talkers: [LineClient] = []
            for i in 0..<chatters { talkers.append(try await logIn(port: server.port, user: "c\(i)", password: "p\(i)", group: group)) }
            let (quiet, _) = try await chat(talkers, while: { try await Task.sleep(for: .seconds(seconds)) })
            let port = server.port
            let (busy, burstSeconds) = try await chat(talkers) {
                try await forEachConcurrently(burst, width: burst) { i in
                    let client = try await logIn(port: port, user: "b\(i)", password: "p\(i)", group: group)
                    await client.close()
                }
            }
            for talker in talkers { await talker.close() }
            try await server.stop()
            let out = String(decoding: server.child.stdout, as: UTF8.self)
            let loggedIn = out.split(separator: "\n").filter { $0.hasPrefix("b") && $0.hasSuffix(" login") }.count
            guard loggedIn == burst else { throw BenchError("\(loggedIn) of the \(burst) logins succeeded") }
            let rate = Double(burst) / burstSeconds
            if !hashed {
                plainRate = rate
                continue
            }
            table.add("logins per second (hashed)", value: rate, reference: plainRate, unit: .rate("login"), target: nil)
            table.add("others' message latency p99 during the burst", value: Double(busy.valueAtPercentile(99)),
                      reference: Double(quiet.valueAtPercentile(99)), unit: .microseconds, target: .ratioAtMost(2))
            table.add("others' message latency p50 during the burst", value: Double(busy.valueAtPercentile(50)),
                      reference: Double(quiet.valueAtPercentile(50)), unit: .microseconds, target: nil)
        }
        table.notes.append("A login is connect, HELLO, USER, PASS on a plaintext connection, so the figures are the hashing's (N = 2^15, r = 8, p = 1), checked on the server's low-priority verifier threads; the reference for logins per second is the same burst against plaintext lines. Each of the \(chatters) chatting users sends a BCM every 10 ms; the latency reference is theirs over \(Int(seconds)) s without a burst.")
        return table
    }

    private func logIn(port: Int, user: String, password: String, group: EventLoopGroup) async throws -> LineClient {
        let client = try await LineClient.connect(port: port, peer: .toom, group: group)
        _ = try await client.request("HELLO\t1\ttoom-bench\n")
        _ = try await client.request("USER\t\(user)\n")
        _ = try await client.request("PASS\t\(password)\t9\n")
        return client
    }

    /// Every talker sends a BCM each 10 ms until `work` ends; their latencies (µs) and how long `work` took.
    private func chat(_ talkers: [LineClient], while work: @escaping @Sendable () async throws -> Void) async throws
        -> (Histogram<UInt64>, Double) {
        let done = ManagedAtomicFlag()
        let start = DispatchTime.now().uptimeNanoseconds
        async let histograms = withThrowingTaskGroup(of: Histogram<UInt64>.self) { group in
            for (i, talker) in talkers.enumerated() {
                group.addTask {
                    var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
                    var k = 0
                    while !done.isSet {
                        let sent = DispatchTime.now().uptimeNanoseconds
                        _ = try await talker.request("BCM\tmessage \(k) from c\(i)\n")
                        histogram.record((DispatchTime.now().uptimeNanoseconds - sent) / 1000)
                        k += 1
                        try await Task.sleep(for: .milliseconds(10))
                    }
                    return histogram
                }
            }
            var merged = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
            for try await histogram in group { merged.add(histogram) }
            return merged
        }
        do {
            try await work()
        } catch {
            done.set()
            _ = try? await histograms
            throw error
        }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        done.set()
        return (try await histograms, elapsed)
    }
}

/// A flag set once, read from many tasks.
final class ManagedAtomicFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
