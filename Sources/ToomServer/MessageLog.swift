import Foundation
import NIOConcurrencyHelpers
import ToomCore

/// `messagelog.txt` or one room's `SR_<id>_messageLog.txt`. The file is the record and
/// also the index: lines are appended in time order, so RDM finds the first line after a
/// time by binary search over the file's bytes. No history is held in memory, and start-up
/// reads only the tail of the file (to continue the numbering and repair a torn last line).
///
/// The mutable parts (`append`, `nextNumber`) are used under the server's lock; the
/// reading parts work on an immutable descriptor with explicit offsets and may run
/// outside it, on a range captured under the lock.
final class MessageLog: @unchecked Sendable {
    let name: String
    private let file: AppendFile
    /// With `--sync`: where each append is marked for the next shared fsync.
    private let commit: GroupCommit?
    private let reader: Int32
    private(set) var nextNumber: Int
    private var lastTime: Int64
    /// False once a line is older than the one before it (the clock went back, as at the
    /// end of daylight saving time); then searches scan the file instead of bisecting.
    private let ordered = NIOLockedValueBox(true)

    /// Bytes of whole lines in the file.
    var size: Int64 { file.size }
    var inTimeOrder: Bool { ordered.withLockedValue { $0 } }

    /// Opens (creating if needed) the log, repairing a torn last line.
    init(path: String, commit: GroupCommit?, warn: (String) -> Void) throws {
        name = (path as NSString).lastPathComponent
        self.commit = commit
        file = try AppendFile(path: path)
        reader = open(path, O_RDONLY | O_CLOEXEC)
        guard reader >= 0 else { throw StorageError(path: path, operation: "open", code: errno) }
        nextNumber = 1
        lastTime = .min
        try repairTail(path: path, warn: warn)
        if let last = try lastRecord() {
            nextNumber = last.number + 1
            lastTime = Timestamp.parse(last.timestamp) ?? .min
        }
    }

    deinit { close(reader) }

    /// A final line without its newline was being written when the server stopped:
    /// complete it if it is a whole record, otherwise cut it off.
    private func repairTail(path: String, warn: (String) -> Void) throws {
        let size = file.size
        var cut: Int64 = 0
        var end = size
        while end > 0 {
            let start = max(0, end - 64 * 1024)
            let chunk = try read(from: start, to: end)
            if end == size, chunk.last == 0x0A { return }
            if let newline = chunk.lastIndex(of: 0x0A) {
                cut = start + Int64(newline) + 1
                break
            }
            end = start
        }
        guard cut < size else { return }
        let partial = try read(from: cut, to: min(size, cut + Int64(Wire.maxFrameBytes)))
        if size - cut <= Int64(Wire.maxFrameBytes), case .success = MessageRecord.parse(String(decoding: partial, as: UTF8.self)) {
            try file.append("\n")
            commit?.wrote(file)
            warn("\(name): completed a last line that had no newline")
            return
        }
        try file.truncate(to: cut)
        warn("\(name): removed a torn last line (\(size - cut) bytes)")
    }

    /// The last line that parses, walking back over malformed ones.
    private func lastRecord() throws -> MessageRecord? {
        var end = file.size
        while end > 0 {
            let start = max(0, end - 64 * 1024)
            let chunk = try read(from: start, to: end)
            var lines = chunk.split(separator: 0x0A, omittingEmptySubsequences: false)
            lines.removeLast()  // after the final newline
            // Unless the chunk starts the file, its first piece may be part of a line.
            let firstWhole = start == 0 ? 0 : 1
            for line in lines[firstWhole...].reversed() {
                if case .success(let record) = MessageRecord.parse(String(decoding: line, as: UTF8.self)) {
                    return record
                }
            }
            guard start > 0, let firstBreak = chunk.firstIndex(of: 0x0A) else { return nil }
            end = start + Int64(firstBreak) + 1
        }
        return nil
    }

    /// Appends a message; the line is in the file when this returns (and, with `--sync`,
    /// marked for the next fsync, which the reply waits for).
    func append(user: String, message: String, time: Int64, timestamp: String) throws -> MessageRecord {
        let record = MessageRecord(number: nextNumber, timestamp: timestamp, user: user, message: message)
        try file.append(record.line + "\n")
        commit?.wrote(file)
        nextNumber += 1
        if time < lastTime { ordered.withLockedValue { $0 = false } }
        lastTime = time
        return record
    }

    // MARK: Reading (safe outside the server's lock)

