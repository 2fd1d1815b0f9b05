import Foundation

/// A PostgreSQL cluster of its own for a test suite or a benchmark: `initdb` into a temporary
/// directory, `pg_ctl` on a free loopback port, trust authentication for the role `toom`,
/// stopped (and its directory removed) by `stop()`. As root, the server runs as the
/// `postgres` user through `runuser` (PostgreSQL refuses to run as root). The guide's
/// recipe, in code (docs: ../shared/guide/ENGINEERING.md, "PostgreSQL in tests").
///
/// Every operation that waits for a program is async and waits on a thread of its own
/// (`offPool`), never on the cooperative pool: `initdb` and `pg_ctl` take seconds, and two
/// pool threads (a two-core machine) blocked that long stall every other test running
/// meanwhile.
public final class ThrowawayPostgres: @unchecked Sendable {
    public let port: Int
    public let directory: String
    private let lock = NSLock()
    private var databases = 0
    private var stopped = false

    /// The folder of `initdb`, `pg_ctl` and `psql`, or nil.
    public static let binaries: String? = {
        let root = "/usr/lib/postgresql"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        for version in versions.sorted(by: { (Int($0) ?? 0) > (Int($1) ?? 0) }) {
            let bin = "\(root)/\(version)/bin"
            if FileManager.default.isExecutableFile(atPath: bin + "/initdb") { return bin }
        }
        return nil
    }()

    /// Nil when a cluster can be started here; otherwise why not.
    public static let unavailableReason: String? = {
        guard binaries != nil else { return "PostgreSQL is not installed (Debian package postgresql; .ci/run installs it)" }
        if geteuid() == 0 && getpwnam("postgres") == nil { return "running as root without a postgres user to run the server as" }
        return nil
    }()

