/// Failed logins per client address, across accounts: on top of the per-account block
/// (`LoginPolicy`), this stops one address from guessing through many accounts.
/// Old failures are forgotten, so the table stays as small as the recent attackers.
struct AddressPolicy: Sendable {
    let limit: Int
    let window: Duration
    let blockDuration: Duration
    private var failures: [String: [Duration]] = [:]
    private var blockedUntil: [String: Duration] = [:]
    private var lastSweep = Duration.zero

    init(limit: Int, window: Duration, blockDuration: Duration) {
        self.limit = limit
        self.window = window
        self.blockDuration = blockDuration
    }

    func isBlocked(_ address: String, now: Duration) -> Bool {
        guard let until = blockedUntil[address] else { return false }
        return now < until
    }

    /// Records a failed login; returns true when it blocks the address.
    mutating func recordFailure(_ address: String, now: Duration) -> Bool {
        guard limit > 0 else { return false }
        if now - lastSweep > window { forgetOld(now: now) }
        var recent = failures[address, default: []].filter { $0 > now - window }
        recent.append(now)
        if recent.count >= limit {
            failures[address] = nil
            blockedUntil[address] = now + blockDuration
            return true
        }
        failures[address] = recent
        return false
    }

    /// Drops what no longer matters, once a window: each address then holds fewer than
    /// `limit` entries, made within the last window.
    private mutating func forgetOld(now: Duration) {
        lastSweep = now
        let since = now - window
        failures = failures.compactMapValues { times in
            let recent = times.filter { $0 > since }
            return recent.isEmpty ? nil : recent
        }
        blockedUntil = blockedUntil.filter { now < $0.value }
    }
}
