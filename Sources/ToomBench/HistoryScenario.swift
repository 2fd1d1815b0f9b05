import Foundation
import Histogram
import NIOCore
import NIOPosix
import ToomCore

/// RDM over a large history, and start-up with it. References: one full scan of the
/// broadcast log (what answering RDM without an index costs), and one sequential read of
/// all the logs (the least any start-up that reads them could cost).
struct HistoryScenario {
    let context: BenchContext
    let rooms = 10

    func run() async throws -> ResultTable {
        let broadcasts = context.quick ? 200_000 : 1_000_000
        let perRoom = broadcasts / rooms
        let queries = context.quick ? 200 : 1_000
        let group = MultiThreadedEventLoopGroup.singleton

        let scratch = try Scratch("history")
        try scratch.write("credentials.txt", benchCredentials(rooms + 1))
        let now = Timestamp.now()
        let span: Int64 = 30 * 86_400
        func time(_ i: Int, of count: Int) -> Int64 { now - span + Int64(i) * span / Int64(count) }
        try writeLog(scratch.url.appendingPathComponent("messagelog.txt"), count: broadcasts) { i in
            (time(i, of: broadcasts), "u\(i % (rooms + 1))", "broadcast number \(i + 1); with some words in it")
        }
        try scratch.write("rooms.txt", (1...rooms).map { "\($0); u0, u\($0)\n" }.joined())
        for room in 1...rooms {
            try writeLog(scratch.url.appendingPathComponent("SR_\(room)_messageLog.txt"), count: perRoom) { i in
                (time(i, of: perRoom), i % 2 == 0 ? "u0" : "u\(room)", "room \(room) message \(i + 1)")
            }
        }
        // "Recent": about the last hundred broadcasts (and as many room messages in all).
        let recent = Timestamp.format(time(broadcasts - 100, of: broadcasts))
        let recentTime = Timestamp.parse(recent)!

        let logs = try FileManager.default.contentsOfDirectory(atPath: scratch.url.path)
            .filter { $0.hasSuffix(".txt") && $0 != "credentials.txt" }.map { scratch.url.appendingPathComponent($0).path }
        let readAll = try best(of: 3) { try sequentialRead(logs) }
        let scan = try best(of: 3) { try fullScan(scratch.url.appendingPathComponent("messagelog.txt").path, after: recentTime) }

        var startTimes: [Double] = []
        var server: ServerProcess?
        for _ in 0..<9 {
            try await server?.stop()
            server = try await ServerProcess(executable: context.toomPath,
                                       arguments: ["server", "0", "3", "--host", "127.0.0.1", "--data-dir", scratch.url.path],
                                       directory: scratch.url)
            startTimes.append(server!.startSeconds)
        }
        let emptyStart = try await emptyServerStart()
        let client = try await LineClient.connect(port: server!.port, peer: .toom, group: group)
        _ = try await client.request("HELLO\t1\ttoom-bench\n")
        _ = try await client.request("USER\tu0\n")
        _ = try await client.request("PASS\tp0\t9\n")
        var results: [String: (Histogram<UInt64>, Int)] = [:]
        for scope in ["b", "s"] {
            var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
            var lines = 0
            for _ in 0..<queries {
                let sent = DispatchTime.now().uptimeNanoseconds
                lines = try await client.request("RDM\t\(scope)\t\(recent)\n")
                histogram.record((DispatchTime.now().uptimeNanoseconds - sent) / 1000)
            }
            results[scope] = (histogram, lines - 1)
        }
        await client.close()
        try await server?.stop()

        var table = ResultTable("history: \(broadcasts) broadcasts and \(rooms) rooms × \(perRoom) messages")
        for (scope, label) in [("b", "RDM b"), ("s", "RDM s")] {
            let (histogram, found) = results[scope]!
            table.add("\(label) p99 (\(found) messages)", value: Double(histogram.valueAtPercentile(99)),
                      reference: scan * 1e6, unit: .microseconds, target: .ratioAtMost(0.01))
            table.add("\(label) p50", value: Double(histogram.valueAtPercentile(50)), reference: scan * 1e6, unit: .microseconds, target: nil)
        }
        let start = startTimes.min()!
        table.add("server start-up with this history", value: start, reference: readAll, unit: .seconds, target: .ratioAtMost(2))
        table.add("server start-up with no history", value: emptyStart, reference: readAll, unit: .seconds, target: nil)
        table.notes.append("References: RDM rows against one full scan of messagelog.txt (read and parse every line, keep those after the time); start-up (best of 9, from launch until it prints that it listens) against one sequential read of all \(logs.count) log files. Files are in the page cache for both.")
        return table
    }

    private func writeLog(_ url: URL, count: Int, line: (Int) -> (Int64, String, String)) throws {
        _ = FileManager.default.createFile(atPath: url.path, contents: nil)
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        var cache = TimestampCache()
        var chunk = ""
        for i in 0..<count {
            let (time, user, message) = line(i)
            chunk += MessageRecord(number: i + 1, timestamp: cache.format(time), user: user, message: message).line
            chunk += "\n"
            if chunk.utf8.count > 1 << 20 {
                handle.write(Data(chunk.utf8))
                chunk = ""
            }
        }
        handle.write(Data(chunk.utf8))
    }

    private func best(of runs: Int, _ body: () throws -> Void) rethrows -> Double {
        var best = Double.infinity
        for _ in 0..<runs {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return best
    }

    private func sequentialRead(_ paths: [String]) throws {
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        for path in paths {
            let fd = open(path, O_RDONLY)
            guard fd >= 0 else { throw BenchError("cannot open \(path)") }
            while buffer.withUnsafeMutableBytes({ read(fd, $0.baseAddress, $0.count) }) > 0 {}
            close(fd)
        }
    }

    /// What RDM costs without an index: parse every line, keep those after the time.
    private func fullScan(_ path: String, after time: Int64) throws {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var found = 0
        for line in text.split(separator: "\n") {
            if case .success(let record) = MessageRecord.parse(line), let t = Timestamp.parse(record.timestamp), t > time {
                found += 1
            }
        }
        if found == 0 { throw BenchError("the scan found nothing") }
    }

    private func emptyServerStart() async throws -> Double {
        let scratch = try Scratch("history-empty")
        try scratch.write("credentials.txt", benchCredentials(1))
        var times: [Double] = []
        for _ in 0..<9 {
            let server = try await ServerProcess(executable: context.toomPath,
                                           arguments: ["server", "0", "3", "--host", "127.0.0.1", "--data-dir", scratch.url.path],
                                           directory: scratch.url)
            times.append(server.startSeconds)
            try await server.stop()
        }
        return times.min()!
    }
}
