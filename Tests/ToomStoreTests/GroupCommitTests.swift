import Foundation
import Testing
@testable import ToomStore

/// `--sync`: a reply waits for an fsync that started after its write, and writers that
/// arrive while an fsync runs share the next one.
@Suite struct GroupCommitTests {
    /// A file whose fsync blocks until the test lets it finish, and counts how often it ran.
    final class HeldFile: Durable, @unchecked Sendable {
        private let condition = NSCondition()
        private var started = 0
        private var released = 0
        private var failure: Error?

        func sync() throws {
            try condition.withLock {
                started += 1
                condition.broadcast()
                while released < started { condition.wait() }
                if let failure { throw failure }
            }
        }

        /// Waits until `count` fsyncs have started.
        func awaitStarted(_ count: Int) {
            condition.withLock { while started < count { condition.wait() } }
        }

        func release(failing error: Error? = nil) {
            condition.withLock {
                failure = error
                released += 1
                condition.broadcast()
            }
        }

        var syncs: Int { condition.withLock { started } }
    }

    /// Which tickets have been reported durable, and with what error.
    final class Outcomes: @unchecked Sendable {
        private let condition = NSCondition()
        private var done: [GroupCommit.Ticket: String] = [:]

        func record(_ ticket: GroupCommit.Ticket, _ error: Error?) {
            condition.withLock {
                done[ticket] = error.map { "\($0)" } ?? "durable"
                condition.broadcast()
            }
        }

        func await(_ tickets: [GroupCommit.Ticket]) -> [String] {
            condition.withLock {
                while !tickets.allSatisfy({ done[$0] != nil }) { condition.wait() }
                return tickets.map { done[$0]! }
            }
        }

        var reported: Set<GroupCommit.Ticket> { condition.withLock { Set(done.keys) } }

        /// What was reported for `ticket` so far, without waiting.
        func result(_ ticket: GroupCommit.Ticket) -> String? { condition.withLock { done[ticket] } }
    }

    struct DiskFull: Error, CustomStringConvertible { var description: String { "fsync: No space left on device" } }

    @Test func writersDuringAnFsyncShareTheNextOne() {
        let commit = GroupCommit()
        let file = HeldFile()
        let other = HeldFile()
        let outcomes = Outcomes()
        let first = commit.wrote(file)
        commit.whenDurable(first) { outcomes.record(first, $0) }
        file.awaitStarted(1)

        // Three writes, to two files, while the first fsync runs: none is durable yet.
        let later = [commit.wrote(file), commit.wrote(other), commit.wrote(file)]
        for ticket in later { commit.whenDurable(ticket) { outcomes.record(ticket, $0) } }
        #expect(outcomes.reported.isEmpty)

        // The next batch syncs each dirty file once, for all three writes, and reports none
        // of them before every fsync of the batch is done (`other`'s may go first: let it).
        other.release()
        file.release()
        #expect(outcomes.await([first]) == ["durable"])
        file.awaitStarted(2)
        #expect(outcomes.reported == [first])
        file.release()
        #expect(outcomes.await(later) == ["durable", "durable", "durable"])
        #expect(file.syncs == 2 && other.syncs == 1)
        #expect(commit.statistics.writes == 4 && commit.statistics.batches == 2)

        // A ticket already durable is reported at once.
        let again = Outcomes()
        commit.whenDurable(later[0]) { again.record(later[0], $0) }
        #expect(again.result(later[0]) == "durable")
        commit.stop()
    }

    @Test func aFailedFsyncIsReportedToItsWritersOnly() {
        let commit = GroupCommit()
        let file = HeldFile()
        let outcomes = Outcomes()
        let lost = commit.wrote(file)
        commit.whenDurable(lost) { outcomes.record(lost, $0) }
        file.awaitStarted(1)
        file.release(failing: DiskFull())
        #expect(outcomes.await([lost]) == ["fsync: No space left on device"])

        let next = commit.wrote(file)
        commit.whenDurable(next) { outcomes.record(next, $0) }
        file.awaitStarted(2)
        file.release()
        #expect(outcomes.await([next]) == ["durable"])
        // Asking again later about the failed write still gets the failure.
        let late = Outcomes()
        commit.whenDurable(lost) { late.record(lost, $0) }
        #expect(late.result(lost) == "fsync: No space left on device")
        commit.stop()
    }
}
