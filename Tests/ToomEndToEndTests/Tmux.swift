import Foundation
import ToomTestSupport
import Testing

/// A program running in its own tmux server, for tests of terminal behaviour: keys are
/// sent with send-keys and the screen read with capture-pane. The pane stays after the
/// program exits (remain-on-exit), and the wrapper shell then prints the exit status
/// and the terminal's settings, so a test can check the terminal was left sane.
final class TmuxSession: @unchecked Sendable {
    static let available = FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux")
        || FileManager.default.isExecutableFile(atPath: "/usr/local/bin/tmux")

    private let socket = "toom-test-\(UUID().uuidString)"
    private let config: URL
    /// The tmux server's process, killed when the session is dropped.
    private var serverPID: pid_t = 0

    init(_ arguments: [String], in directory: URL, environment: [String: String] = [:]) async throws {
        config = directory.appendingPathComponent(".tmux-\(socket).conf")
        try "set -g remain-on-exit on\nset -g history-limit 5000\n".write(to: config, atomically: true, encoding: .utf8)
        let program = ([ToomBinary.path] + arguments).map(Self.quote).joined(separator: " ")
        // A home of its own, as `ToomProcess` gives: ~/.toom/known_servers stays in the test.
        let home = directory.appendingPathComponent(".home")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        let environment = ["HOME": home.path].merging(environment) { $1 }
        let env = environment.map { "\($0.key)=\(Self.quote($0.value))" }.joined(separator: " ")
        // The settings are printed one per line so a test can find "isig", "-icanon" and so on.
        let script = "\(env.isEmpty ? "" : "env \(env) ")\(program); echo \"[exit status $?]\"; stty -a | tr ' ;' '\\n\\n' | grep -E '^-?(icanon|isig|echo|icrnl|opost)$' | tr '\\n' ' '; echo '[stty]'"
        try await tmux(["-f", config.path, "new-session", "-d", "-x", "200", "-y", "50", "-s", "main",
                  "-c", directory.path, "sh", "-c", script])
        serverPID = pid_t(try await tmux(["display-message", "-p", "-t", "main", "#{pid}"])
            .trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    deinit {
        // A deinit cannot await `tmux kill-server`; SIGTERM stops the server and its pane.
        if serverPID > 0 { kill(serverPID, SIGTERM) }
        try? FileManager.default.removeItem(at: config)
    }

    /// Types text literally.
    func type(_ text: String) async throws { try await tmux(["send-keys", "-t", "main", "-l", text]) }

    /// Presses keys by name: "Enter", "Tab", "C-c", "C-d", "Up".
    func press(_ keys: String...) async throws { try await tmux(["send-keys", "-t", "main"] + keys) }

    /// The screen and what scrolled off its top, trailing blank lines removed. (When the
    /// program exits, tmux's "Pane is dead" line can scroll a short screen by a line.)
    func screen() async throws -> String {
        var lines = try await tmux(["capture-pane", "-p", "-S", "-", "-t", "main"]).split(separator: "\n", omittingEmptySubsequences: false)
        while lines.last?.trimmingCharacters(in: .whitespaces).isEmpty == true { lines.removeLast() }
        return lines.joined(separator: "\n")
    }

    /// The screen's lines, trailing spaces removed.
    func lines() async throws -> [String] {
        try await screen().split(separator: "\n", omittingEmptySubsequences: false).map {
            String($0.reversed().drop(while: { $0 == " " }).reversed())
        }
    }

    /// Waits until the screen shows `text` (whose trailing spaces the screen does not keep);
    /// returns the screen.
    @discardableResult
    func waitFor(_ text: String, timeout: Duration = patience) async throws -> String {
        let text = String(text.reversed().drop(while: { $0 == " " }).reversed())
        var last = ""
        try await eventually("\"\(text)\" on the screen:\n\(last)", timeout: timeout) {
            last = try await screen()
            return last.contains(text)
        }
        return last
    }

    /// Waits until a condition on the screen's lines holds.
    func waitUntil(_ what: String, timeout: Duration = patience, _ condition: ([String]) -> Bool) async throws {
        var last: [String] = []
        try await eventually("\(what); the screen:\n\(last.joined(separator: "\n"))", timeout: timeout) {
            last = try await lines()
            return condition(last)
        }
    }

    /// Waits for the program to exit; returns its status and the terminal settings after it.
    func waitForExit() async throws -> (status: Int32, terminal: Set<String>) {
        let screen = try await waitFor("[stty]")
        guard let statusRange = screen.range(of: #"\[exit status [0-9]+\]"#, options: .regularExpression) else {
            throw HarnessError(description: "no exit status on the screen:\n\(screen)")
        }
        let status = Int32(screen[statusRange].dropFirst("[exit status ".count).dropLast())!
        let settings = screen[statusRange.upperBound...].prefix(while: { $0 != "[" })
        return (status, Set(settings.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)))
    }

    @discardableResult
    private func tmux(_ arguments: [String]) async throws -> String {
        // Only capture-pane's output is read: a tmux server started by new-session would
        // keep the pipe open.
        let result = try await run(["tmux", "-L", socket] + arguments, capture: ["capture-pane", "display-message"].contains(arguments.first))
        guard result.status == 0 || arguments == ["kill-server"] else {
            throw HarnessError(description: "tmux \(arguments.joined(separator: " ")) failed with status \(result.status)")
        }
        return result.out
    }

    private static func quote(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

/// The terminal settings a shell expects back after a program exits.
let saneTerminal: Set<String> = ["icanon", "isig", "echo", "icrnl", "opost"]
