import Foundation
import LineEditor
import NIOConcurrencyHelpers
import ServiceLifecycle
import ToomCore

/// The server's terminal as an operator console (spec §7): a prompt with line editing,
/// history and tab completion, for list, kick, unblock, quit and help. It is also the
/// server's output, so event lines print above the prompt without garbling what the
/// operator is typing. Ctrl-C discards the line being typed; Ctrl-D on an empty line quits.
public final class OperatorConsole: ServerOutput, @unchecked Sendable {
    public static let prompt = "toom> "
    public static let historyName = ".console_history"

    private let historyFile: String
    private let lock = NIOLock()
    private var reader: LineReader?
    private var stopped = false

    public init(dataDirectory: String) {
        historyFile = dataDirectory + "/" + Self.historyName
    }

    // MARK: ServerOutput

    public func events(_ lines: [String]) { show(lines, fd: 1) }
    public func diagnostic(_ line: String) { show([line], fd: 2) }

    private func show(_ lines: [String], fd: Int32) {
        guard !lines.isEmpty else { return }
        let text = lines.joined(separator: "\n") + "\n"
        lock.withLock {
            if let reader { reader.printAbove(text, fd: fd) } else { RawOutput.write(fd, text) }
        }
    }

    // MARK: The prompt

    /// Reads commands on a thread of its own until quit, Ctrl-D or `stop()`.
    /// The terminal is restored when it returns.
    public func run(actions: OperatorActions) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let thread = Thread { [self] in
                readCommands(actions)
                continuation.resume()
            }
            thread.name = "toom-console"
            thread.start()
        }
    }

    /// Ends `run` (the server is stopping for another reason).
    public func stop() {
        lock.withLock {
            stopped = true
            reader?.stop()
        }
    }

    private func readCommands(_ actions: OperatorActions) {
        let completer: Completer = { before in
            WordCompletion.complete(before, ignoringCase: true) { index, previous in
                switch index {
                case 0: return OperatorCommand.words
                case 1: return actions.names(for: previous[0].lowercased())
                default: return []
                }
            }
        }
        guard let reader = Terminal.lineReader(program: "toom", historyFile: historyFile, completer: completer) else { return }
        let alreadyStopped = lock.withLock {
            self.reader = reader
            return stopped
        }
        if alreadyStopped { reader.stop() }
        defer {
            lock.withLock {
                self.reader = nil
                reader.close()
            }
        }
        while true {
            switch reader.read(prompt: Self.prompt) {
            case .line(let line):
                switch OperatorCommand.parse(line) {
                case .empty:
                    continue
                case .error(let message):
                    reader.addHistory(line)
                    show([message], fd: 1)
                case .command(let command):
                    reader.addHistory(line)
                    switch command {
                    case .quit: return
                    case .help: show(OperatorCommand.helpLines, fd: 1)
                    default: show(actions.perform(command).lines, fd: 1)
                    }
                }
            case .interrupted:
                continue
            case .end:
                // Ctrl-D: show it as the command it stands for.
                RawOutput.write(1, "\r\u{1B}[K" + Self.prompt + "quit\n")
                return
            case .stopped:
                return
            }
        }
    }
}

/// Runs the console as part of the server's service group. It ends when the operator
/// quits, which stops the whole group gracefully, or when the group stops.
public struct ConsoleService: Service {
    let console: OperatorConsole
    let actions: OperatorActions

    public init(console: OperatorConsole, actions: OperatorActions) {
        self.console = console
        self.actions = actions
    }

    public func run() async {
        let console = self.console
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await console.run(actions: actions)
            } onGracefulShutdown: {
                console.stop()
            }
        } onCancel: {
            console.stop()
        }
    }
}
