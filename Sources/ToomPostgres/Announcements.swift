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
    /// of its own (the message last: it is the one field that could hold a tab). Read from
    /// its UTF-8 bytes: every server reads every message this way.
    static func carried(_ payload: String) -> (Int64, CarriedBatch)? {
        var payload = payload
        return payload.withUTF8 { bytes -> (Int64, CarriedBatch)? in
            guard bytes.first == UInt8(ascii: "d") else { return nil }
            var reader = FieldReader(bytes: bytes, at: 1)
            guard let first = reader.integer(ending: .tab), let last = reader.integer(ending: .tab),
                  let epoch = reader.integer(ending: .newline), last >= first,
                  last - first < Int64(bytes.count) else { return nil }
            var events: [SharedEvent] = []
            events.reserveCapacity(Int(last - first + 1))
            for feed in first...last {
                guard reader.integer(ending: .tab) == feed, let room = reader.integer(ending: .tab),
                      let n = reader.integer(ending: .tab), let timestamp = reader.text(ending: .tab),
                      let user = reader.text(ending: .tab), let message = reader.text(ending: .newline) else { return nil }
                let record = MessageRecord(number: Int(n), timestamp: timestamp, user: user, message: message)
                events.append(room == 0 ? .broadcast(record) : .roomMessage(room: Int(room), record))
            }
            guard reader.atEnd else { return nil }
            return (first, CarriedBatch(events: events, last: last, epoch: epoch))
        }
    }
}

/// Fields of a notification's bytes, each ended by a tab or a newline (the last line by
/// the end of the bytes).
private struct FieldReader {
    enum End { case tab, newline }

    let bytes: UnsafeBufferPointer<UInt8>
    var at: Int

    init(bytes: UnsafeBufferPointer<UInt8>, at: Int) {
        self.bytes = bytes
        self.at = at
    }

    var atEnd: Bool { at > bytes.count }

    /// The bytes up to the end asked for; a newline ends a line's last field, or the end of
    /// the bytes does. A tab is part of a line's last field (a message may hold one).
    private mutating func field(ending end: End) -> UnsafeBufferPointer<UInt8>? {
        guard at <= bytes.count else { return nil }
        let start = at
        var index = at
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 0x0A {
                guard end == .newline else { return nil }
                break
            }
            if byte == 0x09 && end == .tab { break }
            index += 1
        }
        if index == bytes.count && end == .tab { return nil }
        at = index + 1
        return UnsafeBufferPointer(rebasing: bytes[start..<index])
    }

    /// Digits only: feed numbers, rooms, message numbers and epochs are never negative, and
    /// 18 digits cannot overflow.
    mutating func integer(ending end: End) -> Int64? {
        guard let digits = field(ending: end), !digits.isEmpty, digits.count <= 18 else { return nil }
        var value: Int64 = 0
        for byte in digits {
            guard byte >= 0x30 && byte <= 0x39 else { return nil }
            value = value * 10 + Int64(byte - 0x30)
        }
        return value
    }

    mutating func text(ending end: End) -> String? {
        field(ending: end).map { String(decoding: $0, as: UTF8.self) }
    }
}

/// The rows of one batch, as its notification carried them.
struct CarriedBatch: Sendable {
    let events: [SharedEvent]
    let last: Int64
    let epoch: Int64
}
