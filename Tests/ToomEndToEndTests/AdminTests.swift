import Foundation
import ToomTestSupport
import Testing
import ToomCore

/// Runs `toom admin` to completion.
func admin(_ arguments: [String]) async throws -> Completed {
    try await runToom(["admin"] + arguments)
}

@Suite struct AdminTests {
    @Test func listKickAndUnblockAgainstALiveServer() async throws {
        let server = try await TestServer(attempts: 1, extra: ["--block-seconds", "600"])
        let dir = ["--data-dir", server.data.path]
        let hans = try await server.login("hans")
        let yoda = try await server.login("yoda")
        _ = try await hans.command("SRB yoda")
        let vader = try server.client()
        vader.send("vader")
        vader.send("wrong")
        try await vader.expect(Messages.passwordBlocked)

        let list = try await admin(["list"] + dir)
        #expect(list.status == 0)
        let lines = list.out.split(separator: "\n").map(String.init)
        #expect(lines.count == 7)
        #expect(lines[0] == "Users online: 2")
        #expect(matches(lines[1], #"  hans, 127\.0\.0\.1, UDP port [0-9]+, since "# + timestampPattern))
        #expect(lines[3...5] == ["Rooms: 1", "  room 1: hans, yoda", "Blocked accounts: 1"])
        #expect(matches(lines[6], "  vader, (600|5[0-9][0-9]) seconds left"))

        let json = try await admin(["list", "--json"] + dir)
        #expect(json.status == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [String: Any])
        let users = try #require(object["users"] as? [[String: Any]])
        #expect(users.compactMap { $0["user"] as? String } == ["hans", "yoda"])
        #expect(users.allSatisfy { $0["udpPort"] is Int && $0["address"] as? String == "127.0.0.1" && $0["since"] is String })
        #expect((object["rooms"] as? [[String: Any]])?.first?["members"] as? [String] == ["hans", "yoda"])
        #expect((object["blocked"] as? [[String: Any]])?.first?["user"] as? String == "vader")

        let kick = try await admin(["kick", "hans"] + dir)
        #expect(kick.status == 0)
        #expect(kick.out == "hans has been disconnected\n")
        try await hans.expect(Messages.kicked)
        #expect(try await hans.waitForExit() == 4)
        try await server.process.expect("hans disconnected by the operator")
        #expect(server.fileLines("userlog.txt").count == 1)

        let again = try await admin(["kick", "hans"] + dir)
        #expect(again.status == 1)
        #expect(again.err == "hans is not online\n")

        let unblock = try await admin(["unblock", "vader"] + dir)
        #expect(unblock.status == 0)
        #expect(unblock.out == "vader is no longer blocked\n")
        try await server.process.expect("vader unblocked by the operator")
        _ = try await server.login("vader")

        let notBlocked = try await admin(["unblock", "vader"] + dir)
        #expect(notBlocked.status == 0)
        #expect(notBlocked.out == "vader was not blocked\n")
        let unknown = try await admin(["unblock", "nobody"] + dir)
        #expect(unknown.status == 1)
        #expect(unknown.err == "nobody does not exist\n")
        #expect(yoda.process.isRunning)
    }

    @Test(arguments: [["admin"], ["admin", "kick"], ["admin", "kick", "a", "b"], ["admin", "frob"],
                      ["replay", "--room", "0"], ["replay", "--format", "xml"], ["replay", "--pace", "-1"]])
    func badArgumentsGetAnErrorAndUsage(_ arguments: [String]) async throws {
        let result = try await runToom(arguments)
        #expect(result.status == 64, "\(arguments)")
        #expect(result.err.hasPrefix("Error: "), "\(arguments)")
        #expect(result.err.contains("Usage: toom"), "\(arguments)")
    }

    @Test func noServerMeansExitStatusTwo() async throws {
        let root = try TemporaryDirectory()
        let none = try await admin(["list", "--data-dir", root.url.path])
        #expect(none.status == 2)
        #expect(none.err == "No toom server is running in \(root.url.path) (no \(root.url.path)/toom.sock)\n")

        // A crashed server leaves its socket behind: admin says no server runs, and a new
        // server replaces the socket.
        let server = try await TestServer()
        let socket = server.data.appendingPathComponent("toom.sock").path
        server.process.signal(SIGKILL)
        _ = try await server.process.waitForExit()
        #expect(FileManager.default.fileExists(atPath: socket))
        let stale = try await admin(["list", "--data-dir", server.data.path])
        #expect(stale.status == 2)
        #expect(stale.err == "No toom server is running in \(server.data.path) (\(socket) does not answer)\n")
        try await server.restart(samePort: false)
        #expect(try await admin(["list", "--data-dir", server.data.path]).status == 0)

        // A graceful stop removes it.
        #expect(try await server.stop() == 0)
        #expect(!FileManager.default.fileExists(atPath: socket))
    }

    @Test func aSecondServerOnTheSameDataDirectoryIsRefused() async throws {
        let server = try await TestServer()
        let second = try await runToom(["server", "0", "3", "--host", "127.0.0.1", "--data-dir", server.data.path])
        #expect(second.status == 1)
        #expect(second.err == "error: cannot start: another toom server is running with this data directory (it answers on \(server.data.path)/toom.sock)\n")
        #expect(try await admin(["list", "--data-dir", server.data.path]).status == 0)
    }

    @Test func aSocketOthersCouldUseIsRefused() async throws {
        let server = try await TestServer()
        let socket = server.data.appendingPathComponent("toom.sock").path
        var info = stat()
        #expect(lstat(socket, &info) == 0 && info.st_mode & 0o777 == 0o600 && info.st_uid == getuid())

        chmod(socket, 0o666)
        let open = try await admin(["list", "--data-dir", server.data.path])
        #expect(open.status == 1)
        #expect(open.err == "Refusing to use \(socket): its mode is 666, not 600 (only the server's owner may use it)\n")
        chmod(socket, 0o600)

        if getuid() == 0 {
            chown(socket, 65534, 65534)
            let foreign = try await admin(["list", "--data-dir", server.data.path])
            #expect(foreign.status == 1)
            #expect(foreign.err == "Refusing to use \(socket): it belongs to uid 65534, not to you (uid 0)\n")
        }
    }

    /// The server checks the peer's uid itself: a connection from another user is refused
    /// even when the socket file would let it in.
    @Test(.enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv")
                   && FileManager.default.isExecutableFile(atPath: "/usr/bin/perl"),
                   "needs root, setpriv and perl to connect as another user"))
    func theServerRefusesAnotherUser() async throws {
        let server = try await TestServer()
        let socket = server.data.appendingPathComponent("toom.sock").path
        chmod(server.root.url.path, 0o755)
        chmod(server.data.path, 0o755)
        chmod(socket, 0o666)
        let script = """
        use IO::Socket::UNIX; my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or die "connect: $!";
        print $s "LIST\\n"; print while <$s>;
        """
        let stranger = try await run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "perl", "-e", script, socket])
        #expect(stranger.status == 0)
        #expect(stranger.out == "REFUSED\tPermission denied: only the server's owner may use the admin channel\n")
    }
}
