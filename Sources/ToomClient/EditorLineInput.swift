import Foundation
import LineEditor
import Synchronization
import ToomCore

/// The client's input on a terminal with libedit: line editing, history of commands
/// (never of the username or password), and tab completion of command words, of the
/// user names and room ids the client has seen in replies, and of file names for UPD.
/// Lines printed while the user types appear above the prompt, the typed line intact.
public final class EditorLineInput: LineInput, ReplyObserver {
    private let editor: EditLineReader
    private let queue = DispatchQueue(label: "toom.editor")
    private let seen: SeenNames

    /// Nil when standard input or output is not a terminal, or libedit cannot be loaded.
    public static func open(historyFile: String?) -> EditorLineInput? {
        guard Terminal.isInteractive else { return nil }
        let seen = SeenNames()
        let completer: Completer = { before in
            let known = seen.state.withLock { $0 }
            return WordCompletion.complete(before, ignoringCase: !before.contains(" ")) { index, previous in
                Self.candidates(index: index, previous: previous, names: known.names, rooms: known.rooms)
            }
        }
        guard let editor = EditLineReader(program: "toom", historyFile: historyFile, completer: completer) else { return nil }
        editor.restoreTerminalOnFatalSignals()
        return EditorLineInput(editor: editor, seen: seen)
    }

    /// `~/.toom_history`, or nil without a home directory.
    public static var defaultHistoryFile: String? {
        guard let home = ProcessInfo.processInfo.environment["HOME"], !home.isEmpty else { return nil }
        return home + "/.toom_history"
    }

    private init(editor: EditLineReader, seen: SeenNames) {
        self.editor = editor
        self.seen = seen
    }

    public func readLine(prompt: String, secret: Bool) async -> String? {
        await withCheckedContinuation { continuation in
            queue.async { [editor] in
                while true {
                    switch secret ? editor.readSecret(prompt: prompt) : editor.read(prompt: prompt) {
                    case .line(let line):
                        if !secret, prompt == Command.prompt { editor.addHistory(line) }
                        continuation.resume(returning: line)
                    case .interrupted:
                        continue
                    case .end, .stopped:
                        editor.printAbove("\n", fd: 1)
                        continuation.resume(returning: nil)
                    }
                    return
                }
            }
        }
    }

    public func printAbove(_ lines: [String]) {
        guard !lines.isEmpty else { return }
        editor.printAbove(lines.joined(separator: "\n") + "\n", fd: 1)
    }

    public func restoreTerminal() { editor.restoreForExit() }

    public func observe(_ frames: [ServerFrame]) {
        var names: [String] = []
        var rooms: [String] = []
        for frame in frames {
            switch frame {
            case .item("USER", let fields) where !fields.isEmpty: names.append(fields[0])
            case .item("B", let fields) where fields.count >= 3: names.append(fields[2])
            case .item("S", let fields) where fields.count >= 4:
                rooms.append(fields[0])
                names.append(fields[3])
            case .ok("SRB", let fields) where !fields.isEmpty:
                rooms.append(fields[0])
                names.append(contentsOf: fields.dropFirst())
            default: break
            }
        }
        guard !names.isEmpty || !rooms.isEmpty else { return }
        seen.state.withLock {
            $0.names.formUnion(names)
            $0.rooms.formUnion(rooms)
        }
    }

    static func candidates(index: Int, previous: [String], names: Set<String>, rooms: Set<String>) -> [String] {
        if index == 0 { return Command.words }
        switch (previous[0].uppercased(), index) {
        case ("SRB", _): return Array(names)
        case ("SRM", 1): return Array(rooms)
        case ("RDM", 1): return ["b", "s"]
        case ("UPD", 1), ("UDP", 1): return Array(names)
        case ("UPD", 2), ("UDP", 2): return filesInWorkingDirectory()
        default: return []
        }
    }

    /// Regular files in the working directory whose names can be typed as one argument.
    private static func filesInWorkingDirectory() -> [String] {
        let manager = FileManager.default
        let names = (try? manager.contentsOfDirectory(atPath: manager.currentDirectoryPath)) ?? []
        return names.filter { name in
            var isDirectory: ObjCBool = false
            return !name.hasPrefix(".") && !name.contains(" ")
                && manager.fileExists(atPath: name, isDirectory: &isDirectory) && !isDirectory.boolValue
        }
    }
}

/// User names and room ids seen in replies.
private final class SeenNames: Sendable {
    let state = Mutex<(names: Set<String>, rooms: Set<String>)>(([], []))
}

/// An input that wants to see the server's replies (to complete names it has seen).
protocol ReplyObserver {
    func observe(_ frames: [ServerFrame])
}

extension ChatClient {
    /// The input for standard input: the line editor on a terminal with libedit, else the plain reader.
    public static func standardInput() -> LineInput {
        EditorLineInput.open(historyFile: EditorLineInput.defaultHistoryFile) ?? PlainLineInput()
    }
}
