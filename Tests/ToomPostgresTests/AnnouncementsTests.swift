import Testing
import ToomChat
import ToomCore
@testable import ToomPostgres

/// The rules of which commit is on disk and which carried rows a reader may deliver,
/// without a database (the store itself is tested against one in ClusterTests).
@Suite struct AnnouncementsTests {
    static let epoch: Int64 = 1_764_000_000_000_000

    static func batch(_ first: Int64, _ last: Int64, epoch: Int64 = epoch) -> CarriedBatch {
        let events = (first...last).map { SharedEvent.broadcast(MessageRecord(number: Int($0), timestamp: "t", user: "hans", message: "m\($0)")) }
        return CarriedBatch(events: events, last: last, epoch: epoch)
    }

    @Test func aCommitIsDurableOnlyOnceAFlushOfItsEpochCoversIt() {
        var announced = Announcements()
        #expect(!announced.vouches(for: 1, of: Self.epoch), "nothing announced yet")
        announced.flushed(through: 10, epoch: Self.epoch)
        #expect(announced.vouches(for: 10, of: Self.epoch))
        #expect(!announced.vouches(for: 11, of: Self.epoch))
        // An older announcement arriving late never moves the durable number back.
        announced.flushed(through: 5, epoch: Self.epoch)
        #expect(announced.durable == 10)
    }

    @Test func aFlushAfterARestartVouchesOnlyForItsOwnEpoch() {
        var announced = Announcements()
        announced.flushed(through: 10, epoch: Self.epoch)
        // Feed 11 was committed before the restart; after it, feed 11 may be someone else's.
        announced.flushed(through: 12, epoch: Self.epoch + 1)
        #expect(!announced.vouches(for: 11, of: Self.epoch))
        #expect(!announced.vouches(for: 10, of: Self.epoch), "nothing of before the restart")
        #expect(announced.vouches(for: 11, of: Self.epoch + 1))
        // A flush of the old epoch cannot arrive later (its connection died), but would not count.
        announced.flushed(through: 50, epoch: Self.epoch)
        #expect(announced.durable == 12)
    }

    @Test func carriedRowsAreDeliveredInFeedOrderAndOnlyOnceDurable() {
        var announced = Announcements()
        announced.carry(Self.batch(6, 9), from: 6)
        announced.carry(Self.batch(1, 5), from: 1)
        #expect(announced.take(after: 0) == nil, "not durable yet")
        announced.flushed(through: 5, epoch: Self.epoch)
        #expect(announced.take(after: 0)?.last == 5)
        #expect(announced.take(after: 5) == nil, "6 to 9 are not durable yet")
        announced.flushed(through: 9, epoch: Self.epoch)
        #expect(announced.take(after: 5)?.last == 9)
        #expect(announced.take(after: 9) == nil)
    }

    /// Schema version 3: a batch's rows come in its flush's notification, after the flush's
    /// commit was on disk; that vouches for the batch and for every feed number before it.
    @Test func aBatchAnnouncedByItsFlushIsDurableWithEverythingBeforeIt() {
        var announced = Announcements()
        announced.flushed(Self.batch(6, 9), from: 6)
        #expect(announced.vouches(for: 9, of: Self.epoch) && announced.vouches(for: 3, of: Self.epoch))
        #expect(!announced.vouches(for: 10, of: Self.epoch))
        // 1 to 5 (another server's, whose own announcement is still to come) are read from the
        // database first: the carried batch waits for the reader to get there.
        #expect(announced.take(after: 0) == nil)
        #expect(announced.take(after: 5)?.last == 9)
        // A batch of a later epoch (the database restarted) vouches for nothing before it.
        announced.flushed(Self.batch(10, 12, epoch: Self.epoch + 1), from: 10)
        #expect(!announced.vouches(for: 9, of: Self.epoch))
        #expect(announced.take(after: 9)?.last == 12)
    }

