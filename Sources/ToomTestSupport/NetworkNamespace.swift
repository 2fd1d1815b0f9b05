import Foundation

/// A throw-away network namespace for the tests and `toom-bench`, with only loopback:
/// real loss (nftables dropping a share of the UDP datagrams to one port), or a small MTU
/// and a bottleneck (`tc tbf`). Needs root, iproute2 (`ip`, `tc`) and nftables.
public struct NetworkNamespace: Sendable {
    public let name: String

    /// Nil when namespaces can be made here; otherwise why not.
    public static let unavailableReason: String? = {
        if geteuid() != 0 { return "not root" }
        for tool in ["ip", "tc", "nft"] where NetworkNamespace.tool(tool) == nil {
            return "\(tool) is missing (Debian packages iproute2, nftables)"
        }
        return nil
    }()

    /// For `@Test(.enabled(if:))`: says why not, once, when it is not.
    public static var isAvailable: Bool {
        if let reason = unavailableReason { print("SKIPPED network namespace tests: \(reason)") }
        return unavailableReason == nil
    }

    public static func tool(_ name: String) -> String? {
        ["/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"].map { $0 + name }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    init(name: String) { self.name = name }

    private static func freshName(_ label: String) -> String {
        "toom-\(label)-\(getpid())-\(UInt16.random(in: 0...UInt16.max))"
    }

    /// A namespace with only loopback, whose kernel drops `percent`% of the UDP datagrams
    /// sent to `port`, counting them.
    public static func lossy(dropping percent: Int, ofUDPTo port: Int) throws -> NetworkNamespace {
        let name = freshName("loss")
        try shell("""
            ip netns add \(name)
            ip netns exec \(name) ip link set lo up
            ip netns exec \(name) nft add table inet toom
            ip netns exec \(name) nft add chain inet toom in '{ type filter hook input priority 0; }'
            ip netns exec \(name) nft add rule inet toom in udp dport \(port) numgen random mod 100 '<' \(percent) counter drop
            """, cleanup: "ip netns delete \(name)")
        return NetworkNamespace(name: name)
    }

    /// A namespace with only loopback, of `mtu` bytes, shaped to `rate` bits per second
    /// with a queue of `queue` seconds (tbf) when a rate is given: a small path, or a
    /// bottleneck shared by everything in the namespace (both directions, like Wi-Fi).
    public static func loopback(mtu: Int = 65536, rateBitsPerSecond rate: Int? = nil, queue: Double = 0.2) throws
        -> NetworkNamespace {
        let name = freshName("lo")
        var script = """
            ip netns add \(name)
            ip netns exec \(name) ip link set lo mtu \(mtu) up
            """
        if let rate { script += "\n" + shaping(name, device: "lo", rate: rate, queue: queue) }
        try shell(script, cleanup: "ip netns delete \(name)")
        return NetworkNamespace(name: name)
    }

    /// tbf's limit is its queue in bytes; its burst lets one 4 ms timer tick's worth through.
    static func shaping(_ namespace: String, device: String, rate: Int, queue: Double) -> String {
        let limit = max(Int(Double(rate) / 8 * queue), 3000)
        let burst = max(rate / 8 / 250, 3000)
        return "ip netns exec \(namespace) tc qdisc add dev \(device) root tbf rate \(rate)bit burst \(burst) limit \(limit)"
    }

    /// Processes started with this prefix run inside the namespace.
    public var launcher: [String] { [Self.tool("ip") ?? "/usr/sbin/ip", "netns", "exec", name] }

    /// Runs a command inside the namespace; returns what it printed. Throws if it failed.
    @discardableResult
    public func run(_ arguments: [String]) throws -> String {
        let (status, text) = try runCapturing(launcher[0], Array(launcher.dropFirst()) + arguments,
                                              environment: Self.environment)
        guard status == 0 else {
            throw NamespaceError(description: "\(arguments.joined(separator: " ")) failed: \(text)")
        }
        return text
    }

    /// Datagrams the loss rule has dropped so far.
    public func droppedPackets() throws -> Int {
        try counter("packets", ofChain: "inet toom in")
    }

    /// What the first nft counter of `chain` (`family table chain`) counted: "packets" or "bytes".
    func counter(_ field: String, ofChain chain: String) throws -> Int {
        let listing = try Self.shell("ip netns exec \(name) nft list chain \(chain)")
        guard let range = listing.range(of: #"\#(field) [0-9]+"#, options: .regularExpression),
              let count = Int(listing[range].split(separator: " ").last!) else {
            throw NamespaceError(description: "no counter in: \(listing)")
        }
        return count
    }

    /// Deletes the namespace (processes still inside keep it alive until they exit).
    public func remove() {
        _ = try? Self.shell("ip netns delete \(name)")
    }

    static let environment = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]

    /// Runs a shell script (stopping at the first failure, then running `cleanup`).
    @discardableResult
    static func shell(_ script: String, cleanup: String? = nil) throws -> String {
        let (status, text) = try runCapturing("/bin/sh", ["-ec", script], environment: environment)
        guard status == 0 else {
            if let cleanup { _ = try? shell(cleanup) }
            throw NamespaceError(description: "\(script)\nfailed: \(text)")
        }
        return text
    }
}

public struct NamespaceError: Error, CustomStringConvertible {
    public let description: String
}
