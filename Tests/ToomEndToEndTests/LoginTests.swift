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

    @Test func blockAppliesToEveryConnectionAndExpires() async throws {
        let server = try await TestServer(attempts: 2, extra: ["--block-seconds", "6"])
        let first = try server.client()
        first.send("hans")
        first.send("wrong1")
        try await first.expect(Messages.invalidPassword + "\n")
        first.send("wrong2")
        try await first.expect(Messages.passwordBlocked + "\n")
        #expect(try await first.waitForExit() == 1)
        try await server.process.expect("hans blocked for 6 seconds after 2 failed login attempts")

        // During the block even the right password, from another connection, is refused.
        let second = try server.client()
        second.send("hans")
        second.send("falcon*solo")
        try await second.expect(Messages.accountBlocked + "\n")
        #expect(try await second.waitForExit() == 1)

        // Other accounts are not affected.
        _ = try await server.login("yoda")

        // Once the block ends, the right password works again.
        try await eventually("the block to expire") {
            let client = try server.client()
            client.send("hans")
            client.send("falcon*solo")
            return try await waitForEither(client, Messages.welcome, Messages.accountBlocked) == Messages.welcome
        }
    }

    @Test func triesDuringABlockDoNotCount() async throws {
        // Long enough that a loaded machine still makes its tries inside the block.
        let blockSeconds = 12
        let server = try await TestServer(attempts: 2, extra: ["--block-seconds", String(blockSeconds)])
        let first = try server.client()
        first.send("vader")
        first.send("x")
        first.send("y")
        try await first.expect(Messages.passwordBlocked)
        let blockedAt = ContinuousClock.now
        // Wrong passwords during the block are refused without being checked.
        for _ in 0..<3 {
            let client = try server.client()
            client.send("vader")
            client.send("still wrong")
            // Late on a slow machine, the block may be over and this a counted failure.
            let reply = try await waitForEither(client, Messages.accountBlocked, Messages.passwordBlocked, Messages.invalidPassword)
            // On a very slow machine the block may already be over; only then may it differ.
            if ContinuousClock.now - blockedAt < .seconds(blockSeconds) / 2 {
                #expect(reply == Messages.accountBlocked)
            }
            client.signal(SIGKILL)
        }
        // After the block, one wrong password is a first failure again, not a new block.
        try await eventually("the block to expire", timeout: .seconds(blockSeconds) + patience) {
            let client = try server.client()
            client.send("vader")
            client.send("wrong again")
            let text = try await waitForEither(client, Messages.invalidPassword + "\n", Messages.accountBlocked)
            client.signal(SIGKILL)
            return text == Messages.invalidPassword + "\n"
        }
    }

    @Test func consecutiveFailuresCountAcrossConnections() async throws {
        let server = try await TestServer(attempts: 3)
        let first = try server.client()
        first.send("leia")
        first.send("a")
        try await first.expect(Messages.invalidPassword + "\n")
        first.send("b")
        try await first.expect(Messages.invalidPassword + "\n" + Messages.passwordPrompt)
        first.closeInput()
        #expect(try await first.waitForExit() == 0)

        let second = try server.client()
        second.send("leia")
        second.send("c")
        try await second.expect(Messages.passwordBlocked)
        #expect(try await second.waitForExit() == 1)
    }

    @Test func successResetsTheCount() async throws {
        let server = try await TestServer(attempts: 3)
        let first = try server.client()
        first.send("r2d2")
        first.send("a")
        first.send("b")
        first.send("do*!@#dedo")
        try await first.expect(Messages.welcome)
        first.send("OUT")
        #expect(try await first.waitForExit() == 0)

        let second = try server.client()
        second.send("r2d2")
        second.send("c")
        second.send("d")
        try await second.expect(Messages.invalidPassword + "\n" + Messages.passwordPrompt + Messages.invalidPassword + "\n")
        second.send("do*!@#dedo")
        try await second.expect(Messages.welcome)
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
