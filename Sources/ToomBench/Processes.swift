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

    /// User plus system CPU time of a process, all its threads, in seconds.
    static func cpuSeconds(of pid: Int32) -> Double { ProcessStat(pid: pid)?.cpuSeconds ?? 0 }
}

/// A server under test in its own process: the last word of its first line (`... port N`)
/// gives the port it bound; or, for a server told its `port`, ready once it accepts a
/// connection there.
final class ServerProcess {
    let child: ChildProcess
    let port: Int
    /// Seconds from launch until the server printed that it listens.
    let startSeconds: Double

    init(executable: String, arguments: [String], directory: URL, port knownPort: Int? = nil) async throws {
        let clock = ContinuousClock()
        let started = clock.now
        child = ChildProcess([executable] + arguments, directory: directory)
        var port: Int?
        let child = self.child
        // Polled often: the start-up time is one of the figures.
        try await eventually("\(executable) to report its port; it wrote: \(String(decoding: child.stderr, as: UTF8.self))",
                             every: .microseconds(200)) {
            if let knownPort {
                if Loopback.accepts(port: knownPort) {
                    port = knownPort
                    return true
                }
                return false
            }
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
    var cpuSeconds: Double { child.processIdentifier.map(Resources.cpuSeconds(of:)) ?? 0 }
    /// `cpuSeconds` and, of that, the time in user space (the rest is the kernel's work for
    /// the process), from one reading.
    var cpuTimes: (total: Double, user: Double) {
        guard let stat = child.processIdentifier.flatMap(ProcessStat.init(pid:)) else { return (0, 0) }
        return (stat.cpuSeconds, stat.userSeconds)
    }

    /// The `SHA256:...` of the server's certificate, from its start-up lines.
    func fingerprint() async throws -> String {
        var found: String?
        let child = self.child
        try await eventually("the server to print its TLS fingerprint") {
            let text = String(decoding: child.stdout, as: UTF8.self)
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("TLS certificate fingerprint ") }) {
                found = String(line.split(separator: " ")[3])
            }
            return found != nil
        }
        return found!
    }

    /// Runs `body` with the server, then stops it, whether `body` succeeded or not.
    func whileRunning<Result>(_ body: (ServerProcess) async throws -> Result) async throws -> Result {
        do {
            let result = try await body(self)
            try await stop()
            return result
        } catch {
            try? await stop()
            throw error
        }
    }

    /// Stops the server with SIGTERM and waits for it to exit; kills it after 10 s.
    func stop() async throws {
        guard child.isRunning else { return }
        child.signal(SIGTERM)
        do {
            _ = try await child.waitForExit(timeout: .seconds(10))
        } catch {
            child.signal(SIGKILL)
            _ = try await child.waitForExit()
        }
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
