import Testing
@testable import ToomTransfer

@Suite struct SendScoreboardTests {
    /// Sends every segment `next` offers below `limit`, at `now`; returns their transmission numbers.
    private func sendAll(_ board: inout SendScoreboard, limit: UInt64, now: Int64 = 0) -> [UInt64: UInt64] {
        var numbers: [UInt64: UInt64] = [:]
        while let segment = board.next(limit: limit) { numbers[segment] = board.sent(segment, at: now) }
        return numbers
    }

    @Test func newSegmentsStopAtTheLimitTheTotalAndTheCapacity() {
        var board = SendScoreboard(total: 100, capacity: 16)
        #expect(sendAll(&board, limit: 10).count == 10)
        #expect(board.inFlight == 10 && board.nextNew == 10)
        #expect(sendAll(&board, limit: 1000).count == 6)
        #expect(board.next(limit: 1000) == nil)
        _ = board.acknowledge(cumulative: 16, ranges: [], largestTransmission: 16, now: 1, lossDelay: 1_000_000)
        #expect(board.inFlight == 0 && board.cumulative == 16)
        #expect(sendAll(&board, limit: 1000).count == 16)
        var last = SendScoreboard(total: 3, capacity: 16)
        #expect(sendAll(&last, limit: 1000).count == 3)
    }

    @Test func threeLaterAcknowledgementsDeclareALoss() {
        var board = SendScoreboard(total: 10, capacity: 16)
        let numbers = sendAll(&board, limit: 10)
        // Segment 2 is missing; 3 and 4 arrived: not yet lost (reordering threshold 3).
        var newly = board.acknowledge(cumulative: 2, ranges: [3..<5], largestTransmission: numbers[4]!, now: 0, lossDelay: 1_000_000_000)
        #expect(newly == 4)
        #expect(board.next(limit: 10) == nil)
        // 5 arrived too: three later transmissions acknowledged, 2 goes again, first.
        newly = board.acknowledge(cumulative: 2, ranges: [3..<6], largestTransmission: numbers[5]!, now: 0, lossDelay: 1_000_000_000)
        #expect(newly == 1)
        #expect(board.inFlight == 4)
        #expect(board.next(limit: 10) == 2)
        let again = board.sent(2, at: 0)
        #expect(again > numbers[9]! && board.retransmissions == 1)
        // The old transmission of 2 never counts again; the new one is acknowledged.
        newly = board.acknowledge(cumulative: 10, ranges: [], largestTransmission: again, now: 0, lossDelay: 1_000_000_000)
        #expect(newly == 5 && board.isComplete && board.inFlight == 0)
    }

    @Test func aLaterAcknowledgementAfterTheLossDelayDeclaresALoss() {
        var board = SendScoreboard(total: 4, capacity: 16)
        let numbers = sendAll(&board, limit: 4, now: 0)
        _ = board.acknowledge(cumulative: 0, ranges: [1..<2], largestTransmission: numbers[1]!, now: 5, lossDelay: 10)
        #expect(board.next(limit: 4) == nil)
        _ = board.acknowledge(cumulative: 0, ranges: [1..<2], largestTransmission: numbers[1]!, now: 10, lossDelay: 10)
        #expect(board.next(limit: 4) == 0)
        // Segments sent after the newest acknowledged one are not lost, however old.
        _ = board.sent(0, at: 11)
        _ = board.acknowledge(cumulative: 0, ranges: [1..<2], largestTransmission: numbers[1]!, now: 1_000, lossDelay: 10)
        #expect(board.next(limit: 4) == nil)
    }

    /// No ACK comes after the one that overtook a segment (nothing later is in flight):
    /// the timer declares it lost once the loss delay has passed.
    @Test func theTimerDeclaresALossOnceItsDelayPassedWithoutAnAcknowledgement() {
        var board = SendScoreboard(total: 4, capacity: 16)
        let numbers = sendAll(&board, limit: 4, now: 0)
        // Two later ones acknowledged: fewer than the reordering threshold.
        _ = board.acknowledge(cumulative: 0, ranges: [1..<3], largestTransmission: numbers[2]!, now: 2, lossDelay: 10)
        #expect(board.next(limit: 4) == nil)
        let early = board.detectLosses(now: 9, lossDelay: 10)
        let due = board.detectLosses(now: 10, lossDelay: 10)
        #expect(!early && due)
        // Segment 3 went after the newest acknowledged one: still in flight.
        #expect(board.next(limit: 4) == 0 && board.inFlight == 1)
        let again = board.detectLosses(now: 100, lossDelay: 10)
        #expect(!again)
    }

    @Test func aSegmentAcknowledgedWhileQueuedIsNotSentAgain() {
        var board = SendScoreboard(total: 8, capacity: 16)
        let numbers = sendAll(&board, limit: 8)
        _ = board.acknowledge(cumulative: 0, ranges: [4..<8], largestTransmission: numbers[7]!, now: 0, lossDelay: 1_000_000)
        #expect(board.inFlight == 0)
        // The originals of 0...3 turn up late.
        _ = board.acknowledge(cumulative: 2, ranges: [3..<8], largestTransmission: numbers[7]!, now: 0, lossDelay: 1_000_000)
        #expect(board.next(limit: 8) == 2)
        _ = board.sent(2, at: 0)
        #expect(board.next(limit: 8) == nil)
    }

    @Test func aTimeoutDeclaresTheOldestInFlightLost() {
        var board = SendScoreboard(total: 8, capacity: 16)
        _ = sendAll(&board, limit: 8)
        #expect(board.declareOldestLost(2) == 2)
        #expect(board.inFlight == 6)
        #expect(board.next(limit: 8) == 0)
        _ = board.sent(0, at: 0)
        #expect(board.next(limit: 8) == 1)
        _ = board.sent(1, at: 0)
        #expect(board.declareOldestLost(1) == 1)
        #expect(board.next(limit: 8) == 2)
    }

    @Test func acknowledgementsOfUnsentSegmentsAreIgnored() {
        var board = SendScoreboard(total: 100, capacity: 16)
        _ = sendAll(&board, limit: 4)
        let newly = board.acknowledge(cumulative: 50, ranges: [60..<70], largestTransmission: 1_000, now: 0, lossDelay: 1)
        #expect(newly == 4 && board.cumulative == 4 && board.largestAcknowledgedTransmission == 0)
    }
}

@Suite struct RoundTripEstimatorTests {
    @Test func followsRFC6298() {
        var estimator = RoundTripEstimator()
        #expect(estimator.timeout == RoundTripEstimator.initialTimeout)
        estimator.add(sample: 40_000_000)
        #expect(estimator.smoothed == 40_000_000 && estimator.variation == 20_000_000)
        #expect(estimator.timeout == 40_000_000 + 4 * 20_000_000)
        estimator.add(sample: 80_000_000)
        // RTTVAR = 3/4·20 + 1/4·|40-80| = 25; SRTT = 7/8·40 + 1/8·80 = 45 (ms)
        #expect(estimator.variation == 25_000_000 && estimator.smoothed == 45_000_000)
        #expect(estimator.timeout == 145_000_000)
    }

    @Test func staysWithinItsBounds() {
        var fast = RoundTripEstimator()
        for _ in 0..<50 { fast.add(sample: 10_000) }
        #expect(fast.timeout == RoundTripEstimator.minimumTimeout)
        var slow = RoundTripEstimator()
        slow.add(sample: 60_000_000_000)
        #expect(slow.timeout == RoundTripEstimator.maximumTimeout)
    }
}
