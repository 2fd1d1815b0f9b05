import Foundation
import ToomTestSupport
import Testing
import ToomCore

/// A `toom server` whose standard input is a terminal (tmux), so it runs the operator console.
final class ConsoleServer: ServerUnderTest, @unchecked Sendable {
    let root: TemporaryDirectory
    let data: URL
    let terminal: TmuxSession
    let port: Int

    init(attempts: Int = 3, extra: [String] = [], root: TemporaryDirectory? = nil) async throws {
        let root = try root ?? TemporaryDirectory()
        self.root = root
        data = try root.subdirectory("data")
        let credentials = data.appendingPathComponent("credentials.txt")
        if !FileManager.default.fileExists(atPath: credentials.path) {
            try bundledCredentials.write(to: credentials, atomically: true, encoding: .utf8)
        }
        terminal = try await TmuxSession(["server", "0", String(attempts), "--host", "127.0.0.1", "--data-dir", data.path] + extra,
                                   in: root.url)
        let listening = "Server listening on 127.0.0.1 port "
        try await terminal.waitFor(listening)
        let screen = try await terminal.waitFor(OperatorPrompt.text)
        guard let line = screen.split(separator: "\n").first(where: { $0.hasPrefix(listening) }),
              let port = Int(line.split(separator: " ").last!)
        else { throw HarnessError(description: "no port on the console:\n\(screen)") }
        self.port = port
    }

    /// Types a command and presses Enter.
    func command(_ line: String) async throws {
        try await terminal.type(line)
        try await terminal.press("Enter")
    }
}

enum OperatorPrompt {
    static let text = "toom> "
    /// The prompt as it shows at the end of the screen, trailing space trimmed.
    static let bare = "toom>"
}

@Suite(.enabled(if: TmuxSession.available, "tmux is not installed"))
struct ConsoleTests {
    @Test func listKickAndEventLinesAboveAHalfTypedCommand() async throws {
        let server = try await ConsoleServer()
        let term = server.terminal

        // An empty Enter does nothing but show the prompt again.
        try await term.press("Enter")
        try await server.command("help")
        try await term.waitFor("help            this list")
        let lines = try await term.lines()
        let help = try #require(lines.firstIndex(of: "toom> help"))
        #expect(lines[help - 1] == OperatorPrompt.bare)

        let hans = try await server.login("hans")
        try await term.waitFor("hans login")

        // An event line arrives while the operator is half-way through a command.
        try await term.type("kick ha")
        try await term.waitUntil("the half-typed command") { $0.last == "toom> kick ha" }
        let yoda = try await server.login("yoda")
        try await term.waitUntil("yoda's login line above the half-typed command") { lines in
            lines.count >= 2 && lines[lines.count - 2] == "yoda login" && lines.last == "toom> kick ha"
        }

        // Tab completes the online user's name; Enter kicks.
        try await term.press("Tab")
        try await term.waitUntil("the completed name") { $0.last == "toom> kick hans" }
        try await term.press("Enter")
        try await term.waitFor("hans has been disconnected")
        try await hans.expect(Messages.kicked)
        #expect(try await hans.waitForExit() == 4)
        try await eventually("hans to leave userlog.txt") {
            server.fileLines("userlog.txt").map { $0.split(separator: ";")[2] } == [" yoda"]
        }

        try await server.command("list")
        try await term.waitFor("Blocked accounts: 0")
        let listed = try await term.lines()
        let start = try #require(listed.lastIndex(of: "toom> list"))
        #expect(listed[start + 1] == "Users online: 1")
        #expect(matches(listed[start + 2], #"  yoda, 127\.0\.0\.1, UDP port [0-9]+, since "# + timestampPattern))
        #expect(Array(listed[(start + 3)...(start + 5)]) == ["Rooms: 0", "Blocked accounts: 0", OperatorPrompt.bare])

        try await server.command("kick hans")
        try await term.waitFor("hans is not online")
        try await server.command("ban yoda")
        try await term.waitFor("Unknown command 'ban'")

        // Ctrl-C discards the line being typed, as in a shell; the server keeps running.
        try await term.type("kick yoda")
        try await term.press("C-c")
        try await term.waitUntil("a fresh prompt after ^C") { lines in
            lines.count >= 2 && lines[lines.count - 2] == "toom> kick yoda^C" && lines.last == OperatorPrompt.bare
        }
        #expect(yoda.process.isRunning)

        // quit: a graceful stop; clients are told, the files are complete, the terminal is sane.
        try await server.command("quit")
        try await yoda.expect(Messages.serverShutdown)
        #expect(try await yoda.waitForExit() == 4)
        let exit = try await term.waitForExit()
        #expect(exit.status == 0)
        #expect(exit.terminal == saneTerminal)
        #expect(server.file("userlog.txt") == "")
        #expect(!FileManager.default.fileExists(atPath: server.data.appendingPathComponent("toom.sock").path))
    }

