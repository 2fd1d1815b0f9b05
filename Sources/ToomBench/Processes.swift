import Foundation

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
    static func cpuSeconds(of pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let name = stat.lastIndex(of: ")") else { return 0 }
        // After the name: field 3 (state) first; utime and stime are fields 14 and 15, in clock ticks.
        let fields = stat[stat.index(after: name)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}

/// A server under test in its own process: stdout goes to a file, from which the first
/// line (`... port N`) gives the port it bound; or, for a server told its `port`, ready
/// once it accepts a connection there.
final class ServerProcess {
    let process = Process()
    let directory: URL
    let port: Int
    /// Seconds from launch until the server printed that it listens.
    let startSeconds: Double

    init(executable: String, arguments: [String], directory: URL, port knownPort: Int? = nil) throws {
        self.directory = directory
        let outURL = directory.appendingPathComponent("server.out")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = directory
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: outURL.deletingLastPathComponent().appendingPathComponent("server.err").createIfMissing())
        process.standardInput = FileHandle.nullDevice
        let started = DispatchTime.now()
        // A child inherits the blocked signals of the thread that spawns it, and Swift's threads
        // block most: a server (ngircd) would never see the SIGTERM that stops it.
        var none = sigset_t(), previous = sigset_t()
        sigemptyset(&none)
        pthread_sigmask(SIG_SETMASK, &none, &previous)
        do {
            defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
            try process.run()
        }
        var port: Int?
        while port == nil {
            if let knownPort {
                if Loopback.accepts(port: knownPort) { port = knownPort }
            } else if let text = try? String(contentsOf: outURL, encoding: .utf8), let first = text.split(separator: "\n").first,
                      text.contains("\n"), let value = Int(first.split(separator: " ").last ?? "") {
                port = value
            }
            if port == nil {
                if DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds > 60_000_000_000 {
                    kill(process.processIdentifier, SIGKILL)
                    throw BenchError("\(executable) did not listen within 60 s")
                }
                guard process.isRunning else {
                    let err = (try? String(contentsOf: directory.appendingPathComponent("server.err"), encoding: .utf8)) ?? ""
                    throw BenchError("\(executable) exited during start-up: \(err)")
                }
                usleep(knownPort == nil ? 200 : 2000)
            }
        }
        startSeconds = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
        self.port = port!
    }

    var residentBytes: Double { Resources.residentBytes(of: process.processIdentifier) }
    var cpuSeconds: Double { Resources.cpuSeconds(of: process.processIdentifier) }

    /// Asks the server to stop (SIGTERM) and waits for it; kills it after 10 s.
    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = DispatchTime.now().uptimeNanoseconds + 10_000_000_000
        while process.isRunning, DispatchTime.now().uptimeNanoseconds < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
}

extension URL {
    func createIfMissing() -> URL {
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        return self
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
