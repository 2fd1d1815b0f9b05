import Foundation
import ToomTestSupport
import Testing
import ToomCore

/// Runs `toom replay` to completion.
func replay(_ arguments: [String]) async throws -> Completed {
    try await runToom(["replay"] + arguments)
}

@Suite struct ReplayEndToEndTests {
    /// A server after a session: broadcasts by hans and yoda, room 1 (hans, yoda), room 2 (yoda, luke).
    func session() async throws -> TestServer {
        let server = try await TestServer()
        let hans = try await server.login("hans")
        let yoda = try await server.login("yoda")
        let luke = try await server.login("luke")
        _ = try await hans.command("BCM hello, all")
        _ = try await hans.command("SRB yoda")
        _ = try await hans.command("SRM 1 say \"hi\"")
        _ = try await yoda.command("SRB luke")
        _ = try await yoda.command("SRM 2 in room two")
        _ = try await yoda.command("BCM from yoda")
        _ = try await luke.command("SRM 2 luke here")
        return server
    }

    /// The records of the session as (log, line), in the order replay must give them.
    func expected(_ server: TestServer) -> [(kind: String, record: MessageRecord)] {
        var all: [(kind: String, record: MessageRecord, time: Int64, rank: Int, line: Int)] = []
        for (name, kind, rank) in [("messagelog.txt", "broadcast", 0), ("SR_1_messageLog.txt", "room 1", 1), ("SR_2_messageLog.txt", "room 2", 2)] {
            for (line, text) in server.fileLines(name).enumerated() {
                let record = try! MessageRecord.parse(text).get()
                all.append((kind, record, Timestamp.parse(record.timestamp)!, rank, line))
            }
        }
        all.sort { ($0.time, $0.rank, $0.line) < ($1.time, $1.rank, $1.line) }
        return all.map { ($0.kind, $0.record) }
    }

    func text(_ records: [(kind: String, record: MessageRecord)]) -> String {
        records.map { "\($0.record.timestamp) [\($0.kind) #\($0.record.number)] \($0.record.user): \($0.record.message)\n" }.joined()
    }

    @Test func replaysARealSessionWithEveryFilterAndFormat() async throws {
        let server = try await session()
        let all = expected(server)
        #expect(all.count == 5)
        let dir = server.data.path

        let plain = try await replay([dir])
        #expect(plain.status == 0)
        #expect(plain.err == "")
        #expect(plain.out == text(all))

        #expect(try await replay([dir, "--broadcasts"]).out == text(all.filter { $0.kind == "broadcast" }))
        #expect(try await replay([dir, "--room", "2"]).out == text(all.filter { $0.kind == "room 2" }))
        #expect(try await replay([dir, "--room", "1", "--broadcasts"]).out == text(all.filter { $0.kind != "room 2" }))
        #expect(try await replay([dir, "--user", "yoda", "--user", "luke"]).out
            == text(all.filter { $0.record.user != "hans" }))

        // --since and --until include their second.
        let third = all[2].record.timestamp
        let inWindow = all.filter { Timestamp.parse($0.record.timestamp)! == Timestamp.parse(third)! }
        #expect(try await replay([dir, "--since", third, "--until", third]).out == text(inWindow))
        let after = all.filter { Timestamp.parse($0.record.timestamp)! >= Timestamp.parse(third)! }
        #expect(try await replay([dir, "--since", third]).out == text(after))

        let json = try await replay([dir, "--format", "json"])
        let objects = try json.out.split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        #expect(objects.count == 5)
        for (object, entry) in zip(objects, all) {
            #expect(object["message"] as? String == entry.record.message)
            #expect(object["user"] as? String == entry.record.user)
            #expect(object["number"] as? Int == entry.record.number)
            #expect(object["timestamp"] as? String == entry.record.timestamp)
            #expect(object["time"] as? Int == Int(Timestamp.parse(entry.record.timestamp)!))
            #expect(object["source"] as? String == (entry.kind == "broadcast" ? "broadcast" : "room"))
        }

        let csv = try await replay([dir, "--format", "csv", "--room", "1"])
        let room1 = try #require(all.first { $0.kind == "room 1" })
        #expect(csv.out == "source,room,number,timestamp,user,message\r\n"
            + "room,1,1,\(room1.record.timestamp),hans,\"say \"\"hi\"\"\"\r\n")
    }

    @Test func badOptionsAndLinesAreReportedClearly() async throws {
        let root = try TemporaryDirectory()
        let bad = try await replay([root.url.path, "--since", "yesterday"])
        #expect(bad.status == 64)
        #expect(bad.err.hasPrefix("Error: Invalid --since: 'yesterday'. Expected \(Timestamp.expectedFormat)\n"))
        #expect(try await replay([root.url.path, "--pace", "0"]).status == 64)
        #expect(try await replay([root.url.path, "--format", "xml"]).status == 64)
        let missing = try await replay([root.url.path + "/nope"])
        #expect(missing.status == 1)
        #expect(missing.err == "toom replay: Cannot read \(root.url.path)/nope: no such directory\n")

        try "1; 1 Jun 2022 21:30:04; hans; fine\nbroken line\n2; 1 Jun 2022 21:30:05; hans; also fine\n"
            .write(to: root.url.appendingPathComponent("messagelog.txt"), atomically: true, encoding: .utf8)
        let partly = try await replay([root.url.path])
        #expect(partly.status == 0)
        #expect(partly.out.split(separator: "\n").count == 2)
        #expect(partly.err == "toom replay: \(root.url.path)/messagelog.txt:2: expected 'n; timestamp; username; message'; skipped\n")
    }

    @Test func paceKeepsTheOriginalGapsDividedByN() async throws {
        let root = try TemporaryDirectory()
        try "1; 1 Jun 2022 21:30:00; hans; one\n2; 1 Jun 2022 21:30:02; hans; two\n"
            .write(to: root.url.appendingPathComponent("messagelog.txt"), atomically: true, encoding: .utf8)
        let clock = ContinuousClock()
        let start = clock.now
        let paced = try await replay([root.url.path, "--pace", "4"])
        #expect(clock.now - start >= .milliseconds(450))
        #expect(paced.out.split(separator: "\n").count == 2)
    }

    @Test func followPrintsWhatALiveServerAppends() async throws {
        let server = try await TestServer()
        let hans = try await server.login("hans")
        _ = try await hans.command("BCM before")
        let follow = try ToomProcess(["replay", server.data.path, "--follow"], in: server.root.url)
        try await follow.expect("] hans: before\n")

        _ = try await hans.command("BCM after")
        try await follow.expect(" [broadcast #2] hans: after\n")

        // A room made after replay started is picked up too.
        let yoda = try await server.login("yoda")
        _ = try await yoda.command("SRB hans")
        _ = try await yoda.command("SRM 1 a new room")
        try await follow.expect(" [room 1 #1] yoda: a new room\n")
        #expect(follow.process.isRunning)
        follow.signal(SIGTERM)
        _ = try await follow.waitForExit()
        #expect(follow.stderr == "")
    }
}
