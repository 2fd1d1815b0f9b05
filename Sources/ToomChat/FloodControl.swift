/// Flood control for one user as a token bucket (spec §8): up to `burst` messages at once,
/// then `rate` a second. A message over the limit is not refused: the connection reads it
/// when its token is due, so a flooder is slowed down and never disconnected for it.
/// Kept in whole nanoseconds of credit, so a token is due exactly when the clock says.
struct FloodControl: Sendable {
    /// Nanoseconds of credit one message costs; 0: no flood control.
    private let cost: Int64
    private let capacity: Int64
    private var credit: Int64
    private var updated: Duration

    /// `rate` messages a second (0 turns flood control off), `burst` at once.
    init(rate: Double, burst: Int, now: Duration) {
        cost = rate > 0 ? max(1, Int64(min(1e15, (1e9 / rate).rounded()))) : 0
        let (product, overflow) = cost.multipliedReportingOverflow(by: Int64(max(1, burst)))
        capacity = overflow ? .max : product
        credit = capacity
        updated = now
    }

    /// Takes a token for one message; nil when taken, otherwise when the next one is due.
    mutating func take(now: Duration) -> Duration? {
        guard cost > 0 else { return nil }
        if now > updated {
            let elapsed = now - updated
            let nanoseconds = elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
            let (sum, overflow) = credit.addingReportingOverflow(nanoseconds)
            credit = overflow ? capacity : min(capacity, sum)
            updated = now
        }
        if credit >= cost {
            credit -= cost
            return nil
        }
        return now + .nanoseconds(cost - credit)
    }
}
