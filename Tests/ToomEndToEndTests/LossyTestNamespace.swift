import Foundation
import ToomTestSupport

/// A network namespace in which the kernel drops a share of the UDP datagrams sent to
/// one port (nftables), for running a server and its clients under real loss.
struct LossyTestNamespace {
    /// The audience's UDP port inside the namespace, which the drop rule names.
    static let audiencePort = 40000

    let name: String
    private static let ip = "/usr/sbin/ip"

    /// Nil when a namespace can be made here; otherwise why not.
    static let unavailableReason: String? = {
        if geteuid() != 0 { return "not root" }
        for tool in [ip, "/usr/sbin/nft"] where !FileManager.default.isExecutableFile(atPath: tool) {
            return "\(tool) is missing (Debian packages iproute2, nftables)"
        }
        return nil
    }()

    static var isAvailable: Bool {
        if let reason = unavailableReason { print("lossy namespace unavailable: \(reason)") }
        return unavailableReason == nil
    }

    /// Processes started with this prefix run inside the namespace.
    var launcher: [String] { [Self.ip, "netns", "exec", name] }

    init(dropping percent: Int, ofUDPTo port: Int) throws {
        name = "toom-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try Self.shell("""
            ip netns add \(name)
            ip netns exec \(name) ip link set lo up
            ip netns exec \(name) nft add table inet toom
            ip netns exec \(name) nft add chain inet toom in '{ type filter hook input priority 0; }'
            ip netns exec \(name) nft add rule inet toom in udp dport \(port) numgen random mod 100 '<' \(percent) counter drop
            """, cleanup: "ip netns delete \(name)")
    }

    /// Deletes the namespace (processes still inside keep it alive until they exit).
    func remove() {
        _ = try? Self.shell("ip netns delete \(name)")
    }

    /// Datagrams the rule has dropped so far.
    func droppedPackets() throws -> Int {
        let listing = try Self.shell("ip netns exec \(name) nft list chain inet toom in")
        guard let range = listing.range(of: #"counter packets [0-9]+"#, options: .regularExpression),
              let count = Int(listing[range].split(separator: " ").last!) else {
            throw HarnessError(description: "no counter in: \(listing)")
        }
        return count
    }

    /// Runs a shell script (stopping at the first failure, then running `cleanup`).
    @discardableResult
    private static func shell(_ script: String, cleanup: String? = nil) throws -> String {
        let (status, text) = try runCapturing("/bin/sh", ["-ec", script],
                                              environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"])
        guard status == 0 else {
            if let cleanup { _ = try? shell(cleanup) }
            throw HarnessError(description: "\(script)\nfailed: \(text)")
        }
        return text
    }
}
