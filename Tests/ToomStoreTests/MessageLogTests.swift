import Foundation
import Testing
import ToomTestSupport
import ToomCore
@testable import ToomStore

/// The log file is its own index: these check the bisection against a plain filter.
@Suite struct MessageLogTests {
    private func withLog(_ contents: String, _ body: (MessageLog, String, inout [String]) throws -> Void) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("toom-log-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("messagelog.txt").path
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
        var warnings: [String] = []
        let log = try MessageLog(path: path, commit: nil, warn: { warnings.append($0) })
        try body(log, path, &warnings)
    }

    private static let base = Timestamp.parse("1 Mar 2022 00:00:00")!

    private static func all(_ cursor: MessageCursor) throws -> [MessageRecord] {
        var records: [MessageRecord] = []
        while let record = try cursor.next() { records.append(record) }
        return records
    }

    /// A log of `count` lines with non-decreasing times, some sharing a second, some long.
    private static func sortedLog(count: Int, seed: UInt64) -> (text: String, times: [Int64]) {
        var rng = SeededRandom(seed: seed)
        var time = base
        var text = ""
        var times: [Int64] = []
        for n in 1...count {
            time += Int64(rng.next() % 3)
            let length = rng.next() % 10 == 0 ? 3000 : Int(rng.next() % 40)
            text += MessageRecord(number: n, timestamp: Timestamp.format(time), user: "hans",
                                  message: "m\(n) " + String(repeating: "x", count: length)).line + "\n"
            times.append(time)
        }
        return (text, times)
    }

    @Test(arguments: [1, 2, 7, 100, 2000])
    func bisectionAgreesWithAFilter(count: Int) throws {
        let (text, times) = Self.sortedLog(count: count, seed: UInt64(count))
        try withLog(text) { log, _, _ in
            #expect(log.lastNumber == count)
            #expect(log.inTimeOrder)
            for probe in [Self.base - 1, Self.base, times[times.count / 2], times[times.count / 3] + 1, times.last!, times.last! + 1] {
                let expected = times.indices.filter { times[$0] > probe }.map { $0 + 1 }
                let found = try Self.all(log.messages(after: probe, through: count)).map(\.number)
                #expect(found == expected, "after \(probe)")
            }
        }
    }

    @Test func linesOutOfTimeOrderFallBackToAScan() throws {
        let lines = ["1; 1 Mar 2022 10:00:00; hans; a", "2; 1 Mar 2022 12:00:00; yoda; b",
                     "3; 1 Mar 2022 11:00:00; hans; c", "4; 1 Mar 2022 13:00:00; leia; d"]
        try withLog(lines.joined(separator: "\n") + "\n") { log, _, warnings in
            try log.verify(end: log.size) { warnings.append($0) }
            #expect(!log.inTimeOrder)
            let after = Timestamp.parse("1 Mar 2022 10:30:00")!
            let found = try Self.all(log.messages(after: after, through: 4)).map(\.number)
            #expect(found == [2, 3, 4])
            #expect(warnings.isEmpty)
        }
    }

    @Test func malformedLinesAreSkippedAndReported() throws {
        let text = "1; 1 Mar 2022 10:00:00; hans; a\ngarbage\n2; 1 Mar 2022 10:00:01; hans; b\n3; not a time; hans; c\n"
        try withLog(text) { log, _, warnings in
            #expect(log.lastNumber == 2)  // the last line that parses
            try log.verify(end: log.size) { warnings.append($0) }
            #expect(warnings.contains { $0.hasPrefix("messagelog.txt:2: skipped") })
            #expect(warnings.contains { $0.hasPrefix("messagelog.txt:4: skipped") })
            let found = try Self.all(log.messages(after: Self.base, through: 2)).map(\.number)
            #expect(found == [1, 2])
        }
    }

    @Test func aTornTailIsCutAndAWholeOneCompleted() throws {
        try withLog("1; 1 Mar 2022 10:00:00; hans; a\n2; 1 Mar 2022 10:0") { log, path, warnings in
            let contents = try String(contentsOfFile: path, encoding: .utf8)
            #expect(contents == "1; 1 Mar 2022 10:00:00; hans; a\n")
            #expect(log.lastNumber == 1)
            #expect(warnings == ["messagelog.txt: removed a torn last line (18 bytes)"])
        }
        try withLog("1; 1 Mar 2022 10:00:00; hans; a\n2; 1 Mar 2022 10:00:01; hans; whole") { log, path, warnings in
            let contents = try String(contentsOfFile: path, encoding: .utf8)
            #expect(contents.hasSuffix("hans; whole\n"))
            #expect(log.lastNumber == 2)
            #expect(warnings == ["messagelog.txt: completed a last line that had no newline"])
        }
    }

    @Test func appendsContinueTheNumberingAndAreFound() throws {
        try withLog("1; 1 Mar 2022 10:00:00; hans; a\n") { log, _, _ in
            let time = Timestamp.parse("1 Mar 2022 10:00:05")!
            let record = MessageRecord(number: 2, timestamp: Timestamp.format(time), user: "yoda", message: "b; c")
            _ = try log.append(record, time: time)
            #expect(log.lastNumber == 2)
            #expect(try Self.all(log.messages(after: time - 1, through: 2)) == [record])
            // A reader stops at the number it was given: later lines are not in its answer.
            _ = try log.append(MessageRecord(number: 3, timestamp: Timestamp.format(time), user: "hans", message: "d"), time: time)
            #expect(try Self.all(log.messages(after: time - 1, through: 2)) == [record])
        }
    }
}
