/// Which of a server's messages go to the database together, and when. One batch is in
/// flight at a time, and what arrives meanwhile goes in the next.
///
/// When other servers post to the same database, a server also holds its next batch after
/// one is answered, until as many messages wait as that batch held plus those that came
/// meanwhile, or until its hold ends (the caller's timer, as long as the batch took):
/// the clients it answered usually send again in that time. Without the hold, clients that
/// each keep one message outstanding settle in two cohorts that alternate, each batch half
/// of them, and every server halves its batches again; a batch's fixed cost (two commits, a
/// notification every server reads) is then paid four times as often, on the database, the
/// one resource all servers share (docs/BENCHMARKS.md, "cluster"). A lone server does not
/// hold: its batches are already as large as its own load makes them, and the wait would
/// leave its one connection idle. A batch of one is never held after: a lone typist waits
/// for nothing.
///
/// Pure: the caller sends, times and answers; tests drive it without a database.
struct PostBatcher<Post> {
    /// The most messages one batch carries.
    static var limit: Int { 500 }

    private(set) var pending: [Post] = []
    private var phase = Phase.idle
    private var holds = 0
    /// The last feed number of this server's latest answered batch.
    private var lastFeed: Int64?
    /// How many more of this server's batches count as shared since others last posted
    /// between two of them: their batches come and go, and a hold only now and then keeps
    /// the cohorts apart.
    private var shared = 0
    static var sharedSpan: Int { 16 }

    private enum Phase: Equatable {
        case idle
        case inFlight
        /// Waiting for `target` messages; `hold` names this wait for its timer.
        case holding(target: Int, hold: Int)
    }

    enum After: Equatable {
        /// Nothing waits: the next message is sent at once.
        case idle
        case send
        /// Send when the hold's timer fires (`holdEnded`), unless enough messages came first.
        case hold(Int)
    }

    /// Queues a message; true when the caller should send a batch now (`take`).
    mutating func add(_ post: Post) -> Bool {
        pending.append(post)
        switch phase {
        case .idle:
            phase = .inFlight
            return true
        case .inFlight:
            return false
        case .holding(let target, _):
            guard pending.count >= target else { return false }
            phase = .inFlight
            return true
        }
    }

    /// The next batch to send, oldest first; empty (and idle) when nothing waits.
    mutating func take() -> [Post] {
        let batch = Array(pending.prefix(Self.limit))
        pending.removeFirst(batch.count)
        phase = batch.isEmpty ? .idle : .inFlight
        return batch
    }

    /// The batch in flight, of `size` messages, was answered; `last` is the feed number of
    /// its last message (nil if it failed). Feed numbers between this server's batches are
    /// other servers' messages; a hold follows while some came within the last
    /// `sharedSpan` batches.
    mutating func answered(size: Int, last: Int64?) -> After {
        let othersPosted = last.map { last in lastFeed.map { last - Int64(size) > $0 } ?? false } ?? false
        if let last { lastFeed = last }
        shared = othersPosted ? Self.sharedSpan : max(0, shared - 1)
        let target = min(Self.limit, size + pending.count)
        if shared == 0 || last == nil || size <= 1 || pending.count >= target {
            phase = pending.isEmpty ? .idle : .inFlight
            return pending.isEmpty ? .idle : .send
        }
        holds += 1
        phase = .holding(target: target, hold: holds)
        return .hold(holds)
    }

    /// The timer of `hold` fired: true when the caller should send what waits now.
    mutating func holdEnded(_ hold: Int) -> Bool {
        guard case .holding(_, let current) = phase, current == hold else { return false }
        phase = pending.isEmpty ? .idle : .inFlight
        return !pending.isEmpty
    }
}
extension PostBatcher: Sendable where Post: Sendable {}
