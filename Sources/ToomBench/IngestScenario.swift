import Foundation
import Histogram
import NIOCore
import NIOPosix

/// 100 clients sending BCM and SRM as fast as the replies come back: durable messages per
/// second and their latency. Reference: the echo server answering the same frames.
struct IngestScenario {
    let context: BenchContext
    let clients = 100

    func run() async throws -> ResultTable {
        let seconds = context.quick ? 3.0 : 10.0
        let group = MultiThreadedEventLoopGroup.singleton

        var table = ResultTable("ingest: \(clients) clients sending BCM and SRM for \(Int(seconds)) s")
        var results: [String: (rate: Double, latency: Histogram<UInt64>)] = [:]
        for (label, extra, tls) in [("toom", [String](), false), ("toom --sync", ["--sync"], false), ("toom TLS", [], true)] {
            let scratch = try Scratch("ingest")
            try scratch.write("credentials.txt", benchCredentials(clients))
            let server = try ServerProcess(executable: context.toomPath,
                                           arguments: ["server", "0", "3", "--host", "127.0.0.1", "--data-dir", scratch.url.path] + extra,
                                           directory: scratch.url)
            let connections = try await logIn(port: server.port, group: group, fingerprint: tls ? server.fingerprint() : nil)
            // Rooms of two: u0 with u1, u2 with u3, ...
            for i in stride(from: 0, to: clients, by: 2) {
                _ = try await connections[i].request("SRB\tu\(i + 1)\n")
            }
            results[label] = try await drive(connections, seconds: seconds) { i, k in
                k % 2 == 0 ? "BCM\tmessage \(k) from u\(i)\n" : "SRM\t\(i / 2 + 1)\tmessage \(k) from u\(i)\n"
            }
            let stored = (try? String(contentsOf: scratch.url.appendingPathComponent("messagelog.txt"), encoding: .utf8))?
                .split(separator: "\n").count ?? 0
            if stored == 0 { throw BenchError("no broadcasts were stored") }
            for connection in connections { await connection.close() }
            server.stop()
        }

        let echoScratch = try Scratch("ingest-echo")
        let echo = try ServerProcess(executable: context.benchPath, arguments: ["echo-server"], directory: echoScratch.url)
        var echoConnections: [LineClient] = []
        for _ in 0..<clients { echoConnections.append(try await LineClient.connect(port: echo.port, peer: .echo, group: group)) }
        let reference = try await drive(echoConnections, seconds: seconds) { i, k in
            k % 2 == 0 ? "BCM\tmessage \(k) from u\(i)\n" : "SRM\t\(i / 2 + 1)\tmessage \(k) from u\(i)\n"
        }
        for connection in echoConnections { await connection.close() }
        echo.stop()

        let toom = results["toom"]!
        let synced = results["toom --sync"]!
        table.add("durable messages per second", value: toom.rate, reference: reference.rate, unit: .rate("msg"), target: .ratioAtLeast(0.5))
        for p in [50.0, 99.0, 99.9] {
            table.add("latency p\(p == 99.9 ? "99.9" : String(Int(p)))", value: Double(toom.latency.valueAtPercentile(p)),
                      reference: Double(reference.latency.valueAtPercentile(p)), unit: .microseconds, target: nil)
        }
        table.add("with --sync: messages per second", value: synced.rate, reference: toom.rate, unit: .rate("msg"), target: nil)
        table.add("with --sync: latency p99", value: Double(synced.latency.valueAtPercentile(99)),
                  reference: Double(toom.latency.valueAtPercentile(99)), unit: .microseconds, target: nil)
        let tls = results["toom TLS"]!
        table.add("with TLS: messages per second", value: tls.rate, reference: toom.rate, unit: .rate("msg"), target: .ratioAtLeast(0.7))
        table.add("with TLS: latency p99", value: Double(tls.latency.valueAtPercentile(99)),
                  reference: Double(toom.latency.valueAtPercentile(99)), unit: .microseconds, target: nil)
        table.notes.append("Each client has one request outstanding and alternates BCM and SRM (rooms of two). A message counts once its reply arrived, i.e. once it is in the log file. The --sync and TLS rows compare against plain toom (plaintext connections), not the echo server; TLS clients pin the server's fingerprint, as toom client --fingerprint does.")
        return table
    }

    private func logIn(port: Int, group: EventLoopGroup, fingerprint: String?) async throws -> [LineClient] {
        var connections: [LineClient] = []
        for i in 0..<clients {
            let client = try await LineClient.connect(port: port, peer: .toom, group: group, fingerprint: fingerprint)
            _ = try await client.request("HELLO\t1\ttoom-bench\n")
            _ = try await client.request("USER\tu\(i)\n")
            _ = try await client.request("PASS\tp\(i)\t9\n")
            connections.append(client)
        }
        return connections
    }

    /// Every connection sends back to back until the time is up; returns the rate and latencies (µs).
    private func drive(_ connections: [LineClient], seconds: Double,
                       frame: @escaping @Sendable (Int, Int) -> String) async throws -> (rate: Double, latency: Histogram<UInt64>) {
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
        var merged = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        for (_, histogram) in histograms { merged.add(histogram) }
        return (Double(histograms.map(\.0).reduce(0, +)) / elapsed, merged)
    }
}
