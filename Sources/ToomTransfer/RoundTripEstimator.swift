/// Smoothed round-trip time and retransmission timeout after RFC 6298, in nanoseconds.
/// The floor is lower than the RFC's one second: these transfers run on LANs and
/// loopback, where a second of silence would dominate the transfer time.
struct RoundTripEstimator {
    static let initialTimeout: Int64 = 250_000_000
    static let minimumTimeout: Int64 = 10_000_000
    static let maximumTimeout: Int64 = 2_000_000_000
    /// Clock granularity G of the RFC: the sender's timers tick every few milliseconds.
    static let granularity: Int64 = 5_000_000

    private(set) var smoothed: Int64?
    private(set) var variation: Int64 = 0
    private(set) var latest: Int64 = 0

    mutating func add(sample: Int64) {
        let sample = max(sample, 1)
        latest = sample
        guard let smoothed else {
            self.smoothed = sample
            variation = sample / 2
            return
        }
        // RTTVAR = 3/4 RTTVAR + 1/4 |SRTT - R|;  SRTT = 7/8 SRTT + 1/8 R
        variation = (3 * variation + abs(smoothed - sample)) / 4
        self.smoothed = (7 * smoothed + sample) / 8
    }

    /// RTO = SRTT + max(G, 4 RTTVAR), within the bounds.
    var timeout: Int64 {
        guard let smoothed else { return Self.initialTimeout }
        return min(max(smoothed + max(Self.granularity, 4 * variation), Self.minimumTimeout), Self.maximumTimeout)
    }

    /// How long after a later datagram was acknowledged an earlier one counts as lost:
    /// 9/8 of the round trip, as QUIC does (RFC 9002 §6.1.2).
    var lossDelay: Int64 {
        let base = max(smoothed ?? Self.initialTimeout, latest)
        return max(base + base / 8, Self.granularity / 5)
    }
}