    /// Messages strictly after `time` among the first `end` bytes, in file order.
    func messages(after time: Int64, end: Int64) throws -> [MessageRecord] {
        if inTimeOrder {
            let start = try firstLine(after: time, end: end)
            return try records(from: start, to: end, after: nil)
        }
        return try records(from: 0, to: end, after: time)
    }

    /// Reads every line once: reports malformed ones and notices lines out of time order.
    /// Run in the background after start-up.
    func verify(end: Int64, warn: (String) -> Void) throws {
        var lineNumber = 0
        var previous = Int64.min
        try forEachLine(from: 0, to: end) { line in
            lineNumber += 1
            switch MessageRecord.parse(String(decoding: line, as: UTF8.self)) {
            case .failure(let error):
                warn("\(name):\(lineNumber): skipped: \(error)")
            case .success(let record):
                let time = Timestamp.parse(record.timestamp) ?? .min
                if time < previous { ordered.withLockedValue { $0 = false } }
                previous = time
            }
        }
    }

    /// The offset of the first line whose time is after `time`, by bisecting the file.
    private func firstLine(after time: Int64, end: Int64) throws -> Int64 {
        var low: Int64 = 0  // always a line start; every line before it is not after `time`
        var high = end      // every line from here on is after `time`
        while high - low > 4096 {
            let mid = low + (high - low) / 2
            // No line starts in the upper half (only possible with a damaged file): walk instead.
            guard let (start, next, lineTime) = try line(atOrAfter: mid, end: high) else { break }
            if let lineTime, lineTime > time { high = start } else { low = next }
        }
        // A short range left: walk it line by line.
        let bytes = try read(from: low, to: high)
        var offset = 0
        while offset < bytes.count {
            let newline = bytes[offset...].firstIndex(of: 0x0A) ?? bytes.count
            if let t = Self.time(of: bytes[offset..<newline]), t > time { return low + Int64(offset) }
            offset = newline + 1
        }
        return high
    }

    /// The first whole line starting at or after `offset` and before `end`: its start, the start
    /// of the line after it, and its time (nil when the line does not parse).
    private func line(atOrAfter offset: Int64, end: Int64) throws -> (Int64, Int64, Int64?)? {
        // One small read usually holds the end of the line at `offset` and the whole next
        // line; a longer window is read only when it does not.
        for window in [Int64(1024), Int64(2 * Wire.maxFrameBytes)] {
            let from = max(0, offset - 1)
            let bytes = try read(from: from, to: min(end, from + window))
            var lineStart = 0
            if offset > 0 {
                guard let newline = bytes.firstIndex(of: 0x0A) else { continue }
                lineStart = newline + 1
            }
            let start = from + Int64(lineStart)
            guard start < end else { return nil }
            guard let newline = bytes[lineStart...].firstIndex(of: 0x0A) else { continue }
            return (start, from + Int64(newline) + 1, Self.time(of: bytes[lineStart..<newline]))
        }
        return nil
    }

    /// The time of a log line, from its second field.
    private static func time(of line: ArraySlice<UInt8>) -> Int64? {
        let fields = LogLine.split(String(decoding: line, as: UTF8.self), maxSplits: 2)
        guard fields.count == 3 else { return nil }
        return Timestamp.parse(fields[1])
    }

    /// Parses the lines in a byte range, skipping malformed ones, keeping those after `time` if given.
    private func records(from start: Int64, to end: Int64, after time: Int64?) throws -> [MessageRecord] {
        var result: [MessageRecord] = []
        try forEachLine(from: start, to: end) { line in
            if case .success(let record) = MessageRecord.parse(String(decoding: line, as: UTF8.self)),
               time == nil || (Timestamp.parse(record.timestamp) ?? .min) > time! {
                result.append(record)
            }
        }
        return result
    }

    /// Calls `body` with each whole line (without its newline) in a byte range, reading in large chunks.
    private func forEachLine(from start: Int64, to end: Int64, _ body: (ArraySlice<UInt8>) -> Void) throws {
        var offset = start
        var carry: [UInt8] = []
        while offset < end {
            let chunk = try read(from: offset, to: min(end, offset + 1 << 20))
            if chunk.isEmpty { break }
            offset += Int64(chunk.count)
            carry.append(contentsOf: chunk)
            var lineStart = 0
            while let newline = carry[lineStart...].firstIndex(of: 0x0A) {
                body(carry[lineStart..<newline])
                lineStart = newline + 1
            }
            carry.removeFirst(lineStart)
        }
    }

    private func read(from start: Int64, to end: Int64) throws -> [UInt8] {
        try FileText.read(reader, from: start, count: Int(end - start), path: name)
    }
}
