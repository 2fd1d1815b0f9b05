#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What reading one line gave.
public enum LineRead: Equatable, Sendable {
    /// A line, without its newline.
    case line(String)
    /// Ctrl-C: the half-typed line was discarded.
    case interrupted
    /// End of input: Ctrl-D on an empty line, or standard input closed.
    case end
    /// `stop()` was called: the program is shutting down.
    case stopped
}

/// Reads what the user types on the terminal, line by line, and prints other output
/// without garbling the line being typed. `read` blocks: call it from a thread of its own.
public protocol LineReader: AnyObject, Sendable {
    func read(prompt: String) -> LineRead
    /// Reads without echo and without history (a password).
    func readSecret(prompt: String) -> LineRead
    /// Prints text (whole lines) to `fd` above the prompt and the half-typed line.
    func printAbove(_ text: String, fd: Int32)
    func addHistory(_ line: String)
    /// Makes a blocked `read`, and every later one, return `.stopped`.
    func stop()
    /// Restores the terminal and saves the history. Later output is written plainly.
    func close()
    /// Restores the terminal from another thread, for a process that exits at once.
    func restoreForExit()
}

public enum Terminal {
    /// Whether standard input and output are both terminals.
    public static var isInteractive: Bool { isatty(0) == 1 && isatty(1) == 1 }

    /// A line reader for standard input: libedit when it loads, else the plain reader.
    /// Nil when standard input is not a terminal.
    public static func lineReader(program: String, historyFile: String?,
                                  completer: Completer? = nil) -> LineReader? {
        guard isInteractive else { return nil }
        if let editor = EditLineReader(program: program, historyFile: historyFile, completer: completer) {
            return editor
        }
        return PlainLineReader()
    }
}
