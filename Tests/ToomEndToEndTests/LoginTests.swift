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
    // across connections) are unit-tested with a test clock in ToomChatTests; this checks
    // the real clock and the real client once.
    @Test func blockAppliesToEveryConnectionAndExpires() async throws {
        let server = try await TestServer(attempts: 2, extra: ["--block-seconds", "20"])
        let first = try server.client()
        first.send("hans")
        first.send("wrong1")
        try await first.expect(Messages.invalidPassword + "\n")
        first.send("wrong2")
        try await first.expect(Messages.passwordBlocked + "\n")
        #expect(try await first.waitForExit() == 1)
        try await server.process.expect("hans blocked for 20 seconds after 2 failed login attempts")

        // During the block even the right password, from another connection, is refused.
        let second = try server.client()
        second.send("hans")
        second.send("falcon*solo")
        try await second.expect(Messages.accountBlocked + "\n")
        #expect(try await second.waitForExit() == 1)

        // Other accounts are not affected.
        _ = try await server.login("yoda")

        // Once the block ends, the right password works again. (The block is long enough for
        // a loaded machine to start two clients within it.)
        try await eventually("the block to expire", timeout: .seconds(90)) {
            let client = try server.client()
            client.send("hans")
            client.send("falcon*solo")
            return try await waitForEither(client, Messages.welcome, Messages.accountBlocked) == Messages.welcome
        }
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
