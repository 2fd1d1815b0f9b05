import Foundation
import Synchronization
import Testing
import ToomCore
import ToomStore
@testable import ToomReplay

/// A data directory with message logs written by the test.
final class LogDirectory: @unchecked Sendable {
    let path: String
    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("replay-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }

    func write(_ name: String, _ lines: [String]) throws {
        try (lines.map { $0 + "\n" }.joined()).write(toFile: path + "/" + name, atomically: true, encoding: .utf8)
    }

    func append(_ name: String, _ text: String) throws {
        let handle = FileHandle(forWritingAtPath: path + "/" + name)!
        handle.seekToEndOfFile()
        handle.write(Data(text.utf8))
        try handle.close()
    }
}

/// Runs a replay and collects what it writes and reports.
func replay(_ directory: String, filter: ReplayFilter = ReplayFilter(),
            format: ReplayFormat = .text) async throws -> (out: String, problems: [String]) {
    let out = Mutex("")
    let problems = Mutex<[String]>([])
    let replay = Replay(options: .init(directory: directory, filter: filter, format: format),
                        write: { text in out.withLock { $0 += text }; return true },
                        report: { line in problems.withLock { $0.append(line) } })
    try await replay.run()
    return (out.withLock { $0 }, problems.withLock { $0 })
}

@Suite struct ReplayTests {
    let ts = { (second: Int) in "1 Jun 2022 21:30:\(second < 10 ? "0" : "")\(second)" }

    func sample() throws -> LogDirectory {
        let dir = try LogDirectory()
        try dir.write("messagelog.txt", ["1; \(ts(1)); hans; first", "2; \(ts(5)); yoda; second; with; separators"])
        try dir.write("SR_1_messageLog.txt", ["1; \(ts(2)); hans; in room 1", "2; \(ts(5)); yoda; same second"])
        try dir.write("SR_12_messageLog.txt", ["1; \(ts(3)); vader, \"the\" dark; in room 12"])
        try dir.write("rooms.txt", ["1; hans, yoda"])
        try dir.write("SR_x_messageLog.txt", ["not a room log"])
        return dir
    }

    @Test func mergesEveryLogInTimeOrder() async throws {
        let dir = try sample()
        let (out, problems) = try await replay(dir.path)
        #expect(out == """
        \(ts(1)) [broadcast #1] hans: first
        \(ts(2)) [room 1 #1] hans: in room 1
        \(ts(5)) [broadcast #2] yoda: second; with; separators
        \(ts(5)) [room 1 #2] yoda: same second

        """)
        // The room-12 line has a username with a comma and quotes: not a valid line.
        #expect(problems == ["\(dir.path)/SR_12_messageLog.txt:1: the username is not valid; skipped"])
    }

    @Test func filtersByLogUserAndTime() async throws {
        let dir = try sample()
        #expect(try await replay(dir.path, filter: .init(broadcasts: true)).out.split(separator: "\n").count == 2)
        #expect(try await replay(dir.path, filter: .init(rooms: [1])).out.split(separator: "\n").allSatisfy { $0.contains("[room 1 ") })
        let both = try await replay(dir.path, filter: .init(rooms: [1], broadcasts: true)).out
        #expect(both.split(separator: "\n").count == 4)
        let yoda = try await replay(dir.path, filter: .init(users: ["yoda"])).out
        #expect(yoda.split(separator: "\n").map { $0.contains("yoda:") } == [true, true])
        let window = try await replay(dir.path, filter: .init(since: Timestamp.parse(ts(2)), until: Timestamp.parse(ts(4)))).out
        #expect(window == "\(ts(2)) [room 1 #1] hans: in room 1\n")
    }

    @Test func writesJSONLines() async throws {
        let dir = try LogDirectory()
        try dir.write("SR_3_messageLog.txt", ["7; \(ts(9)); hans; say \"hi\" \\ bye"])
        let out = try await replay(dir.path, format: .json).out
        let time = Timestamp.parse(ts(9))!
        #expect(out == #"{"source":"room","room":3,"number":7,"timestamp":"1 Jun 2022 21:30:09","time":\#(time),"user":"hans","message":"say \"hi\" \\ bye"}"# + "\n")
        let object = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]
        #expect(object?["message"] as? String == #"say "hi" \ bye"#)
    }

    @Test func writesRFC4180CSV() async throws {
        let dir = try LogDirectory()
        try dir.write("messagelog.txt", ["1; \(ts(1)); hans; plain", "2; \(ts(2)); hans; a, \"quoted\" one"])
        let out = try await replay(dir.path, format: .csv).out
        #expect(out == "source,room,number,timestamp,user,message\r\n"
            + "broadcast,,1,\(ts(1)),hans,plain\r\n"
            + "broadcast,,2,\(ts(2)),hans,\"a, \"\"quoted\"\" one\"\r\n")
    }

    @Test func reportsMalformedLinesAndGoesOn() async throws {
        let dir = try LogDirectory()
        let long = String(repeating: "x", count: LogFileReader.bufferSize + 10)
        try dir.write("messagelog.txt", [
            "1; \(ts(1)); hans; ok", "garbage", "3; 31 Feb 2022 10:00:00; hans; bad date", long,
            "0; \(ts(2)); hans; bad number", "6; \(ts(3)); hans; still read",
        ])
        try dir.append("messagelog.txt", "7; \(ts(4)); hans; no newline at the end")
        let (out, problems) = try await replay(dir.path)
        #expect(out.split(separator: "\n").map { $0.split(separator: " ").last! } == ["ok", "read", "end"])
        let path = dir.path + "/messagelog.txt"
        #expect(problems == [
            "\(path):2: expected 'n; timestamp; username; message'; skipped",
            "\(path):3: the timestamp is not in the format \(Timestamp.expectedFormat); skipped",
            "\(path):4: the line is longer than \(LogFileReader.bufferSize) bytes; skipped",
            "\(path):5: the message number is not a positive integer; skipped",
        ])
    }

    @Test func aMissingDirectoryIsAnError() async throws {
        let dir = try LogDirectory()
        await #expect(throws: Replay.DirectoryError.self) {
            _ = try await replay(dir.path + "/nope")
        }
    }

    @Test func recognisesLogFileNames() {
        #expect(LogKind(fileName: "messagelog.txt") == .broadcast)
        #expect(LogKind(fileName: "SR_42_messageLog.txt") == .room(42))
        for name in ["SR__messageLog.txt", "SR_0_messageLog.txt", "SR_-1_messageLog.txt", "SR_1_messagelog.txt", "userlog.txt"] {
            #expect(LogKind(fileName: name) == nil)
        }
    }
}
