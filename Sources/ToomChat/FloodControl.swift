/// Flood control for one user as a token bucket (spec §8): up to `burst` messages at once,
/// then `rate` a second. A message over the limit is not refused: the connection reads it
/// when its token is due, so a flooder is slowed down and never disconnected for it.
/// Kept in whole nanoseconds of credit, so a token is due exactly when the clock says.
/// Each online session holds one: the limits, the same for all, are kept apart, so a
/// session's bucket is two numbers.
struct FloodControl: Sendable {
    /// The bucket's size and refill, from `rate` messages a second and `burst` at once.
    struct Limits: Sendable {
        /// Nanoseconds of credit one message costs; 0: no flood control.
        let cost: Int64
        let capacity: Int64

        /// `rate` messages a second (0 turns flood control off), `burst` at once.
        init(rate: Double, burst: Int) {
            cost = rate > 0 ? max(1, Int64(min(1e15, (1e9 / rate).rounded()))) : 0
            let (product, overflow) = cost.multipliedReportingOverflow(by: Int64(max(1, burst)))
            capacity = overflow ? .max : product
        }
    }

    private var credit: Int64
    /// When the credit was last brought up to date, in nanoseconds of the monotonic clock.
    private var updated: Int64

    /// A full bucket.
    init(_ limits: Limits, now: Duration) {
        credit = limits.capacity
        updated = Self.nanoseconds(now)
    }

    /// Takes a token for one message; nil when taken, otherwise when the next one is due.
    mutating func take(now: Duration, _ limits: Limits) -> Duration? {
        guard limits.cost > 0 else { return nil }
        let clock = Self.nanoseconds(now)
        if clock > updated {
            let (sum, overflow) = credit.addingReportingOverflow(clock - updated)
            credit = overflow ? limits.capacity : min(limits.capacity, sum)
            updated = clock
        }
        if credit >= limits.cost {
            credit -= limits.cost
            return nil
        }
        return now + .nanoseconds(limits.cost - credit)
    }

    private static func nanoseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
    }
}