    @Test func unblockLetsABlockedUserLogInAtOnce() async throws {
        let server = try await ConsoleServer(attempts: 1, extra: ["--block-seconds", "600"])
        let term = server.terminal
        let vader = try server.client()
        vader.send("vader")
        vader.send("not the password")
        try await vader.expect(Messages.passwordBlocked)
        try await term.waitFor("vader blocked for 600 seconds")

        try await server.command("list")
        try await term.waitFor("Blocked accounts: 1")
        try await term.waitFor("  vader, ")

        try await term.type("unblock v")
        try await term.press("Tab")
        try await term.waitUntil("the blocked user's name completed") { $0.last == "toom> unblock vader" }
        try await term.press("Enter")
        try await term.waitFor("vader is no longer blocked")
        try await term.waitFor("vader unblocked by the operator")
        let vaderAgain = try await server.login("vader")
        try await term.waitFor("vader login")

        try await server.command("unblock vader")
        try await term.waitFor("vader was not blocked")
        try await server.command("unblock nobody")
        try await term.waitFor("nobody does not exist")
        try await term.press("C-d")
        try await vaderAgain.expect(Messages.serverShutdown)
        let exit = try await term.waitForExit()
        #expect(exit.status == 0)
        #expect(exit.terminal == saneTerminal)
    }

    @Test func ctrlDQuitsAndHistorySurvivesARestart() async throws {
        let root = try TemporaryDirectory()
        do {
            let server = try await ConsoleServer(root: root)
            try await server.command("list")
            try await server.terminal.waitFor("Blocked accounts: 0")
            try await server.terminal.press("C-d")
            try await server.terminal.waitFor("toom> quit")
            #expect(try await server.terminal.waitForExit().status == 0)
        }
        let again = try await ConsoleServer(root: root)
        try await again.terminal.press("Up")
        try await again.terminal.waitUntil("the previous run's command from history") { $0.last == "toom> list" }
        try await again.terminal.press("C-u")
        try await again.terminal.type("unb")
        try await again.terminal.press("Tab")
        try await again.terminal.waitUntil("the command word completed") { $0.last == "toom> unblock" }
        try await again.terminal.press("C-u")
        try await again.command("quit")
        #expect(try await again.terminal.waitForExit().status == 0)
    }
}

@Suite(.enabled(if: TmuxSession.available, "tmux is not installed"))
struct ClientTerminalTests {
    /// A client on a terminal, logged in as hans by typing, its HOME (and history) in `home`.
    func hansOnATerminal(_ server: TestServer, home: URL, extra: [String] = []) async throws -> TmuxSession {
        let term = try await TmuxSession(["client", "127.0.0.1", String(server.port), "0"] + extra, in: home,
                                   environment: ["HOME": home.path])
        try await term.waitFor(Messages.usernamePrompt)
        try await term.type("hans")
        try await term.press("Enter")
        try await term.waitFor(Messages.passwordPrompt)
        try await term.type("falcon*solo")
        try await term.press("Enter")
        try await term.waitFor(Messages.welcome)
        return term
    }

