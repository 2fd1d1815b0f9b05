import ToomChat
import ToomCore

/// What a server knows of the feed's durability from the flushes' announcements, and the
/// batches whose rows notifications carried (docs/DESIGN.md, "The lock is not held through
/// the disk"). Pure: the rules of which rows a reader may deliver are tested without a
/// database.
struct Announcements: Sendable {
    /// Every feed number through this one is on disk, in `epoch`.
    private(set) var durable: Int64 = 0
    /// The start of the database server that the latest announcement came from.
    private(set) var epoch: Int64 = 0
    /// Carried batches not yet delivered, by their first feed number.
    private var carried: [Int64: CarriedBatch] = [:]
    /// More than this waiting means the reader is not keeping up: it reads the feed instead.
    static let carriedLimit = 1000

    /// A flush in `epoch` found everything through `durable` on disk. A later epoch (the
    /// database restarted) drops what was carried before it: it may have been lost.
    mutating func flushed(through durable: Int64, epoch: Int64) {
        if epoch > self.epoch {
            self.epoch = epoch
            carried = carried.filter { $0.value.epoch == epoch }
        }
        if epoch == self.epoch { self.durable = max(self.durable, durable) }
    }

    /// A commit of feed number `feed` in `epoch` is on disk: a flush of the same epoch covered it.
    func vouches(for feed: Int64, of epoch: Int64) -> Bool { epoch == self.epoch && feed <= durable }

    /// A batch as its flush announced it (schema version 3): the notification of a
    /// synchronous commit, sent once that commit was on disk, so everything through the
    /// batch's last feed number is durable: any earlier number was committed before the
    /// batch took the feed row's lock, and so before the flush's commit in the WAL.
    mutating func flushed(_ batch: CarriedBatch, from first: Int64) {
        flushed(through: batch.last, epoch: batch.epoch)
        carry(batch, from: first)
    }

    mutating func carry(_ batch: CarriedBatch, from first: Int64) {
        guard batch.epoch >= epoch else { return }
        if carried.count >= Self.carriedLimit { carried = [:] }
        carried[first] = batch
    }

    /// The carried batch that continues a reader at `position`, once durable in its epoch;
    /// forgets those the reader has passed.
    mutating func take(after position: Int64) -> CarriedBatch? {
        if carried.isEmpty { return nil }
        carried = carried.filter { $0.value.last > position }
        guard let batch = carried[position + 1], vouches(for: batch.last, of: batch.epoch) else { return nil }
        carried[position + 1] = nil
        return batch
    }

    /// `f<durable>\t<epoch>`: a flush's announcement.
    static func flushed(_ payload: String) -> (Int64, Int64)? {
        guard payload.hasPrefix("f") else { return nil }
        let fields = payload.dropFirst().split(separator: "\t")
        guard fields.count == 2, let durable = Int64(fields[0]), let epoch = Int64(fields[1]) else { return nil }
        return (durable, epoch)
    }

    /// `d<first>\t<last>\t<epoch>`, then per row `feed\troom\tn\tts\tuser\tmessage` on a line
    /// of its own (the message last: it is the one field that could hold a tab).
    static func carried(_ payload: String) -> (Int64, CarriedBatch)? {
        guard payload.hasPrefix("d") else { return nil }
        let lines = payload.dropFirst().split(separator: "\n", omittingEmptySubsequences: false)
        let head = lines[0].split(separator: "\t")
        guard head.count == 3, let first = Int64(head[0]), let last = Int64(head[1]), let epoch = Int64(head[2]), last >= first,
              lines.count - 1 == Int(last - first + 1) else { return nil }
        var events: [SharedEvent] = []
        events.reserveCapacity(lines.count - 1)
        var expected = first
        for line in lines.dropFirst() {
            let fields = line.split(separator: "\t", maxSplits: 5, omittingEmptySubsequences: false)
            guard fields.count == 6, Int64(fields[0]) == expected, let room = Int(fields[1]), let n = Int(fields[2]) else { return nil }
            expected += 1
            let record = MessageRecord(number: n, timestamp: String(fields[3]), user: String(fields[4]), message: String(fields[5]))
            events.append(room == 0 ? .broadcast(record) : .roomMessage(room: room, record))
        }
        return (first, CarriedBatch(events: events, last: last, epoch: epoch))
    }
}

/// The rows of one batch, as its notification carried them.
struct CarriedBatch: Sendable {
    let events: [SharedEvent]
    let last: Int64
    let epoch: Int64
}
