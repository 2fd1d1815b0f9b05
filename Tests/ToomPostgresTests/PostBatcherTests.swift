import Testing
@testable import ToomPostgres

/// When a server's messages go to the database, and with which others, without a database:
/// the caller's sends, answers (with the feed number each batch ended at) and hold timers
/// are the test's steps.
@Suite struct PostBatcherTests {
    /// The batcher behind a reference, so that each step can sit inside `#expect`.
    final class Batcher {
        var batcher = PostBatcher<Int>()
        var pending: [Int] { batcher.pending }
        func add(_ post: Int) -> Bool { batcher.add(post) }
        func take() -> [Int] { batcher.take() }
        func answered(size: Int, last: Int64?) -> PostBatcher<Int>.After { batcher.answered(size: size, last: last) }
        func holdEnded(_ hold: Int) -> Bool { batcher.holdEnded(hold) }
    }

    /// A batcher whose first batch (one message, feed number 10) was answered.
    static func started() -> Batcher {
        let batcher = Batcher()
        _ = batcher.add(0)
        _ = batcher.take()
        _ = batcher.answered(size: 1, last: 10)
        return batcher
    }

    @Test func aLoneMessageGoesAtOnceAndNothingWaitsAfterIt() {
        let batcher = Batcher()
        #expect(batcher.add(1), "nothing in flight: send now")
        #expect(batcher.take() == [1])
        #expect(batcher.answered(size: 1, last: 1) == .idle)
        #expect(batcher.add(2), "idle again: the next message goes at once")
    }

    @Test func messagesArrivingDuringAFlightGoTogetherNext() {
        let batcher = Batcher()
        #expect(batcher.add(1))
        #expect(batcher.take() == [1])
        #expect(!batcher.add(2))
        #expect(!batcher.add(3))
        #expect(batcher.answered(size: 1, last: 1) == .send)
        #expect(batcher.take() == [2, 3])
    }

    @Test func aLoneServerNeverHolds() {
        let batcher = Self.started()
        #expect(batcher.add(1))
        for n in 2...4 { _ = batcher.add(n) }
        #expect(batcher.take() == [1, 2, 3, 4])
        for n in 5...8 { _ = batcher.add(n) }
        // Feed numbers 11...14: nobody else posted in between.
        #expect(batcher.answered(size: 4, last: 14) == .send)
        #expect(batcher.take() == Array(5...8))
        #expect(batcher.answered(size: 4, last: 18) == .idle)
    }

    @Test func withOtherServersPostingTwoCohortsMergeIntoOneBatch() {
        let batcher = Self.started()
        // Cohort A (1...4) in flight, cohort B (5...8) waiting.
        #expect(batcher.add(1))
        for n in 2...4 { _ = batcher.add(n) }
        #expect(batcher.take() == [1, 2, 3, 4])
        for n in 5...8 { #expect(!batcher.add(n)) }
        // A got feed numbers 21...24: another server stored 11...20. Hold until A's clients
        // sent again (4 + 4 waiting) rather than send B alone.
        guard case .hold = batcher.answered(size: 4, last: 24) else { Issue.record("expected a hold"); return }
        for n in 9...11 { #expect(!batcher.add(n), "7 of 8 waiting: still held") }
        #expect(batcher.add(12), "8 waiting: send")
        #expect(batcher.take() == Array(5...12))
        // One batch of all eight: answered with nothing waiting, it waits for all eight again.
        guard case .hold = batcher.answered(size: 8, last: 40) else { Issue.record("expected a hold"); return }
        for n in 13...19 { #expect(!batcher.add(n)) }
        #expect(batcher.add(20))
        #expect(batcher.take() == Array(13...20))
    }

    @Test func aHoldEndsByItsTimerWithWhatCame() {
        let batcher = Self.started()
        #expect(batcher.add(1))
        _ = batcher.add(2)
        #expect(batcher.take() == [1, 2])
        guard case .hold(let hold) = batcher.answered(size: 2, last: 30) else { Issue.record("expected a hold"); return }
        #expect(!batcher.add(3), "one of the two came back")
        #expect(batcher.holdEnded(hold), "the timer: send what waits")
        #expect(batcher.take() == [3])
        #expect(batcher.answered(size: 1, last: 40) == .idle, "a batch of one is not held")
        // A timer of an earlier hold that fires later does nothing.
        #expect(!batcher.holdEnded(hold))
        #expect(batcher.add(4), "idle: at once")
    }

    @Test func aHoldWithNothingComingGoesIdle() {
        let batcher = Self.started()
        #expect(batcher.add(1))
        _ = batcher.add(2)
        _ = batcher.take()
        guard case .hold(let hold) = batcher.answered(size: 2, last: 30) else { Issue.record("expected a hold"); return }
        #expect(!batcher.holdEnded(hold), "nothing to send")
        #expect(batcher.add(3), "idle: the next message goes at once")
    }

    @Test func aServerHoldsWhileOthersPostedWithinTheSpan() {
        let batcher = Self.started()
        var feed: Int64 = 10
        // One batch with others' messages before it, then only this server's.
        for round in 0...PostBatcher<Int>.sharedSpan {
            #expect(batcher.add(1))
            _ = batcher.add(2)
            _ = batcher.take()
            feed += round == 0 ? 12 : 2
            let after = batcher.answered(size: 2, last: feed)
            if round < PostBatcher<Int>.sharedSpan {
                guard case .hold(let hold) = after else { Issue.record("round \(round): expected a hold"); return }
                #expect(!batcher.holdEnded(hold), "nothing came: idle")
            } else {
                #expect(after == .idle, "\(round) batches with nobody else's between: no hold")
            }
        }
    }

    @Test func aFailedBatchIsNotHeldAfter() {
        let batcher = Self.started()
        #expect(batcher.add(1))
        _ = batcher.add(2)
        _ = batcher.take()
        _ = batcher.add(3)
        #expect(batcher.answered(size: 2, last: nil) == .send)
        #expect(batcher.take() == [3])
    }

    @Test func aBatchCarriesAtMostTheLimit() {
        let batcher = Self.started()
        let limit = PostBatcher<Int>.limit
        #expect(batcher.add(0))
        for n in 1..<(2 * limit + 5) { _ = batcher.add(n) }
        #expect(batcher.take() == Array(0..<limit))
        // A whole batch or more waits: no hold, even with other servers posting.
        #expect(batcher.answered(size: limit, last: 10_000) == .send)
        #expect(batcher.take() == Array(limit..<(2 * limit)))
        #expect(batcher.pending == Array((2 * limit)..<(2 * limit + 5)))
    }
}
