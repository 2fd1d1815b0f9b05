import Foundation

/// Two hosts and a router between them, each a network namespace: sender ↔ router ↔
/// receiver over veth pairs, addresses in 198.18.0.0/15 (RFC 2544's benchmarking range).
/// The bottleneck is the router's way out to the receiver (`tbf`, and optionally a smaller
/// MTU there), as at a Wi-Fi access point or a tunnel: the sending hosts' own queues stay
/// empty, so a TCP sender is not held back by TCP Small Queues, which would cap it at a
/// millisecond of data in a queue on its own host. Needs root, `ip` and `tc`.
public struct RoutedPath: Sendable {
    public let sender: NetworkNamespace
    public let router: NetworkNamespace
    public let receiver: NetworkNamespace
    public let senderAddress = "198.18.1.2"
    public let receiverAddress = "198.18.2.2"

    /// `mtu` on every link but the router's way out, which has `bottleneckMTU` and is shaped
    /// to `rate` bits per second with a queue of `queue` seconds when a rate is given.
    public init(mtu: Int = 1500, bottleneckMTU: Int? = nil, rateBitsPerSecond rate: Int? = nil,
                queue: Double = 0.2) throws {
        let tag = "\(getpid())-\(UInt16.random(in: 0...UInt16.max))"
        let (a, r, b) = ("toom-a-\(tag)", "toom-r-\(tag)", "toom-b-\(tag)")
        var script = """
            ip netns add \(a)
            ip netns add \(r)
            ip netns add \(b)
            ip link add va netns \(a) type veth peer name ra netns \(r)
            ip link add vb netns \(b) type veth peer name rb netns \(r)
            ip -n \(a) link set lo up
            ip -n \(b) link set lo up
            ip -n \(r) link set lo up
            ip -n \(a) link set va mtu \(mtu) up
            ip -n \(r) link set ra mtu \(mtu) up
            ip -n \(r) link set rb mtu \(bottleneckMTU ?? mtu) up
            ip -n \(b) link set vb mtu \(mtu) up
            ip -n \(a) address add 198.18.1.2/24 dev va
            ip -n \(r) address add 198.18.1.1/24 dev ra
            ip -n \(r) address add 198.18.2.1/24 dev rb
            ip -n \(b) address add 198.18.2.2/24 dev vb
            ip -n \(a) route add default via 198.18.1.1
            ip -n \(b) route add default via 198.18.2.1
            ip netns exec \(r) sysctl -q -w net.ipv4.ip_forward=1
            """
        if let rate { script += "\n" + NetworkNamespace.shaping(r, device: "rb", rate: rate, queue: queue) }
        try NetworkNamespace.shell(script, cleanup: "ip netns delete \(a); ip netns delete \(r); ip netns delete \(b)")
        sender = NetworkNamespace(name: a)
        router = NetworkNamespace(name: r)
        receiver = NetworkNamespace(name: b)
    }

    /// Deletes the three namespaces (and with them the links).
    public func remove() {
        for namespace in [sender, router, receiver] { namespace.remove() }
    }
}

extension NetworkNamespace {
    /// Moves the calling thread into this namespace for good: for a thread of its own that
    /// makes sockets, or asks the routing table, as a host in the namespace would.
    public func enterHere() throws {
        let fd = open("/var/run/netns/\(name)", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw NamespaceError(description: "open netns \(name): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard Self.setns(fd, Self.cloneNewNet) == 0 else {
            throw NamespaceError(description: "setns \(name): \(String(cString: strerror(errno)))")
        }
    }

    /// Runs `body` on a thread of its own that has entered this namespace: sockets made
    /// there stay in it wherever they are used afterwards. The thread then ends, so no
    /// other code ever runs in the namespace by accident.
    public func enter<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
        let result = LockedResult<T>()
        let thread = Thread {
            result.set(Result {
                try self.enterHere()
                return try body()
            })
        }
        thread.start()
        return try result.wait().get()
    }

    private static let cloneNewNet: Int32 = 0x4000_0000

    /// Glibc's setns(2), which Swift's Glibc module does not export.
    private static let setns: @convention(c) (Int32, Int32) -> Int32 = {
        unsafeBitCast(dlsym(UnsafeMutableRawPointer(bitPattern: 0), "setns"), to: (@convention(c) (Int32, Int32) -> Int32).self)
    }()
}

/// A value handed from one thread to another that waits for it.
private final class LockedResult<T>: @unchecked Sendable {
    private let condition = NSCondition()
    private var value: Result<T, any Error>?

    func set(_ result: Result<T, any Error>) {
        condition.lock()
        value = result
        condition.signal()
        condition.unlock()
    }

    func wait() -> Result<T, any Error> {
        condition.lock()
        defer { condition.unlock() }
        while value == nil { condition.wait() }
        return value!
    }
}
