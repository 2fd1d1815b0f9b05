import Foundation
import Testing
import ToomCore
import ToomTestSupport

/// A client waiting at a prompt shows what the server says at once and exits: the login
/// timeout at the Username or Password prompt, a kick and a shutdown at the command
/// prompt. Nothing is typed after the prompt shows.
@Suite struct ServerNoticeTests {
    @Test(arguments: [false, true])
    func theLoginTimeoutEndsAPipedClientAtItsPrompt(afterUsername: Bool) async throws {
        try await withALoginTimeoutLongEnough { seconds in
            let server = try await TestServer(extra: ["--login-timeout", String(seconds)])
            let client = try server.client()
            // Sent at once: the client reads it when it asks.
            if afterUsername { client.send("yoda") }
            #expect(try await client.waitForExit(timeout: .seconds(seconds) + patience) == 1)
            let prompts = afterUsername ? Messages.usernamePrompt + Messages.passwordPrompt : Messages.usernamePrompt
            // The timer fired before the client showed the prompt: too soon to tell.
            guard client.stdout.hasPrefix(prompts) else { return false }
            #expect(client.stdout.dropFirst(prompts.count).contains(loginTimeoutNotice(seconds)), "\(client.stdout)")
            return true
        }
    }

    @Test func aKickEndsAPipedClientAtItsPrompt() async throws {
        let server = try await TestServer()
        let hans = try await server.login("hans")
        #expect(try await runToom(["admin", "kick", "hans", "--data-dir", server.data.path]).status == 0)
        try await hans.expect(Messages.kicked)
        #expect(try await hans.waitForExit() == 4)
    }

    @Test func aShutdownEndsAPipedClientAtItsPrompt() async throws {
        let server = try await TestServer()
        let hans = try await server.login("hans")
        #expect(try await server.stop() == 0)
        try await hans.expect(Messages.serverShutdown)
        #expect(try await hans.waitForExit() == 4)
    }
}

@Suite(.enabled(if: TmuxSession.available, "tmux is not installed"))
struct ServerNoticeTerminalTests {
    @Test(arguments: [false, true])
    func theLoginTimeoutEndsATerminalClientAtItsPrompt(afterUsername: Bool) async throws {
        try await withALoginTimeoutLongEnough { seconds in
            let server = try await TestServer(extra: ["--login-timeout", String(seconds)])
            let home = try server.root.subdirectory("home")
            let term = try await TmuxSession(["client", "127.0.0.1", String(server.port), "0"], in: home,
                                             environment: ["HOME": home.path])
            let notice = loginTimeoutNotice(seconds)
            /// Whether the screen showed `prompt` before the notice (which replaces the prompt).
            func reached(_ prompt: String) async throws -> Bool {
                var screen = ""
                try await term.waitUntil("\"\(prompt)\" or the notice") { lines in
                    screen = lines.joined(separator: "\n")
                    return screen.contains(prompt.trimmingCharacters(in: .whitespaces)) || screen.contains(notice)
                }
                return !screen.contains(notice)
            }
            guard try await reached(Messages.usernamePrompt) else { return false }
            // Typed once the prompt shows: typed earlier, the line editor may discard it as it
            // takes the terminal.
            if afterUsername {
                try await term.type("yoda")
                try await term.press("Enter")
                guard try await reached(Messages.passwordPrompt) else { return false }
            }
            try await term.waitFor(notice, timeout: .seconds(seconds) + patience)
            let exit = try await term.waitForExit()
            #expect(exit.status == 1)
            #expect(exit.terminal == saneTerminal)
            if afterUsername { #expect(try await term.screen().contains(Messages.usernamePrompt + "yoda")) }
            return true
        }
    }

    @Test func aShutdownEndsATerminalClientAtItsPrompt() async throws {
        let server = try await TestServer()
        let term = try await ClientTerminalTests().hansOnATerminal(server, home: try server.root.subdirectory("home"))
        try await term.type("BCM half typed")
        try await term.waitUntil("the half-typed command") { $0.last == Command.prompt + "BCM half typed" }
        #expect(try await server.stop() == 0)
        try await term.waitFor(Messages.serverShutdown)
        let exit = try await term.waitForExit()
        #expect(exit.status == 4)
        #expect(exit.terminal == saneTerminal)
    }
}

func loginTimeoutNotice(_ seconds: Int) -> String {
    "Login timed out: no login within \(seconds) seconds. Please connect again"
}

/// Runs `attempt` with a login timeout of 2 seconds, then 4, 8, ... up to 64, until one is
/// long enough for the client to show the prompt the test is about before the server's
/// timer fires: on an idle machine the first is, on a loaded one starting a client and
/// typing can take many seconds (a fixed 60 s made the test wait a minute every run). The
/// timer itself is unit-tested with a test clock in ToomChatTests. `attempt` returns false
/// when the timeout came too soon to tell, and records an issue when what it saw is wrong;
/// no timeout long enough is an issue too.
func withALoginTimeoutLongEnough(_ attempt: (Int) async throws -> Bool) async throws {
    for seconds in [2, 4, 8, 16, 32, 64] {
        if try await attempt(seconds) { return }
        print("a login timeout of \(seconds) s fired before the client showed its prompt: trying a longer one")
    }
    Issue.record("even with a 64-second login timeout the client did not show its prompt before the notice")
}
