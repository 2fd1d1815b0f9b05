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
}

/// A server under test in its own process: stdout goes to a file, from which the first
/// line (`... port N`) gives the port it bound.
final class ServerProcess {
    let process = Process()
    let directory: URL
    let port: Int
    /// Seconds from launch until the server printed that it listens.
    let startSeconds: Double

    init(executable: String, arguments: [String], directory: URL) throws {
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
        try process.run()
        var port: Int?
        while port == nil {
            if let text = try? String(contentsOf: outURL, encoding: .utf8), let first = text.split(separator: "\n").first,
               text.contains("\n"), let value = Int(first.split(separator: " ").last ?? "") {
                port = value
            } else if !process.isRunning {
                let err = (try? String(contentsOf: directory.appendingPathComponent("server.err"), encoding: .utf8)) ?? ""
                throw BenchError("server exited during start-up: \(err)")
            } else {
                usleep(200)
            }
        }
        startSeconds = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
        self.port = port!
    }

    /// The `SHA256:...` of the server's certificate, from its start-up line.
    func fingerprint() throws -> String {
        let outURL = directory.appendingPathComponent("server.out")
        let deadline = DispatchTime.now().uptimeNanoseconds + 10_000_000_000
        while DispatchTime.now().uptimeNanoseconds < deadline {
            let text = (try? String(contentsOf: outURL, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("TLS certificate fingerprint ") }) {
                return String(line.split(separator: " ")[3])
            }
            usleep(1000)
        }
        throw BenchError("the server printed no TLS fingerprint")
    }

    var residentBytes: Double { Resources.residentBytes(of: process.processIdentifier) }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
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
