import Foundation
import ToomTestSupport
import Testing
import ToomCore

/// Spec §4: the login dialogue, the consecutive-failure block and its expiry.
@Suite struct LoginTests {
    @Test func unknownUsernameAsksForTheUsernameAgain() async throws {
        let server = try await TestServer()
        let client = try server.client()
        try await client.expect(Messages.usernamePrompt)
        client.send("lukeskywalker")
        try await client.expect(Messages.invalidUsername + "\n" + Messages.usernamePrompt)
        client.send("luke")
        try await client.expect(Messages.passwordPrompt)
        client.send("light==saber")
        try await client.expect(Messages.welcome + "\n" + Command.prompt)
    }

    @Test func wrongPasswordAsksOnlyForThePasswordAgain() async throws {
        let server = try await TestServer()
        let client = try server.client()
        client.send("obiwan")
        client.send("(jedi master)")
        try await client.expect(Messages.invalidPassword + "\n" + Messages.passwordPrompt)
        client.send("(jedimaster)")
        try await client.expect(Messages.welcome)
    }

    // The rules of blocking (tries during a block, a success resetting the count, failures
    // across connections, the expiry to the second) are unit-tested with a test clock in
    // ToomChatTests; these check the real client and the real clock once each. A block that
    // outlasts any test applies to every connection; a one-second block expires.
    @Test func aBlockAppliesToEveryConnection() async throws {
        let server = try await TestServer(attempts: 2, extra: ["--block-seconds", "600"])
        try await block("hans", on: server)
        try await server.process.expect("hans blocked for 600 seconds after 2 failed login attempts")

        // During the block even the right password, from another connection, is refused.
        let second = try server.client()
        second.send("hans")
        second.send("falcon*solo")
        try await second.expect(Messages.accountBlocked + "\n")
        #expect(try await second.waitForExit() == 1)

        // Other accounts are not affected.
        _ = try await server.login("yoda")
    }

    @Test func aBlockExpires() async throws {
        let server = try await TestServer(attempts: 2, extra: ["--block-seconds", "1"])
        try await block("hans", on: server)
        try await server.process.expect("hans blocked for 1 seconds after 2 failed login attempts")
        // Tried until it works: a try within the second is refused.
        try await eventually("the block to expire") {
            let client = try server.client()
            client.send("hans")
            client.send("falcon*solo")
            return try await waitForEither(client, Messages.welcome, Messages.accountBlocked) == Messages.welcome
        }
    }

    /// Two wrong passwords for `user` on one connection, which the server then closes.
    private func block(_ user: String, on server: TestServer) async throws {
        let first = try server.client()
        first.send(user)
        first.send("wrong1")
        try await first.expect(Messages.invalidPassword + "\n")
        first.send("wrong2")
        try await first.expect(Messages.passwordBlocked + "\n")
        #expect(try await first.waitForExit() == 1)
    }

    @Test func aUserCanBeOnlineOnlyOnce() async throws {
        let server = try await TestServer()
        let first = try await server.login("gandalf")
        let again = try server.client()
        again.send("gandalf")
        again.send("youshallnotpass")
        try await again.expect("gandalf is already logged in\n")
        #expect(try await again.waitForExit() == 1)
        #expect(server.fileLines("userlog.txt").count == 1)
        #expect(first.process.isRunning)
    }

    @Test func aCredentialsFileWithWindowsLineEndingsWorks() async throws {
        let server = try await TestServer(credentials: "yoda wise@!man\r\nhans falcon*solo\r\n")
        let client = try server.client()
        client.send("hans")
        client.send("falcon*solo")
        try await client.expect(Messages.welcome)
        #expect(!server.process.stderr.contains("warning"))
    }

    @Test func passwordsWithSpacesAndSymbolsWork() async throws {
        let credentials = bundledCredentials + "padme my  password;  has spaces\n"
        let server = try await TestServer(credentials: credentials)
        let client = try server.client()
        client.send("padme")
        client.send("my  password;  has spaces")
        try await client.expect(Messages.welcome)
    }
}

/// Waits until the client printed one of the texts; returns the first found, in the order given.
func waitForEither(_ client: ToomProcess, _ texts: String...) async throws -> String {
    var seen = ""
    try await eventually("one of \(texts); stdout:\n\(client.stdout)\nstderr:\n\(client.stderr)") {
        let out = client.stdout
        seen = texts.first(where: out.contains) ?? ""
        return !seen.isEmpty
    }
    return seen
}
