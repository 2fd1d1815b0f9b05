import Foundation

/// The internet and two homes, each host a network namespace (spec §12's tests and
/// `toom-bench`): a server at 198.18.0.2 on the "internet" router, home A behind NAT A
/// (public 198.18.1.2) with two hosts on a bridge (100.64.1.2 and .3), home B behind NAT B
/// (public 198.18.2.2) with one host (100.64.2.2). A NAT masquerades what leaves its WAN
/// side, keeping the source port where it can (a cone NAT, as most home routers) or
/// picking a new one for every flow (`symmetric`, `masquerade random`), and drops what
/// comes in unasked, forwarded or addressed to itself, as a home router does. The
/// internet routes no 100.64.0.0/10 address. Needs root, iproute2 and nftables.
public struct NATLab: Sendable {
    /// `routed`: no NAT at all, the home's addresses routed on the internet (a reference path).
    public enum NAT: Sendable { case cone, symmetric, routed }

    public let internet: NetworkNamespace
    public let server: NetworkNamespace
    public let natA: NetworkNamespace
    public let natB: NetworkNamespace
    public let hostA: NetworkNamespace
    public let hostA2: NetworkNamespace
    public let hostB: NetworkNamespace
    public let serverAddress = "198.18.0.2"

    public init(homeA: NAT = .cone, homeB: NAT = .cone) throws {
        let tag = "\(getpid() % 100_000)-\(UInt16.random(in: 0...UInt16.max))"
        let (i, s, na, nb, a1, a2, b) = ("toom-i-\(tag)", "toom-s-\(tag)", "toom-na-\(tag)", "toom-nb-\(tag)",
                                         "toom-a1-\(tag)", "toom-a2-\(tag)", "toom-b-\(tag)")
        let all = [i, s, na, nb, a1, a2, b]
        var script = all.map { "ip netns add \($0)\nip -n \($0) link set lo up" }.joined(separator: "\n")
        script += """

            ip link add i0 netns \(i) type veth peer name eth0 netns \(s)
            ip link add i1 netns \(i) type veth peer name wan netns \(na)
            ip link add i2 netns \(i) type veth peer name wan netns \(nb)
            ip -n \(na) link add br0 type bridge
            ip link add p1 netns \(na) type veth peer name eth0 netns \(a1)
            ip link add p2 netns \(na) type veth peer name eth0 netns \(a2)
            ip link add lan netns \(nb) type veth peer name eth0 netns \(b)
            ip -n \(na) link set p1 master br0
            ip -n \(na) link set p2 master br0
            ip -n \(i) address add 198.18.0.1/24 dev i0
            ip -n \(i) address add 198.18.1.1/24 dev i1
            ip -n \(i) address add 198.18.2.1/24 dev i2
            ip -n \(s) address add 198.18.0.2/24 dev eth0
            ip -n \(na) address add 198.18.1.2/24 dev wan
            ip -n \(nb) address add 198.18.2.2/24 dev wan
            ip -n \(na) address add 100.64.1.1/24 dev br0
            ip -n \(a1) address add 100.64.1.2/24 dev eth0
            ip -n \(a2) address add 100.64.1.3/24 dev eth0
            ip -n \(nb) address add 100.64.2.1/24 dev lan
            ip -n \(b) address add 100.64.2.2/24 dev eth0
            ip -n \(i) link set i0 up
            ip -n \(i) link set i1 up
            ip -n \(i) link set i2 up
            ip -n \(s) link set eth0 up
            ip -n \(na) link set wan up
            ip -n \(na) link set br0 up
            ip -n \(na) link set p1 up
            ip -n \(na) link set p2 up
            ip -n \(nb) link set wan up
            ip -n \(nb) link set lan up
            ip -n \(a1) link set eth0 up
            ip -n \(a2) link set eth0 up
            ip -n \(b) link set eth0 up
            ip -n \(s) route add default via 198.18.0.1
            ip -n \(na) route add default via 198.18.1.1
            ip -n \(nb) route add default via 198.18.2.1
            ip -n \(a1) route add default via 100.64.1.1
            ip -n \(a2) route add default via 100.64.1.1
            ip -n \(b) route add default via 100.64.2.1
            ip netns exec \(i) sysctl -q -w net.ipv4.ip_forward=1
            ip netns exec \(na) sysctl -q -w net.ipv4.ip_forward=1
            ip netns exec \(nb) sysctl -q -w net.ipv4.ip_forward=1
            \(Self.natRules(na, lan: "br0", homeA))
            \(Self.natRules(nb, lan: "lan", homeB))
            \(homeA == .routed ? "ip -n \(i) route add 100.64.1.0/24 via 198.18.1.2" : "")
            \(homeB == .routed ? "ip -n \(i) route add 100.64.2.0/24 via 198.18.2.2" : "")
            ip netns exec \(s) nft add table inet toomlab
            ip netns exec \(s) nft add chain inet toomlab in '{ type filter hook input priority 0; }'
            ip netns exec \(s) nft add rule inet toomlab in meta l4proto udp counter
            """
        try NetworkNamespace.shell(script, cleanup: all.map { "ip netns delete \($0) 2>/dev/null" }.joined(separator: "; ") + "; true")
        internet = NetworkNamespace(name: i)
        server = NetworkNamespace(name: s)
        natA = NetworkNamespace(name: na)
        natB = NetworkNamespace(name: nb)
        hostA = NetworkNamespace(name: a1)
        hostA2 = NetworkNamespace(name: a2)
        hostB = NetworkNamespace(name: b)
    }

    private static func natRules(_ namespace: String, lan: String, _ nat: NAT) -> String {
        if nat == .routed { return "" }
        return """
        ip netns exec \(namespace) nft -f - <<'RULES'
        table ip nat {
            chain post {
                type nat hook postrouting priority 100;
                oifname "wan" masquerade\(nat == .symmetric ? " random" : "")
            }
        }
        table inet filter {
            chain forward {
                type filter hook forward priority 0; policy drop;
                ct state established,related accept
                iifname "\(lan)" accept
            }
            chain input {
                type filter hook input priority 0; policy drop;
                ct state established,related accept
                iifname != "wan" accept
            }
        }
        RULES
        """
    }

    /// UDP bytes (IP headers included) that reached the server's host so far.
    public func serverUDPBytes() throws -> Int {
        try server.counter("bytes", ofChain: "inet toomlab in")
    }

    public func remove() {
        for namespace in [hostA, hostA2, hostB, natA, natB, server, internet] { namespace.remove() }
    }
}
