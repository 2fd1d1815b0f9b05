import Foundation
import Synchronization
import Testing
import ToomCore
import ToomTestSupport

/// Errors a test reports when an awaited event does not happen.
struct HarnessError: Error, CustomStringConvertible {
    let description: String
}

/// The built `toom` executable, next to the test bundle.
enum ToomBinary {
    static let path: String = {
        var candidates: [URL] = []
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        candidates.append(exe.deletingLastPathComponent())
        candidates.append(Bundle.main.bundleURL)
        for bundle in Bundle.allBundles { candidates.append(bundle.bundleURL.deletingLastPathComponent()) }
        for dir in candidates {
            let url = dir.appendingPathComponent("toom")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url.path }
        }
        return ".build/debug/toom"
    }()
}

/// Runs `toom` to completion.
func runToom(_ arguments: [String]) async throws -> Completed {
    try await run([ToomBinary.path] + arguments)
}

/// A running `toom` process with its standard streams as pipes.
final class ToomProcess: Sendable {
    let process: ChildProcess
    let directory: URL
    /// Where `expect` continues searching stdout.
    private let cursor = Mutex(0)

    /// `launcher` runs the binary through another command, e.g. `ip netns exec <name>`.
    init(_ arguments: [String], in directory: URL, launcher: [String] = []) throws {
        self.directory = directory
        // A home of its own: the client remembers servers in ~/.toom/known_servers, and a
        // test must neither read nor write the real one.
        let home = directory.appendingPathComponent(".home")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        process = ChildProcess(launcher + [ToomBinary.path] + arguments, directory: directory,
                               environment: ProcessInfo.processInfo.environment.merging(["HOME": home.path]) { $1 })
    }

    private var commandLine: String { "toom " + process.arguments.drop(while: { $0 != ToomBinary.path }).dropFirst().joined(separator: " ") }

    var stdout: String { String(decoding: process.stdout, as: UTF8.self) }
    var stderr: String { String(decoding: process.stderr, as: UTF8.self) }

    /// Stderr without the client's first-use notice of a server's fingerprint (spec §9).
    var unexpectedStderr: String {
        stderr.split(separator: "\n").filter { !$0.hasPrefix("First connection to ") }.joined(separator: "\n")
    }

    /// `~/.toom/known_servers` of this process's home.
    var knownServers: URL { directory.appendingPathComponent(".home/.toom/known_servers") }

    /// Stdout as lines, with the client's prompts taken out (a reply follows its prompt on the same line).
    var lines: [String] {
        var text = stdout
        for prompt in [Command.prompt, Messages.usernamePrompt, Messages.passwordPrompt] {
            text = text.replacingOccurrences(of: prompt, with: "")
        }
        return text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
    }

    func send(_ line: String) { process.write(Array((line + "\n").utf8)) }

    func closeInput() { process.closeInput() }

    /// Waits until stdout, after what earlier calls matched, contains `text`; returns the text
    /// up to and including it. Fails at once if the process ended without printing it.
    @discardableResult
    func expect(_ text: String, timeout: Duration = patience) async throws -> String {
        var found = ""
        let waitingFor = { "\"\(text)\" on stdout of \(self.commandLine)\n--- stdout:\n\(self.stdout)\n--- stderr:\n\(self.stderr)" }
        try await eventually(waitingFor(), timeout: timeout) {
            // Asked first: once it has ended, everything it wrote has been read.
            let ended = !process.isRunning
            let out = process.stdout
            let matched = cursor.withLock { cursor in
                guard cursor <= out.count else { return false }
                let rest = String(decoding: out[cursor...], as: UTF8.self)
                guard let range = rest.range(of: text) else { return false }
                found = String(rest[..<range.upperBound])
                cursor += found.utf8.count
                return true
            }
            if !matched, ended {
                throw HarnessError(description: "exited with status \(process.terminationStatus ?? -1) before printing \(waitingFor())")
            }
            return matched
        }
        return found
    }

    /// Sends a command and waits for the next prompt; returns the reply lines.
    func command(_ line: String) async throws -> [String] {
        send(line)
        let text = try await expect(Command.prompt)
        return text.replacingOccurrences(of: Command.prompt, with: "")
            .split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
    }

    /// Waits until the process has exited and everything it wrote has been read.
    func waitForExit(timeout: Duration = patience) async throws -> Int32 {
        do {
            return try await process.waitForExit(timeout: timeout)
        } catch {
            throw HarnessError(description: "\(error) (\(commandLine))\n--- stdout:\n\(stdout)\n--- stderr:\n\(stderr)")
        }
    }

    func signal(_ signal: Int32) { process.signal(signal) }
}

let bundledCredentials = """
hans falcon*solo
yoda wise@!man
vader sithlord**
r2d2 do*!@#dedo
c3p0 droid#gold
leia $blasterpistol$
obiwan (jedimaster)
luke light==saber
chewy wookie+aaaawww
palpatine darkside_%$run
gandalf youshallnotpass

"""

let passwords: [String: String] = {
    var map: [String: String] = [:]
    for line in bundledCredentials.split(separator: "\n") {
        let parts = line.split(separator: " ", maxSplits: 1)
        map[String(parts[0])] = String(parts[1])
    }
    return map
}()

