import Foundation
import Testing
import ToomCore
import ToomTestSupport

/// Spec §9: `toom passwd` writes salted scrypt hashes, and a running server uses them
/// without a restart.
@Suite struct PasswdTests {
    /// A hash is checked on the server's low-priority threads, by design behind everything
    /// else the machine runs, and a debug build takes a second of CPU per check.
    static let hashedLogin: Duration = .seconds(180)

    /// Runs `toom passwd` with `input` on a pipe; its exit status and output.
    private func passwd(_ arguments: [String], input: String?, in server: TestServer) async throws -> (Int32, ToomProcess) {
        let process = try ToomProcess(["passwd"] + arguments + ["--data-dir", server.data.path], in: server.root.url)
        if let input { process.send(input) }
        process.closeInput()
        // scrypt is deliberately slow, and more so in a debug build on a loaded machine.
        return (try await process.waitForExit(timeout: .seconds(180)), process)
    }

    @Test func newAccountLogsInWithoutARestart() async throws {
        let server = try await TestServer()
        let before = server.file("credentials.txt")!
        let (status, run) = try await passwd(["ahsoka"], input: "snips and sky guy", in: server)
        #expect(status == 0, "\(run.stderr)")
        #expect(run.stdout == "Account ahsoka created\n")
        let after = server.file("credentials.txt")!
        // Every other line byte for byte; the new one a hash, never the password.
        #expect(after.hasPrefix(before))
        let added = String(after.dropFirst(before.count))
        #expect(added.hasPrefix("ahsoka $scrypt$ln=15,r=8,p=1$") && added.hasSuffix("\n"))
        #expect(!after.contains("snips"))

        let client = try server.client()
        client.send("ahsoka")
        try await client.expect(Messages.passwordPrompt)
        client.send("snips and sky")
        try await client.expect(Messages.invalidPassword, timeout: Self.hashedLogin)
        client.send("snips and sky guy")
        try await client.expect(Messages.welcome, timeout: Self.hashedLogin)
        try await server.process.expect("ahsoka login")
    }

    @Test func changedPasswordAndHashAllOnALiveServer() async throws {
        let server = try await TestServer()
        let (status, _) = try await passwd(["hans"], input: "han shot first", in: server)
        #expect(status == 0)
        let lines = server.fileLines("credentials.txt")
        let original = bundledCredentials.split(separator: "\n").map(String.init)
        #expect(lines.count == original.count)
        #expect(lines[0].hasPrefix("hans $scrypt$"))
        #expect(Array(lines.dropFirst()) == Array(original.dropFirst()))

        let client = try server.client()
        client.send("hans")
        client.send("falcon*solo")
        try await client.expect(Messages.invalidPassword, timeout: Self.hashedLogin)
        client.send("han shot first")
        try await client.expect(Messages.welcome, timeout: Self.hashedLogin)

        let (hashed, run) = try await passwd(["--hash-all"], input: nil, in: server)
        #expect(hashed == 0)
        #expect(run.stdout.contains("Hashed \(original.count - 1) plaintext passwords"))
        #expect(server.fileLines("credentials.txt").allSatisfy { $0.split(separator: " ")[1].hasPrefix("$scrypt$") })
        // Every account still logs in with the password it had.
        for user in ["yoda", "leia", "palpatine"] { _ = try await server.login(user, timeout: Self.hashedLogin) }
        try await eventually("the reload notice") { server.process.stderr.contains("credentials.txt changed") }
    }

    @Test func badPasswordsAndNamesChangeNothing() async throws {
        let server = try await TestServer()
        let before = server.file("credentials.txt")
        for (arguments, input, error) in [
            (["ahsoka"], "", "the password is empty"),
            (["ahsoka"], "tab\there", "control character"),
            (["a/b"], "fine", "Invalid username"),
            (["two words"], "fine", "Invalid username"),
            ([], "fine", "Give a user, or --hash-all"),
            (["hans", "--hash-all"], "fine", "not both"),
        ] {
            let (status, run) = try await passwd(arguments, input: input, in: server)
            #expect(status != 0, "\(arguments)")
            #expect(run.stderr.contains(error), "\(arguments): \(run.stderr)")
            #expect(!run.stderr.contains("Fatal error"))
        }
        #expect(server.file("credentials.txt") == before)
    }

    @Test func unparsableLineIsReportedAndTheRestLoad() async throws {
        let server = try await TestServer()
        let path = server.data.appendingPathComponent("credentials.txt")
        let broken = bundledCredentials + "mace $scrypt$ln=99,r=8,p=1$c2FsdHNhbHQ$MDEyMzQ1Njc4OWFiY2RlZg\nwindu purple\n"
        try broken.write(to: path, atomically: true, encoding: .utf8)
        let windu = try server.client()
        windu.send("windu")
        windu.send("purple")
        try await windu.expect(Messages.welcome)
        try await eventually("the reload notice") { server.process.stderr.contains("credentials.txt changed") }
        #expect(server.process.stderr.contains("credentials.txt:12: skipped: password hash for 'mace' is not valid"))
    }

    @Test(.enabled(if: TmuxSession.available, "tmux is not installed"))
    func terminalAsksTwiceWithoutEcho() async throws {
        let server = try await TestServer()
        let terminal = try await typedTwice("ahsoka", "rex and echo", "rex and echo", server)
        let (status, settings) = try await terminal.waitForExit()
        #expect(status == 0)
        #expect(settings.contains("echo"), "echo is back on after the password")
        #expect(try await !terminal.screen().contains("rex and echo"))
        #expect(server.file("credentials.txt")!.contains("ahsoka $scrypt$"))

        let mismatch = try await typedTwice("hans", "one", "two", server)
        try await mismatch.waitFor("the passwords do not match")
        #expect(try await mismatch.waitForExit().status == 1)
        #expect(server.file("credentials.txt")!.contains("hans falcon*solo"))
    }

    /// `toom passwd <user>` on a terminal, given `first` and then `second` at its two prompts.
    private func typedTwice(_ user: String, _ first: String, _ second: String, _ server: TestServer) async throws -> TmuxSession {
        let terminal = try await TmuxSession(["passwd", user, "--data-dir", server.data.path], in: server.root.url)
        for (prompt, text) in [("New password for \(user): ", first), ("Retype the password: ", second)] {
            try await terminal.waitFor(prompt)
            try await terminal.type(text)
            try await terminal.press("Enter")
        }
        return terminal
    }
}
