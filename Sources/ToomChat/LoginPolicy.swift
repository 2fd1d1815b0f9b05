/// Consecutive failed passwords per account, and the block that follows (spec §4).
/// The block is per account, for every connection and address; tries during a block
/// neither count nor extend it; a success resets the count.
struct LoginPolicy: Sendable {
    let attempts: Int
    let blockDuration: Duration
    private var failures: [String: Int] = [:]
    private var blockedUntil: [String: Duration] = [:]
    /// Blocks made on other servers (a shared store), as last reported.
    var elsewhere: [String: Duration] = [:]
    /// When each block of this server's began.
    private var blockedAt: [String: Duration] = [:]

    init(attempts: Int, blockDuration: Duration) {
        self.attempts = attempts
        self.blockDuration = blockDuration
    }

    func isBlocked(_ user: String, now: Duration) -> Bool {
        if let until = elsewhere[user], now < until { return true }
        guard let until = blockedUntil[user] else { return false }
        return now < until
    }

    enum Failure { case retry, blocked }

    /// Records a wrong password; returns whether the account is now blocked.
    mutating func recordFailure(_ user: String, now: Duration) -> Failure {
        let count = failures[user, default: 0] + 1
        if count >= attempts {
            failures[user] = nil
            blockedUntil[user] = now + blockDuration
            blockedAt[user] = now
            return .blocked
        }
        failures[user] = count
        return .retry
    }

    mutating func recordSuccess(_ user: String) {
        failures[user] = nil
        blockedUntil[user] = nil
    }

    /// Clears a block now. Returns false when the user was not blocked.
    mutating func unblock(_ user: String, now: Duration) -> Bool {
        let wasBlocked = isBlocked(user, now: now)
        blockedUntil[user] = nil
        elsewhere[user] = nil
        failures[user] = nil
        return wasBlocked
    }

    /// A shared store reported the blocks of every server (`blocked`, with their ends): a
    /// block of this server's that the store no longer has was lifted by an operator on
    /// another server. Blocks younger than `settle` may not be in the store yet and stay.
    mutating func reconcile(_ blocked: [String: Duration], now: Duration, settle: Duration = .seconds(3)) {
        elsewhere = blocked
        for (user, began) in blockedAt where blocked[user] == nil && now - began > settle {
            blockedUntil[user] = nil
            blockedAt[user] = nil
        }
    }

    /// Users blocked at `now`, with the time left.
    func blocked(now: Duration) -> [(user: String, remaining: Duration)] {
        blockedUntil.merging(elsewhere, uniquingKeysWith: max)
            .compactMap { user, until in now < until ? (user, until - now) : nil }.sorted { $0.user < $1.user }
    }
}
