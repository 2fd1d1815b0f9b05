import Foundation
import ToomCore

/// Where the client reads what the user types. `readLine` returns nil at end of input.
public protocol LineInput: Sendable {
    func readLine(prompt: String, secret: Bool) async -> String?
    /// Prints lines without disturbing a half-typed input line.
    func printAbove(_ lines: [String])
    /// Puts the terminal back as it was (called before the process exits).
    func restoreTerminal()
}

/// Reads standard input line by line on its own thread (the read blocks), so the
/// connection keeps being served while the user types. Works for terminals and pipes.
public final class PlainLineInput: LineInput, @unchecked Sendable {
    private let queue = DispatchQueue(label: "toom.input")
    private let lock = NSLock()
    private var savedTerminal: termios?
    /// The prompt on screen while a line is being read from a terminal, to draw it again.
    private var pendingPrompt: String?
    private let isTerminal = isatty(0) == 1 && isatty(1) == 1

    public init() {}

    public func readLine(prompt: String, secret: Bool) async -> String? {
        await withCheckedContinuation { continuation in
            queue.async { [self] in
                lock.withLock { pendingPrompt = prompt }
                RawOutput.write(1, prompt)
                let hide = secret && isatty(0) == 1
                if hide { setEcho(false) }
                var line = Swift.readLine(strippingNewline: true)
                lock.withLock { pendingPrompt = nil }
                if hide {
                    setEcho(true)
                    RawOutput.write(1, "\n")
                }
                if line?.last == "\r" { line?.removeLast() }
                continuation.resume(returning: line)
            }
        }
    }

    public func printAbove(_ lines: [String]) {
        guard !lines.isEmpty else { return }
        lock.lock()
        defer { lock.unlock() }
        guard isTerminal, let pendingPrompt else {
            RawOutput.write(1, lines.joined(separator: "\n") + "\n")
            return
        }
        // Over the prompt line, then the prompt again below (what was typed stays in the
        // terminal's line buffer, though it is no longer shown).
        RawOutput.write(1, "\r\u{1B}[K" + lines.joined(separator: "\n") + "\n" + pendingPrompt)
    }

    public func restoreTerminal() {
        lock.lock()
        defer { lock.unlock() }
        if var saved = savedTerminal {
            tcsetattr(0, TCSANOW, &saved)
            savedTerminal = nil
        }
    }

    private func setEcho(_ on: Bool) {
        lock.lock()
        defer { lock.unlock() }
        if on {
            if var saved = savedTerminal { tcsetattr(0, TCSANOW, &saved) }
            savedTerminal = nil
        } else {
            var current = termios()
            guard tcgetattr(0, &current) == 0 else { return }
            savedTerminal = current
            current.c_lflag &= ~tcflag_t(ECHO)
            tcsetattr(0, TCSANOW, &current)
        }
    }
}
