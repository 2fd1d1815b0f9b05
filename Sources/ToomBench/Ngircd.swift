import Foundation
import NIOCore

/// ngircd (Debian package `ngircd`), the IRC server the benchmarks compare toom with: started
/// on loopback with a configuration of the bench's own, in the foreground, stopped afterwards.
enum Ngircd {
    /// The installed binary, or nil.
    static let path: String? = ["/usr/sbin/ngircd", "/usr/bin/ngircd", "/usr/local/sbin/ngircd"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }

    static let skipReason = "ngircd is not installed (apt-get install ngircd)"

    /// The operator whose user mode `F` lifts ngircd's flood throttling (3 commands or 256
    /// bytes a second per client, then a second's penalty), which would otherwise measure the
    /// throttle rather than the server.
    private static let operatorName = "bench"
    private static let operatorPassword = "bench"

    /// Starts ngircd in `scratch` on a free port: no DNS, ident or PAM lookups, no connection limits.
    static func start(in scratch: Scratch) async throws -> ServerProcess {
        guard let path else { throw BenchError(skipReason) }
        let port = try Loopback.freePort()
        try scratch.write("ngircd.conf", """
            [Global]
            Name = bench.toom
            Info = toom-bench reference
            AdminInfo1 = toom-bench
            AdminInfo2 = loopback
            AdminEMail = bench@localhost
            Listen = 127.0.0.1
            Ports = \(port)
            MotdPhrase = toom-bench
            [Limits]
            MaxConnections = 0
            MaxConnectionsIP = 0
            MaxJoins = 0
            PingTimeout = 3600
            PongTimeout = 3600
            [Options]
            DNS = no
            Ident = no
            PAM = no
            [Operator]
            Name = \(operatorName)
            Password = \(operatorPassword)

            """)
        return try await ServerProcess(executable: path,
                                 arguments: ["--nodaemon", "--config", scratch.url.appendingPathComponent("ngircd.conf").path],
                                 directory: scratch.url, port: port)
    }

    /// Registers `nick` (the end of the welcome, numeric 376, is the reply).
    static func register(_ client: LineClient, nick: String) async throws {
        _ = try await client.request("NICK \(nick)\r\nUSER \(nick) 0 * :\(nick)\r\n", until: " 376 ")
    }

    /// Registers `nick`, lifts its flood throttling, and joins `channel` if given.
    static func logIn(_ client: LineClient, nick: String, join channel: String?) async throws {
        try await register(client, nick: nick)
        // One command at a time: a fourth one in the same read would cost a second's penalty.
        let oper = try await client.requestLines("OPER \(operatorName) \(operatorPassword)\r\nPING :oper\r\n")
        guard oper.contains(where: { $0.contains(" 381 ") }) else { throw BenchError("ngircd refused OPER: \(oper)") }
        _ = try await client.request("MODE \(nick) +F\r\n", until: "+F")
        if let channel {
            _ = try await client.request("JOIN \(channel)\r\n", until: " 366 ")
        }
    }
}
