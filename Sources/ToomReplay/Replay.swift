import Foundation
import HeapModule
import ToomCore
import ToomStore

/// `toom replay`: reads `messagelog.txt` and every `SR_<id>_messageLog.txt` in a data
/// directory and writes their messages merged in time order, filtered and formatted.
/// Streams: memory does not grow with the logs. A line that does not parse is reported
/// on standard error with its file and line number, and skipped.
public final class Replay {
    public struct Options: Sendable {
        public var directory: String
        public var filter: ReplayFilter
        public var format: ReplayFormat
        /// Keep reading as the server appends, and pick up new room logs.
        public var follow: Bool
        /// Replay with the original gaps between messages divided by this.
        public var pace: Double?
        /// How often a followed directory is looked at again.
        public var pollInterval: Duration

        public init(directory: String, filter: ReplayFilter = ReplayFilter(), format: ReplayFormat = .text,
                    follow: Bool = false, pace: Double? = nil, pollInterval: Duration = .milliseconds(200)) {
            self.directory = directory
            self.filter = filter
            self.format = format
            self.follow = follow
            self.pace = pace
            self.pollInterval = pollInterval
        }
    }

    public struct DirectoryError: Error, CustomStringConvertible {
        public let description: String
    }

    private let options: Options
    private let output: OutputBuffer
    private let report: (String) -> Void
    private var sources: [LogKind: Source] = [:]
    /// Sources with a record waiting, ordered by time, then log, then line.
    private var heap = Heap<Source>()
    private var lastPaced: Int64?
    private var caughtUp = false

    /// `write` receives formatted output and returns false when it can no longer be written
    /// (a closed pipe); `report` receives one line per problem.
    public init(options: Options, write: @escaping (String) -> Bool, report: @escaping (String) -> Void) {
        self.options = options
        self.output = OutputBuffer(write: write)
        self.report = report
    }

    /// Runs to the end of the logs, or forever with `follow` (until output is closed).
    public func run() async throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: options.directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DirectoryError(description: "Cannot read \(options.directory): no such directory")
        }
        guard output.append(options.format.header) else { return }
        discover()
        guard try await drain(finalLines: !options.follow) else { return }
        guard output.flush() else { return }
        caughtUp = true
        guard options.follow else { return }
        while true {
            try await Task.sleep(for: options.pollInterval)
            discover()
            for source in sources.values where source.reader.wasReplaced {
                source.reopen()
            }
            guard try await drain(finalLines: false), output.flush() else { return }
        }
    }

    /// Opens logs that appeared since the last look.
    private func discover() {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: options.directory)) ?? []
        for name in names {
            guard let kind = LogKind(fileName: name), sources[kind] == nil, options.filter.includes(kind) else { continue }
            guard let source = Source(kind: kind, path: options.directory + "/" + name) else {
                report("\(options.directory)/\(name): cannot be opened: \(String(cString: strerror(errno)))")
                continue
            }
            sources[kind] = source
            refill(source, finalLine: !options.follow)
        }
    }

    /// Writes every record available now, in merged order. False when output is closed.
    private func drain(finalLines: Bool) async throws -> Bool {
        for source in sources.values where source.head == nil { refill(source, finalLine: finalLines) }
        while let source = heap.popMin() {
            let record = source.head!
            source.head = nil
            if let pace = options.pace, !caughtUp {
                if let last = lastPaced, record.time > last {
                    guard output.flush() else { return false }
                    try await Task.sleep(for: .seconds(Double(record.time - last) / pace))
                }
                lastPaced = record.time
            }
            var text = ""
            options.format.render(record, into: &text)
            guard output.append(text) else { return false }
            refill(source, finalLine: finalLines)
        }
        return true
    }

    /// Reads the source's next record that passes the filter, and queues it.
    private func refill(_ source: Source, finalLine: Bool) {
        while let line = source.reader.next(finalLine: finalLine) {
            switch line {
            case .malformed(let reason, let number):
                report("\(source.reader.path):\(number): \(reason); skipped")
            case .text(let text, let number):
                switch MessageRecord.parse(text) {
                case .failure(let error):
                    report("\(source.reader.path):\(number): \(error); skipped")
                case .success(let record):
                    guard let time = source.time(of: record.timestamp) else {
                        report("\(source.reader.path):\(number): \(MessageRecord.ParseError.timestamp); skipped")
                        continue
                    }
                    let replayed = ReplayRecord(kind: source.kind, record: record, time: time)
                    guard options.filter.includes(replayed) else { continue }
                    source.head = replayed
                    source.headLine = number
                    heap.insert(source)
                    return
                }
            }
        }
    }
}

/// One log being read, with its next record.
final class Source: Comparable {
    let kind: LogKind
    private(set) var reader: LogFileReader
    var head: ReplayRecord?
    var headLine = 0
    /// The hour last converted ("1 Jun 2022 21") and its epoch seconds: the time zone is
    /// consulted once per hour of log, not once per line.
    private var hourText = Substring()
    private var hourStart: Int64 = 0

    init?(kind: LogKind, path: String) {
        guard let reader = LogFileReader(path: path) else { return nil }
        self.kind = kind
        self.reader = reader
    }

    func reopen() {
        if let fresh = LogFileReader(path: reader.path) { reader = fresh }
    }

    /// Epoch seconds of a timestamp that `MessageRecord.parse` accepted.
    func time(of timestamp: String) -> Int64? {
        let utf8 = timestamp.utf8
        guard let colon = utf8.firstIndex(of: 0x3A), utf8.count >= 5 else { return nil }
        let hour = timestamp[..<colon]
        if hour != hourText {
            guard let start = Timestamp.parse(hour + ":00:00") else { return nil }
            hourText = hour
            hourStart = start
        }
        let tail = Array(utf8.suffix(5))  // "MM:SS"
        let digit = { (i: Int) in Int64(tail[i]) - 0x30 }
        return hourStart + (digit(0) * 10 + digit(1)) * 60 + digit(3) * 10 + digit(4)
    }

    /// One log is one source: the heap never holds two equal ones.
    static func == (a: Source, b: Source) -> Bool { a === b }

    /// Merge order: time, then broadcasts before rooms and rooms by id, then file order.
    static func < (a: Source, b: Source) -> Bool {
        let x = a.head!, y = b.head!
        if x.time != y.time { return x.time < y.time }
        if a.kind != b.kind { return a.kind < b.kind }
        return a.headLine < b.headLine
    }
}

/// Collects output and hands it on in large pieces.
final class OutputBuffer {
    private var pending = ""
    private let write: (String) -> Bool
    private var closed = false

    init(write: @escaping (String) -> Bool) { self.write = write }

    func append(_ text: String) -> Bool {
        pending += text
        return pending.utf8.count < 64 * 1024 || flush()
    }

    func flush() -> Bool {
        guard !closed else { return false }
        if !pending.isEmpty {
            closed = !write(pending)
            pending = ""
        }
        return !closed
    }
}
