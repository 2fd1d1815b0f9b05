import Foundation

/// A program running in a detached tmux session on a private server, for tests of what a
/// terminal shows.
final class Tmux: @unchecked Sendable {
    static let path = ["/usr/bin/tmux", "/usr/local/bin/tmux"].first { FileManager.default.isExecutableFile(atPath: $0) }
    static var isAvailable: Bool { path != nil && closeFrom != nil }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and later), which Swift's
    /// Glibc module does not export.
    private static let closeFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
    }()

    private let socket = "toom-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"

    init(command: [String], in directory: URL, columns: Int = 120, rows: Int = 30) throws {
        let line = command.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        // The tmux server outlives this command: it must not inherit a pipe we read to the end.
        try run(["new-session", "-d", "-x", String(columns), "-y", String(rows), "-c", directory.path, line], output: false)
        try run(["set-option", "-g", "remain-on-exit", "on"], output: false)
    }

    func type(_ text: String) {
        _ = try? run(["send-keys", "-l", text], output: false)
        _ = try? run(["send-keys", "Enter"], output: false)
    }

    var screen: String { (try? run(["capture-pane", "-p"])) ?? "" }

    /// Waits until the screen satisfies `condition`; returns that screen.
    @discardableResult
    func waitFor(_ condition: @escaping (String) -> Bool) async throws -> String {
        var seen = ""
        try await eventually("the terminal to show what was expected; it shows:\n\(screen)") {
            seen = screen
            return condition(seen)
        }
        return seen
    }

    func kill() { _ = try? run(["kill-server"], output: false) }

    /// Runs a tmux command and returns its output. Not through `Process`: the tmux server
    /// that `new-session` starts would inherit the descriptor `Process` watches for the
    /// child's exit, and with it every descriptor of this process; here the child gets
    /// only its standard streams, and a clean signal mask.
    @discardableResult
    private func run(_ arguments: [String], output wanted: Bool = true) throws -> String {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var pipeEnds: [Int32] = [-1, -1]
        if wanted {
            guard pipe(&pipeEnds) == 0 else { throw HarnessError(description: "pipe: \(errno)") }
            posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 1)
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        guard let closeFrom = Self.closeFrom else { throw HarnessError(description: "no posix_spawn_file_actions_addclosefrom_np") }
        _ = closeFrom(&actions, 3)
        // Threads of this process block signals; tmux needs them (SIGCHLD, SIGTERM).
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = ([Self.path!, "-L", socket] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, Self.path!, &actions, &attributes, argv, environ)
        var text = ""
        if wanted {
            close(pipeEnds[1])
            var data = [UInt8]()
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = read(pipeEnds[0], &chunk, chunk.count)
                if n <= 0 { break }
                data += chunk[0..<n]
            }
            close(pipeEnds[0])
            text = String(decoding: data, as: UTF8.self)
        }
        guard spawned == 0 else { throw HarnessError(description: "tmux: \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return text
    }
}
