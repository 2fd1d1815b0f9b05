#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CLineEditor
import Synchronization

/// Line editing, history and tab completion with libedit, loaded at run time.
/// One per process: it owns the terminal.
public final class EditLineReader: LineReader {
    /// Why the last `init` returned nil.
    public static var loadError: String { String(cString: le_error()) }

    /// Nil when libedit cannot be loaded or an editor is already open.
    public init?(program: String, historyFile: String?, completer: Completer?) {
        guard le_open(program, historyFile) == 0 else { return nil }
        activeCompleter.withLock { $0 = completer }
        if completer != nil { le_set_completer(completeCallback) }
    }

    public func read(prompt: String) -> LineRead {
        var line: UnsafeMutablePointer<CChar>?
        let status = le_read(prompt, &line)
        return Self.result(status, line)
    }

    public func readSecret(prompt: String) -> LineRead {
        var line: UnsafeMutablePointer<CChar>?
        let status = le_read_secret(prompt, &line)
        return Self.result(status, line)
    }

    private static func result(_ status: Int32, _ line: UnsafeMutablePointer<CChar>?) -> LineRead {
        defer {
            // Zeroed before it is freed: it may be a password.
            if let line {
                memset(line, 0, strlen(line))
                free(line)
            }
        }
        switch Int(status) {
        case LE_LINE: return line.map { .line(String(cString: $0)) } ?? .end
        case LE_INTERRUPTED: return .interrupted
        case LE_WOKEN: return .stopped
        default: return .end
        }
    }

    public func printAbove(_ text: String, fd: Int32) {
        var text = text
        text.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) { le_print_above(fd, $0.baseAddress, $0.count) }
        }
    }

    /// Adds a line, without the trailing spaces a completion leaves.
    public func addHistory(_ line: String) {
        var line = Substring(line)
        while line.last == " " { line = line.dropLast() }
        if !line.isEmpty { le_history_add(String(line)) }
    }

    public func stop() { le_wake() }

    public func close() {
        le_set_completer(nil)
        activeCompleter.withLock { $0 = nil }
        le_close()
    }

    public func restoreForExit() { le_restore_for_exit() }

    /// Restores the terminal when SIGTERM, SIGHUP or SIGQUIT ends the process.
    public func restoreTerminalOnFatalSignals() { le_restore_on_fatal_signals() }
}

/// The completer of the open editor; the C callback cannot capture it.
private let activeCompleter = Mutex<Completer?>(nil)

private let completeCallback: le_completer = { before in
    guard let before, let completer = activeCompleter.withLock({ $0 }) else { return }
    let completion = completer(String(cString: before))
    if let replacement = completion.replacement {
        le_complete_replace(Int32(completion.deleteCount), replacement)
    }
    if !completion.candidates.isEmpty {
        le_complete_list(completion.candidates.joined(separator: "\r\n") + "\r\n")
    }
}