/// A `toom server` on a free loopback port, with its own data directory.
final class TestServer: ServerUnderTest, @unchecked Sendable {
    let root: TemporaryDirectory
    let data: URL
    /// Prefix for every process this server and its clients run as (see `ToomProcess`).
    let launcher: [String]
    /// The address it listens on, and clients connect to.
    let host: String
    private(set) var process: ToomProcess
    private(set) var port: Int

    init(attempts: Int = 3, extra: [String] = [], credentials: String = bundledCredentials,
         launcher: [String] = [], host: String = "127.0.0.1") async throws {
        root = try TemporaryDirectory()
        data = try root.subdirectory("data")
        self.launcher = launcher
        self.host = host
        try credentials.write(to: data.appendingPathComponent("credentials.txt"), atomically: true, encoding: .utf8)
        (process, port) = try await Self.launch(port: 0, attempts: attempts, extra: extra, data: data, root: root,
                                                launcher: launcher, host: host)
    }

    /// Starts `toom server` and reads the port from its first line, `Server listening on <host> port <port>`.
    private static func launch(port: Int, attempts: Int, extra: [String], data: URL, root: TemporaryDirectory,
                               launcher: [String] = [], host: String = "127.0.0.1") async throws -> (ToomProcess, Int) {
        let server = try ToomProcess(["server", String(port), String(attempts), "--host", host,
                                      "--data-dir", data.path] + extra, in: root.url, launcher: launcher)
        let banner = try await server.expect("\n")
        guard banner.hasPrefix("Server listening on \(host) port "),
              let bound = Int(banner.split(separator: " ").last!.trimmingCharacters(in: .whitespacesAndNewlines))
        else {
            throw HarnessError(description: "unexpected server banner: \(banner)")
        }
        return (server, bound)
    }

    /// Stops the server with SIGTERM and waits for a clean exit.
    func stop() async throws -> Int32 {
        process.signal(SIGTERM)
        return try await process.waitForExit()
    }

    /// Starts the server again on the same data directory (and by default the same port).
    func restart(attempts: Int = 3, samePort: Bool = true, extra: [String] = []) async throws {
        (process, port) = try await Self.launch(port: samePort ? port : 0, attempts: attempts, extra: extra,
                                                data: data, root: root, launcher: launcher, host: host)
    }
}

/// A running server that tests connect clients to: its data directory and port.
protocol ServerUnderTest: AnyObject, Sendable {
    var root: TemporaryDirectory { get }
    var data: URL { get }
    var port: Int { get }
    /// A command the clients run through, e.g. `ip netns exec <name>`.
    var launcher: [String] { get }
    /// The address clients connect to.
    var host: String { get }
}

extension ServerUnderTest {
    var launcher: [String] { [] }
    var host: String { "127.0.0.1" }

    func file(_ name: String) -> String? {
        try? String(contentsOf: data.appendingPathComponent(name), encoding: .utf8)
    }

    func fileLines(_ name: String) -> [String] {
        (file(name) ?? "").split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
    }

    /// A client in its own working directory, not yet logged in.
    /// `launcher` runs it elsewhere than the server (another network namespace).
    /// `serverHost` names the server another way than its address (a host name).
    func client(directory name: String = UUID().uuidString, udpPort: Int = 0, extra: [String] = [],
                launcher: [String]? = nil, serverHost: String? = nil) throws -> ToomProcess {
        let dir = try root.subdirectory("client-\(name)")
        return try ToomProcess(["client", serverHost ?? host, String(port), String(udpPort)] + extra, in: dir,
                               launcher: launcher ?? self.launcher)
    }

    /// A client logged in as `user`, at the command prompt.
    func login(_ user: String, udpPort: Int = 0, extra: [String] = [], timeout: Duration = patience,
               launcher: [String]? = nil, serverHost: String? = nil) async throws -> ToomProcess {
        let client = try client(directory: user, udpPort: udpPort, extra: extra, launcher: launcher,
                                serverHost: serverHost)
        try await client.expect(Messages.usernamePrompt)
        client.send(user)
        try await client.expect(Messages.passwordPrompt)
        client.send(passwords[user]!)
        try await client.expect(Messages.welcome, timeout: timeout)
        try await client.expect(Command.prompt)
        return client
    }
}

/// Whether the server grants live delivery (docs/PROTOCOL.md §8) to a HELLO that asks for it.
/// Tests of live delivery require it: a server that does not grant it fails them.
func grantsLive(_ server: ServerUnderTest) throws -> Bool {
    let probe = try RawConnection(port: server.port)
    probe.send("HELLO\t1\tprobe\tlive\n")
    return probe.readLine()?.split(separator: "\t").dropFirst(2).contains("live") == true
}

/// The spec's timestamp shape, for matching lines whose time is not known in advance.
let timestampPattern = #"[1-9][0-9]? (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} [0-2][0-9]:[0-5][0-9]:[0-5][0-9]"#

func matches(_ text: String, _ pattern: String) -> Bool {
    text.range(of: "^" + pattern + "$", options: .regularExpression) != nil
}
