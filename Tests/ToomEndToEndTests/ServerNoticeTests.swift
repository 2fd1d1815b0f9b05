import Foundation
import Testing
import ToomCore
import ToomTestSupport

/// A client waiting at a prompt shows what the server says at once and exits: the login
/// timeout at the Username or Password prompt, a kick and a shutdown at the command
/// prompt. Nothing is typed after the prompt shows.
@Suite struct ServerNoticeTests {
    static let timeoutNotice = "Login timed out: no login within 10 seconds. Please connect again"

    @Test(arguments: [false, true])
    func theLoginTimeoutEndsAPipedClientAtItsPrompt(afterUsername: Bool) async throws {
        let server = try await TestServer(extra: ["--login-timeout", "10"])
        let client = try server.client()
        // Sent at once: the client reads it when it asks.
        if afterUsername { client.send("yoda") }
        try await client.expect(afterUsername ? Messages.usernamePrompt + Messages.passwordPrompt : Messages.usernamePrompt)
        try await client.expect(Self.timeoutNotice)
        #expect(try await client.waitForExit() == 1)
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
        // Typing waits for the prompt; a loaded machine may take many seconds to look at the
        // screen, and the notice then replaces the prompt, so that case gets a longer timeout.
        let seconds = afterUsername ? 60 : 10
        let server = try await TestServer(extra: ["--login-timeout", String(seconds)])
        let home = try server.root.subdirectory("home")
        let term = try await TmuxSession(["client", "127.0.0.1", String(server.port), "0"], in: home,
                                         environment: ["HOME": home.path])
        // Typed once the prompt shows: typed earlier, the line editor may discard it as it
        // takes the terminal.
        if afterUsername {
            try await term.waitFor(Messages.usernamePrompt)
            try await term.type("yoda")
            try await term.press("Enter")
            try await term.waitFor(Messages.passwordPrompt)
        }
        try await term.waitFor("Login timed out: no login within \(seconds) seconds. Please connect again",
                               timeout: .seconds(seconds) + patience)
        let exit = try await term.waitForExit()
        #expect(exit.status == 1)
        #expect(exit.terminal == saneTerminal)
        if afterUsername { #expect(try await term.screen().contains(Messages.usernamePrompt + "yoda")) }
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