    @Test func aGapIsNotSkippedAndWhatTheReaderPassedIsForgotten() {
        var announced = Announcements()
        announced.flushed(through: 9, epoch: Self.epoch)
        announced.carry(Self.batch(6, 9), from: 6)
        // 1 to 5 never came by notification: the reader must query, not take 6 to 9.
        #expect(announced.take(after: 0) == nil)
        // It read through 9 from the database: the carried copy is dropped, not delivered twice.
        #expect(announced.take(after: 9) == nil)
        #expect(announced.take(after: 5) == nil, "forgotten once passed")
    }

    @Test func aRestartDropsRowsCarriedBeforeIt() {
        var announced = Announcements()
        announced.flushed(through: 5, epoch: Self.epoch)
        announced.carry(Self.batch(6, 9), from: 6)
        announced.flushed(through: 9, epoch: Self.epoch + 1)
        #expect(announced.take(after: 5) == nil, "6 to 9 of before the restart may be other messages now")
        // And a late carried batch of the old epoch is not kept.
        announced.carry(Self.batch(10, 12), from: 10)
        announced.flushed(through: 12, epoch: Self.epoch + 1)
        #expect(announced.take(after: 9) == nil)
    }

    @Test func notificationsAreParsedStrictly() throws {
        #expect(Announcements.flushed("f42\t\(Self.epoch)")! == (42, Self.epoch))
        for bad in ["f", "f42", "fx\t1", "f1\t2\t3", "o", "d1\t1\t1"] { #expect(Announcements.flushed(bad) == nil, "\(bad)") }

        let payload = "d7\t8\t\(Self.epoch)\n7\t0\t3\t26 Nov 2026 09:00:00\thans\thello there\n8\t2\t1\t26 Nov 2026 09:00:01\tyoda\ta\ttab"
        let (first, batch) = try #require(Announcements.carried(payload))
        #expect(first == 7 && batch.last == 8 && batch.epoch == Self.epoch)
        #expect(batch.events == [
            .broadcast(MessageRecord(number: 3, timestamp: "26 Nov 2026 09:00:00", user: "hans", message: "hello there")),
            .roomMessage(room: 2, MessageRecord(number: 1, timestamp: "26 Nov 2026 09:00:01", user: "yoda", message: "a\ttab")),
        ])
        // An empty message keeps its field.
        #expect(Announcements.carried("d1\t1\t1\n1\t0\t1\tts\thans\t")?.1.events
                == [.broadcast(MessageRecord(number: 1, timestamp: "ts", user: "hans", message: ""))])
        for bad in [
            "d7\t8\t1\n7\t0\t3\tts\thans\tm",                     // a row missing
            "d7\t7\t1\n8\t0\t3\tts\thans\tm",                     // the wrong feed number
            "d7\t7\t1\n7\t0\tx\tts\thans\tm",                     // not a number
            "d7\t7\t1\n7\t0\t3\tts",                              // fields missing
            "d8\t7\t1\n",                                         // last before first
            "d7\t7\n7\t0\t3\tts\thans\tm",                        // no epoch
            "uk" + "hans\n",                                      // a forwarded kick
            "d7\t7\t1\n7\t0\t3\tts\thans\tm\n",                   // a line after the last row
            "d7\t7\t1\t9\n7\t0\t3\tts\thans\tm",                  // a field too many in the head
            "d7\t7\t1\n7\t0\t3\tts\thans\tm\n8\t0\t4\tts\thans\tm", // a row past the last
            "d7\t7\t99999999999999999999\n7\t0\t3\tts\thans\tm",   // a number too large
            "d7\t7\t1\n7\t-1\t3\tts\thans\tm",                    // a negative room
        ] {
            #expect(Announcements.carried(bad) == nil, "\(bad)")
        }
    }
}

extension CarriedBatch: Equatable {
    public static func == (lhs: CarriedBatch, rhs: CarriedBatch) -> Bool {
        lhs.events == rhs.events && lhs.last == rhs.last && lhs.epoch == rhs.epoch
    }
}