    /// For `@Test(.enabled(if:))` or a guard: says why not, once per call, when it is not.
    public static var isAvailable: Bool {
        if let reason = unavailableReason { print("SKIPPED PostgreSQL tests: \(reason)") }
        return unavailableReason == nil
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Runs a PostgreSQL tool as the user the cluster belongs to.
    private static func tool(_ name: String, _ arguments: [String]) throws -> String {
        guard let bin = binaries else { throw Failure(description: unavailableReason ?? "no PostgreSQL") }
        let (executable, rest) = geteuid() == 0
            ? ("/usr/sbin/runuser", ["-u", "postgres", "--", "\(bin)/\(name)"] + arguments)
            : ("\(bin)/\(name)", arguments)
        let (status, output) = try runToFile(executable, rest)
        guard status == 0 else { throw Failure(description: "\(name) \(arguments.joined(separator: " ")) failed (\(status)): \(output)") }
        return output
    }

    /// Runs a short command with its output in a temporary file, not a pipe, and no other
    /// descriptor of this process: the server `pg_ctl` leaves running would inherit them and
    /// hold them open (a pipe's reader would wait for good; a test's closed connection would
    /// stay open for the server it was connected to). Spawns and reaps the child itself (posix_spawn,
    /// waitpid on its pid): Foundation's `Process` reaps through Dispatch, whose threads a
    /// busy test run may not give it, and a `pg_ctl` that had exited then looked alive.
    /// Blocks the calling thread, like `runCapturing`.
    private static func runToFile(_ executable: String, _ arguments: [String]) throws -> (Int32, String) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("toom-pg-out-\(UUID().uuidString)").path
        defer { unlink(path) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Nothing else of this process: a test's sockets inherited by the PostgreSQL server
        // that pg_ctl leaves running would stay open after the test closed them.
        closeOthers(&actions)
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        guard spawned == 0 else { throw Failure(description: "cannot run \(executable): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        let exited = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (exited, text)
    }

    /// glibc 2.34's posix_spawn_file_actions_addclosefrom_np, which Swift's Glibc module
    /// does not show: looked up at run time, as swift-subprocess does; otherwise each open
    /// descriptor above 2 is closed by name.
    private static func closeOthers(_ actions: inout posix_spawn_file_actions_t) {
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") {
            let closeFrom = unsafeBitCast(symbol, to: CloseFrom.self)
            if closeFrom(&actions, 3) == 0 { return }
        }
        for fd in 3..<Int32(min(getdtablesize(), 65536)) where fcntl(fd, F_GETFD) != -1 {
            posix_spawn_file_actions_addclose(&actions, fd)
        }
    }

    /// Starts a new cluster; about a second.
    public static func start() async throws -> ThrowawayPostgres {
        try await offPool { try startBlocking() }
    }

    private static func startBlocking() throws -> ThrowawayPostgres {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("toom-pg-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if geteuid() == 0, let user = getpwnam("postgres") {
            chown(directory, user.pointee.pw_uid, user.pointee.pw_gid)
        }
        _ = try tool("initdb", ["-D", directory + "/data", "-A", "trust", "-U", "toom", "--no-sync"])
        var lastError: Error?
        for _ in 0..<5 {
            let port = freeTCPPort()
            do {
                // Connections for toom-bench's pgbench with 100 clients beside the servers' pools.
                _ = try tool("pg_ctl", ["-D", directory + "/data", "-o",
                                        "-p \(port) -k \(directory) -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=250",
                                        "-l", directory + "/log", "-w", "start"])
                return ThrowawayPostgres(port: port, directory: directory)
            } catch {
                lastError = error  // the port was taken meanwhile: another one
            }
        }
        throw lastError!
    }

    private init(port: Int, directory: String) {
        self.port = port
        self.directory = directory
    }

    deinit { stop() }

    /// The URL of a database of the cluster.
    public func url(_ database: String) -> String { "postgres://toom@127.0.0.1:\(port)/\(database)?sslmode=disable" }

    /// The database a URL of `url(_:)` names.
    public static func database(of url: String) -> String { String(url.split(separator: "/").last!.prefix { $0 != "?" }) }

    /// A new, empty database; returns its URL.
    public func createDatabase() async throws -> String {
        let name: String = lock.withLock { databases += 1; return "t\(databases)" }
        try await psql("postgres", "create database \(name)")
        return url(name)
    }

    /// Runs SQL through `psql` (test fixtures only: never text from a user).
    @discardableResult
    public func psql(_ database: String, _ sql: String) async throws -> String {
        try await offPool { try self.psqlBlocking(database, sql) }
    }

    private func psqlBlocking(_ database: String, _ sql: String) throws -> String {
        guard let bin = Self.binaries else { throw Failure(description: "no PostgreSQL") }
        let (status, output) = try Self.runToFile("\(bin)/psql", [
            "postgresql://toom@127.0.0.1:\(port)/\(database)", "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql])
        guard status == 0 else { throw Failure(description: "psql: \(sql): \(output)") }
        return output
    }

    /// Stops the database (for outage tests); `resume` starts it again on the same port.
    public func pause() async throws {
        try await offPool { try self.pauseBlocking() }
    }

    private func pauseBlocking() throws {
        _ = try Self.tool("pg_ctl", ["-D", directory + "/data", "-m", "immediate", "-w", "stop"])
    }

    /// Starts the database again; after a crash, tries for a few seconds while the killed
    /// server's processes go.
    public func resume() async throws {
        try await offPool { try self.resumeBlocking() }
    }

    private func resumeBlocking() throws {
        var attempts = 0
        while true {
            do {
                _ = try Self.tool("pg_ctl", ["-D", directory + "/data", "-o",
                                             "-p \(port) -k \(directory) -c listen_addresses=127.0.0.1",
                                             "-l", directory + "/log", "-w", "start"])
                return
            } catch {
                attempts += 1
                if attempts >= 20 { throw error }
                usleep(250_000)
            }
        }
    }

    /// CPU seconds (user plus system) the database server has spent so far: the postmaster,
    /// its live processes (backends, WAL writer, checkpointer...) and those that have exited
    /// (a backend whose client left), which the postmaster's children's time holds.
    public var cpuSeconds: Double {
        guard let postmaster, let own = ProcessStat(pid: postmaster) else { return 0 }
        return own.cpuSeconds + own.exitedChildrenCPUSeconds + ProcessStat.children(of: postmaster).map(\.cpuSeconds).reduce(0, +)
    }

    /// How many processes the database server runs now (its own, and one per connection).
    public var processCount: Int { postmaster.map { ProcessStat.children(of: $0).count } ?? 0 }

    /// The server's process, from its pid file.
    private var postmaster: Int32? {
        guard let text = try? String(contentsOfFile: directory + "/data/postmaster.pid", encoding: .utf8) else { return nil }
        return Int32(text.prefix { $0 != "\n" })
    }

    /// Kills the database server with SIGKILL, as a crash would (no shutdown, no checkpoint).
    public func crash() throws {
        guard let pid = postmaster else { throw Failure(description: "no postmaster.pid") }
        kill(pid, SIGKILL)
    }

    /// Stops the cluster and removes its directory.
    public func stop() {
        let first: Bool = lock.withLock { defer { stopped = true }; return !stopped }
        guard first else { return }
        _ = try? Self.tool("pg_ctl", ["-D", directory + "/data", "-m", "immediate", "-w", "stop"])
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// Runs blocking work on a thread of its own and awaits it, leaving the cooperative pool free.
public func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
    }
}

/// A TCP port on loopback that was free a moment ago.
public func freeTCPPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
    }
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}
