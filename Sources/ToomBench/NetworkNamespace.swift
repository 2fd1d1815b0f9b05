import Foundation
import ToomTestSupport

/// A throw-away network namespace whose kernel drops a share of the UDP datagrams sent to
/// one port (nftables), for measuring under real loss. Needs root, `ip` and `nft`.
struct LossyNamespace {
    let name: String
    private let ip: String

    /// Why a lossy namespace cannot be made here, or nil if it can.
    static var unavailableReason: String? {
        if geteuid() != 0 { return "not root" }
        if tool("ip") == nil { return "ip (iproute2) not installed" }
        if tool("nft") == nil { return "nft (nftables) not installed" }
        return nil
    }

    static func tool(_ name: String) -> String? {
        ["/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"].map { $0 + name }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Creates the namespace with loopback up and the drop rule for `port`.
    init(dropping percent: Int, ofUDPTo port: Int) throws {
        guard let ip = Self.tool("ip"), let nft = Self.tool("nft") else { throw BenchError("ip or nft missing") }
        self.ip = ip
        name = "toom-bench-\(getpid())"
        try Self.run(ip, ["netns", "add", name])
        do {
            try Self.run(ip, ["netns", "exec", name, ip, "link", "set", "lo", "up"])
            try Self.run(ip, ["netns", "exec", name, nft, "add", "table", "inet", "toom"])
            try Self.run(ip, ["netns", "exec", name, nft, "add", "chain", "inet", "toom", "in",
                              "{ type filter hook input priority 0; }"])
            try Self.run(ip, ["netns", "exec", name, nft, "add", "rule", "inet", "toom", "in", "udp", "dport",
                              String(port), "numgen", "random", "mod", "100", "<", String(percent), "drop"])
        } catch {
            remove()
            throw error
        }
    }

    /// Runs a command inside the namespace and returns its standard output and error.
    func run(_ arguments: [String]) throws -> String {
        try Self.run(ip, ["netns", "exec", name] + arguments)
    }

    func remove() {
        _ = try? Self.run(ip, ["netns", "delete", name])
    }

    @discardableResult
    private static func run(_ executable: String, _ arguments: [String]) throws -> String {
        let (status, output) = try runCapturing(executable, arguments)
        guard status == 0 else {
            throw BenchError("\(executable) \(arguments.joined(separator: " ")) failed: "
                             + output.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return output
    }
}