    @Test func theClientEditsCompletesAndRemembersCommands() async throws {
        let server = try await TestServer()
        let home = try server.root.subdirectory("home")
        let term = try await hansOnATerminal(server, home: home)
        #expect(try await !term.screen().contains("falcon"))

        let yoda = try await server.login("yoda")
        try await term.type("at")
        try await term.press("Tab")
        try await term.waitUntil("ATU completed") { $0.last == Command.prompt + "ATU" }
        try await term.press("Enter")
        try await term.waitFor("yoda, 127.0.0.1, ")

        // yoda was seen in the ATU reply, so SRB completes the name.
        try await term.type("SRB yo")
        try await term.press("Tab")
        try await term.waitUntil("yoda completed") { $0.last == Command.prompt + "SRB yoda" }
        try await term.press("Enter")
        try await term.waitFor("Separate chat room has been created, room ID: 1, users in this room: hans, yoda")

        try await term.press("Up", "Up")
        try await term.waitUntil("ATU from history") { $0.last == Command.prompt + "ATU" }
        try await term.press("C-u", "C-d")
        try await term.waitFor(Messages.bye("hans"))
        let exit = try await term.waitForExit()
        #expect(exit.status == 0)
        #expect(exit.terminal == saneTerminal)
        #expect(yoda.process.isRunning)
        let history = try String(contentsOf: home.appendingPathComponent(".toom_history"), encoding: .utf8)
        #expect(history.contains("ATU") && history.contains("SRB\\040yoda") && !history.contains("falcon") && !history.contains("hans\n"))
    }

    @Test func aReceivedFileNoticeDoesNotGarbleTheTypedLine() async throws {
        let server = try await TestServer()
        let home = try server.root.subdirectory("home")
        let term = try await hansOnATerminal(server, home: home)
        try await term.type("BCM half typed")
        try await term.waitUntil("the half-typed command") { $0.last == Command.prompt + "BCM half typed" }

        let yoda = try await server.login("yoda")
        try Data("a small file".utf8).write(to: yoda.directory.appendingPathComponent("note.txt"))
        yoda.send("UPD hans note.txt")
        try await yoda.expect(Messages.uploaded("note.txt"))
        try await term.waitUntil("the notice above the typed line") { lines in
            lines.contains(Messages.received("note.txt", from: "yoda")) && lines.last == Command.prompt + "BCM half typed"
        }
        #expect(try String(contentsOf: home.appendingPathComponent("yoda_note.txt"), encoding: .utf8) == "a small file")

        // The line is intact: finishing it sends what was typed before the notice and after.
        try await term.type(" and done")
        try await term.press("Enter")
        try await term.waitFor("Broadcast message, #1 broadcast at ")
        #expect(server.fileLines("messagelog.txt").last?.hasSuffix("; hans; half typed and done") == true)
    }

    @Test func aNoticeFromTheServerDoesNotGarbleTheTypedLine() async throws {
        let server = try await TestServer()
        let term = try await hansOnATerminal(server, home: try server.root.subdirectory("home"))
        try await term.type("BCM half typed")
        try await term.waitUntil("the half-typed command") { $0.last == Command.prompt + "BCM half typed" }

        let kick = try await runToom(["admin", "kick", "hans", "--data-dir", server.data.path])
        #expect(kick.status == 0)
        let exit = try await term.waitForExit()
        #expect(exit.status == 4)
        #expect(exit.terminal == saneTerminal)
        let lines = try await term.lines()
        #expect(lines.contains(Messages.kicked))
        #expect(!lines.contains { $0.contains("typed" + Messages.kicked) || $0.hasPrefix(Command.prompt + "BCM half typed" + "Y") })
    }
}
