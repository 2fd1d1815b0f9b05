import NIOCore

/// How a transfer reaches its audience (spec §12).
public enum TransferPath: Sendable, Equatable {
    /// Straight to one of the audience's addresses (its LAN address, or its NAT's public
    /// one once both sides' packets opened the way).
    case direct
    /// Through the server's UDP port, which forwards every datagram unchanged.
    case relayed

    public var word: String { self == .direct ? "direct" : "relayed" }
}

/// Where the presenter sends START until the audience answers, pure: the time in, the
/// addresses due out. Every direct candidate at once and often (hole punching: the first
/// packets die at the other side's NAT until its own punches open it), and the server's
/// relay after `relayAfter` without an answer. The first address whose ACCEPT arrives is
/// the path.
struct PathFinder {
    let direct: [SocketAddress]
    let relay: SocketAddress?
    private let started: Int64
    private var nextDirect: Int64
    private var nextRelay: Int64
    private var relayInterval: Int64

    /// START's interval to direct candidates: five tries a second while punching.
    static let punchInterval: Int64 = 200_000_000
    /// After this, once a second: a NAT that opens late still gets through.
    static let punchingFor: Int64 = 5_000_000_000
    static let lateInterval: Int64 = 1_000_000_000
    /// Without an answer this long, the relay is tried too (at most half the timeout).
    static let relayAfter: Int64 = 5_000_000_000

    init(direct: [SocketAddress], relay: SocketAddress?, timeout: Int64, now: Int64) {
        var unique: [SocketAddress] = []
        for address in direct where !unique.contains(address) && address != relay { unique.append(address) }
        self.direct = unique
        self.relay = relay
        started = now
        nextDirect = now
        nextRelay = now + min(Self.relayAfter, max(timeout / 2, 0))
        relayInterval = RoundTripEstimator.initialTimeout
    }

    /// Whether the server gave candidates and a relay, rather than one address (a v1 peer).
    var isPeerToPeer: Bool { relay != nil || direct.count > 1 }

    /// The addresses START goes to now.
    mutating func due(now: Int64) -> [SocketAddress] {
        var targets: [SocketAddress] = []
        if now >= nextDirect, !direct.isEmpty {
            targets = direct
            nextDirect = now + (now - started < Self.punchingFor ? Self.punchInterval : Self.lateInterval)
        }
        if let relay, now >= nextRelay {
            targets.append(relay)
            nextRelay = now + relayInterval
            relayInterval = min(relayInterval * 2, Self.lateInterval)
        }
        return targets
    }

    /// The path an ACCEPT from `source` opens.
    func path(from source: SocketAddress) -> TransferPath {
        source == relay ? .relayed : .direct
    }
}
