import Foundation
import Synchronization
import ToomCore

/// `messagelog.txt` or one room's `SR_<id>_messageLog.txt`. The file is the record and
/// also the index: lines are appended in time order, so RDM finds the first line after a
/// time by binary search over the file's bytes. No history is held in memory, and start-up
/// reads only the tail of the file (to continue the numbering and repair a torn last line).
///
/// The mutable parts (`append`, `lastNumber`) are used under the server's lock; the
/// reading parts work on their own descriptors and may run outside it: logs only grow.
public final class MessageLog: @unchecked Sendable {
    public let name: String
    let path: String
    private let file: AppendFile
    /// With `--sync`: where each append is marked for the next shared fsync.
    private let commit: GroupCommit?
    private let reader: Int32
    /// The number of the last message.
    public private(set) var lastNumber: Int
    private var lastTime: Int64
    /// False once a line is older than the one before it (the clock went back, as at the
    /// end of daylight saving time); then searches scan the file instead of bisecting.
    private let ordered = Atomic(true)

    /// Bytes of whole lines in the file.
    public var size: Int64 { file.size }
    var inTimeOrder: Bool { ordered.load(ordering: .relaxed) }

    /// Opens (creating if needed) the log, repairing a torn last line.
    public init(path: String, commit: GroupCommit?, warn: (String) -> Void) throws {
        name = (path as NSString).lastPathComponent
        self.path = path
        self.commit = commit
        file = try AppendFile(path: path)
        reader = open(path, O_RDONLY | O_CLOEXEC)
        guard reader >= 0 else { throw StorageError(path: path, operation: "open", code: errno) }
        lastNumber = 0
        lastTime = .min
        try repairTail(path: path, warn: warn)
        if let last = try lastRecord() {
            lastNumber = last.number
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

    /// Appends a message numbered by the rules; the line is in the file when this returns
    /// (and, with `--sync`, marked for the next fsync, whose ticket is returned).
    public func append(_ record: MessageRecord, time: Int64) throws -> GroupCommit.Ticket? {
        try file.append(record.line + "\n")
        let ticket = commit?.wrote(file)
        lastNumber = record.number
        if time < lastTime { ordered.store(false, ordering: .relaxed) }
        lastTime = time
        return ticket
    }

    // MARK: Batches

    /// Lines staged for the next `writeStaged`, and their positions in the store's batch.
    private var staged = ""
    private var stagedPositions: [Int] = []
    private var stagedLast: (number: Int, time: Int64, ordered: Bool)?

    var hasStaged: Bool { !stagedPositions.isEmpty }

    /// Adds a message's line to the batch; it reaches the file with `writeStaged`.
    func stage(_ record: MessageRecord, time: Int64, position: Int) {
        record.appendLine(to: &staged)
        staged += "\n"
        stagedPositions.append(position)
        let previous = stagedLast?.time ?? lastTime
        stagedLast = (record.number, time, (stagedLast?.ordered ?? true) && time >= previous)
    }

    struct StagedFailure: Error {
        let positions: [Int]
        let error: Error
    }

    /// Writes the staged lines with one `write(2)`; if it fails, the file is cut back and
    /// none of them counts.
    func writeStaged() -> Result<GroupCommit.Ticket?, StagedFailure> {
        defer {
            staged = ""
            stagedPositions.removeAll(keepingCapacity: true)
            stagedLast = nil
        }
        do {
            try file.append(staged)
        } catch {
            return .failure(StagedFailure(positions: stagedPositions, error: error))
        }
        if let last = stagedLast {
            lastNumber = last.number
            if !last.ordered { ordered.store(false, ordering: .relaxed) }
            lastTime = last.time
        }
        return .success(commit?.wrote(file))
    }

    // MARK: Reading (safe outside the server's lock)

    /// The messages after `time` numbered up to `through`, in file order, read lazily.
    public func messages(after time: Int64, through: Int) -> MessageCursor {
        MessageCursor(log: self, after: time, through: through)
    }

    /// Where reading for messages after `time` starts: bisected when the log is in time order.
    func start(after time: Int64) throws -> (offset: Int64, filter: Bool) {
        if inTimeOrder { return (try firstLine(after: time, end: size), false) }
        return (0, true)
    }

    /// Reads every line once: reports malformed ones and notices lines out of time order.
    /// Run in the background after start-up.
    public func verify(end: Int64, warn: (String) -> Void) throws {
        guard let reader = LogFileReader(path: path) else { throw StorageError(path: path, operation: "open", code: errno) }
        var read: Int64 = 0
        var previous = Int64.min
        while read < end, let line = reader.next(finalLine: false) {
            switch line {
            case .malformed(let reason, let number):
                warn("\(name):\(number): skipped: \(reason)")
            case .text(let text, let number):
                read += Int64(text.utf8.count) + 1
                switch MessageRecord.parse(text) {
                case .failure(let error):
                    warn("\(name):\(number): skipped: \(error)")
                case .success(let record):
                    let time = Timestamp.parse(record.timestamp) ?? .min
                    if time < previous { ordered.store(false, ordering: .relaxed) }
                    previous = time
                }
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

    private func read(from start: Int64, to end: Int64) throws -> [UInt8] {
        try FileText.read(reader, from: start, count: Int(end - start), path: name)
    }
}

/// Reads one log's messages for RDM a few at a time, so one huge answer is never held in
/// memory whole. Malformed lines are skipped (the background check reports them).
public final class MessageCursor {
    private let log: MessageLog
    private let after: Int64
    private let through: Int
    private var reader: LogFileReader?
    private var filter = false
    private var done = false

    init(log: MessageLog, after: Int64, through: Int) {
        self.log = log
        self.after = after
        self.through = through
        done = through <= 0
    }

    /// The next message, nil at the end.
    public func next() throws -> MessageRecord? {
        guard !done else { return nil }
        if reader == nil {
            let (offset, filter) = try log.start(after: after)
            guard let reader = LogFileReader(path: log.path, offset: offset) else {
                throw StorageError(path: log.path, operation: "open", code: errno)
            }
            self.reader = reader
            self.filter = filter
        }
        while let line = reader!.next(finalLine: false) {
            guard case .text(let text, _) = line, case .success(let record) = MessageRecord.parse(text) else { continue }
            if record.number > through { break }
            if filter, (Timestamp.parse(record.timestamp) ?? .min) <= after { continue }
            if record.number == through { done = true }
            return record
        }
        done = true
        reader = nil
        return nil
    }
}
