import Foundation
import Testing
import ToomCore
import ToomTestSupport

/// Spec §1: bad arguments get a one-line error (plus usage) and a non-zero exit; never a stack trace.
@Suite struct CommandLineTests {
    private func run(_ arguments: [String]) async throws -> (status: Int32, stdout: String, stderr: String) {
        let dir = try TemporaryDirectory()
        let process = try ToomProcess(arguments, in: dir.url)
        process.closeInput()
        let status = try await process.waitForExit()
        return (status, process.stdout, process.stderr)
    }

    @Test func versionPrintsTheVersion() async throws {
        let result = try await run(["--version"])
        #expect(result.status == 0)
        #expect(result.stdout == ToomVersion.current + "\n")
    }

    @Test(arguments: ["0", "6", "abc", "2.5", "-1", ""])
    func attemptsOutsideOneToFiveAreRefused(_ value: String) async throws {
        let result = try await run(["server", "4000", value])
        #expect(result.status != 0)
        #expect(result.stderr.contains("Invalid number of allowed failed consecutive attempt: \(value). The valid value of argument number is an integer between 1 and 5\n"))
        #expect(!result.stderr.contains("Fatal error"))
    }

    @Test(arguments: [["server", "70000", "3"], ["server", "port", "3"], ["server", "4000"], ["server"],
                      ["client", "127.0.0.1", "99999", "0"], ["client", "127.0.0.1", "4000"],
                      ["client", "127.0.0.1", "abc", "0"], ["client", "127.0.0.1", "4000", "-5"], ["nonsense"],
                      ["server", "4000", "3", "--login-timeout", "0"], ["server", "4000", "3", "--max-connections", "0"],
                      ["server", "4000", "3", "--max-unread-bytes", "100"], ["server", "4000", "3", "--address-block-seconds", "x"]])
    func badArgumentsPrintAnErrorAndUsage(_ arguments: [String]) async throws {
        let result = try await run(arguments)
        #expect(result.status != 0)
        #expect(result.stderr.contains("Error: "), "\(arguments)")
        #expect(result.stderr.contains("Usage: toom") || result.stderr.contains("USAGE: toom"), "\(arguments)")
        #expect(!result.stderr.contains("Fatal error"))
    }

    @Test func helpDescribesEachSubcommand() async throws {
        for sub in ["server", "client"] {
            let result = try await run([sub, "--help"])
            #expect(result.status == 0)
            #expect(result.stdout.contains("USAGE: toom \(sub)"))
        }
        let server = try await run(["server", "--help"])
        for option in ["--data-dir", "--block-seconds", "--host", "--fresh"] {
            #expect(server.stdout.contains(option))
        }
    }

    @Test func aServerThatCannotStartSaysWhy() async throws {
        // No credentials.txt in the data directory.
        let dir = try TemporaryDirectory()
        let missing = try await run(["server", "0", "3", "--data-dir", dir.url.path])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("credentials.txt: No such file or directory"))

        // The port is taken by a running server (with another data directory: a second server
        // on the same one is refused before it tries the port).
        let server = try await TestServer()
        try bundledCredentials.write(to: dir.url.appendingPathComponent("credentials.txt"), atomically: true, encoding: .utf8)
        let taken = try await run(["server", String(server.port), "3", "--host", "127.0.0.1", "--data-dir", dir.url.path])
        #expect(taken.status == 1)
        #expect(taken.stderr.contains("Address already in use"))
        #expect(taken.stderr.split(separator: "\n").count == 1, "\(taken.stderr)")
    }

    @Test func aClientWithNoServerSaysSo() async throws {
        let server = try await TestServer()
        let port = server.port
        #expect(try await server.stop() == 0)
        let result = try await run(["client", "127.0.0.1", String(port), "0"])
        #expect(result.status == 3)
        #expect(result.stdout.contains("Cannot connect to the server at 127.0.0.1 port \(port): Connection refused"))
    }

    @Test func aClientTellsWhenTheServerGoesAway() async throws {
        let server = try await TestServer()
        let hans = try await server.login("hans")
        server.process.signal(SIGKILL)
        try await hans.expect(Messages.connectionLost)
        #expect(try await hans.waitForExit() == 3)
        #expect(!hans.stderr.contains("Fatal error"))
    }
}
