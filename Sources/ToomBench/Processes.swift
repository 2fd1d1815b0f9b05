import Foundation
import ToomTestSupport

enum Resources {
    /// Ten thousand sessions need more descriptors than the usual 1024; children inherit this.
    static func raiseFileLimit() {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = max(limit.rlim_cur, min(limit.rlim_max, 1 << 20))
        if limit.rlim_cur < 65536 { limit.rlim_max = 1 << 20; limit.rlim_cur = 1 << 20 }
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }

    /// Resident memory of a process, in bytes.
    static func residentBytes(of pid: Int32) -> Double {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kib = Double(line.split(separator: " ").dropFirst().first ?? "")
        else { return 0 }
        return kib * 1024
    }
}

/// A server under test in its own process; the last word of its first line (`... port N`)
/// gives the port it bound.
final class ServerProcess {
    let child: ChildProcess
    let port: Int
    /// Seconds from launch until the server printed that it listens.
    let startSeconds: Double

    init(executable: String, arguments: [String], directory: URL) async throws {
        let clock = ContinuousClock()
        let started = clock.now
        child = ChildProcess([executable] + arguments, directory: directory)
        var port: Int?
        let child = self.child
        // Polled often: the start-up time is one of the figures.
        try await eventually("\(executable) to report its port; it wrote: \(String(decoding: child.stderr, as: UTF8.self))",
                             every: .microseconds(200)) {
            let text = String(decoding: child.stdout, as: UTF8.self)
            if let first = text.split(separator: "\n").first, text.contains("\n") {
                port = Int(first.split(separator: " ").last ?? "")
                return true
            }
            if !child.isRunning {
                throw BenchError("\(executable) exited during start-up: \(String(decoding: child.stderr, as: UTF8.self))")
            }
            return false
        }
        let elapsed = clock.now - started
        startSeconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        guard let port else { throw BenchError("\(executable) printed no port: \(String(decoding: child.stdout, as: UTF8.self))") }
        self.port = port
    }

    var residentBytes: Double { child.processIdentifier.map(Resources.residentBytes(of:)) ?? 0 }

    /// Stops the server with SIGTERM and waits for it to exit.
    func stop() async throws {
        child.signal(SIGTERM)
        _ = try await child.waitForExit()
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A scratch directory for one scenario, removed afterwards.
final class Scratch {
    let url: URL
    init(_ name: String) throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("toom-bench-\(name)-\(getpid())")
        try? FileManager.default.removeItem(at: url)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }

    func write(_ name: String, _ text: String) throws {
        try text.write(to: url.appendingPathComponent(name), atomically: false, encoding: .utf8)
    }
}

/// Accounts `u0 … u(n-1)` with passwords `p0 …`.
func benchCredentials(_ count: Int) -> String {
    (0..<count).map { "u\($0) p\($0)\n" }.joined()
}
