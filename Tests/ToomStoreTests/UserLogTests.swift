import Foundation
import Testing
import ToomCore
@testable import ToomStore
import ToomTestSupport

/// `userlog.txt` (spec §3): the users online, numbered 1…n in login order. The file is the
/// store's only copy of the list: a rewrite after logouts reads it back.
@Suite struct UserLogTests {
    private func withLog(_ body: (UserLog) throws -> Void) throws {
        let directory = try TemporaryDirectory("toom-userlog")
        try body(try UserLog(path: directory.url.appendingPathComponent("userlog.txt").path))
    }

    private func record(_ user: String, port: Int) -> UserLogRecord {
        UserLogRecord(sequence: 0, timestamp: "26 Nov 2026 13:05:0\(port % 10)", user: user, address: "127.0.0.1", udpPort: port)
    }

    private func lines(_ log: UserLog) throws -> [String] {
        try String(contentsOfFile: log.path, encoding: .utf8).split(separator: "\n").map(String.init)
    }

    @Test func logoutsAreRenumberedAtTheRewrite() throws {
        try withLog { log in
            for (i, user) in ["hans", "yoda", "vader", "luke"].enumerated() { try log.add(record(user, port: 5001 + i)) }
            log.remove(user: "yoda")
            log.remove(user: "luke")
            // The file follows at the flush, once for both.
            #expect(try lines(log).count == 4)
            #expect(log.needsRewrite)
            try log.flush()
            #expect(!log.needsRewrite)
            #expect(try lines(log) == ["1; 26 Nov 2026 13:05:01; hans; 127.0.0.1; 5001",
                                       "2; 26 Nov 2026 13:05:03; vader; 127.0.0.1; 5003"])
            // The next login is numbered after what the file holds.
            try log.add(record("leia", port: 5005))
            #expect(try lines(log).last == "3; 26 Nov 2026 13:05:05; leia; 127.0.0.1; 5005")
        }
    }

    @Test func aUserWhoLeftAndCameBackIsListedOnceAtTheEnd() throws {
        try withLog { log in
            try log.add(record("hans", port: 5001))
            try log.add(record("yoda", port: 5002))
            log.remove(user: "hans")
            // No flush in between: the login rewrites first.
            try log.add(record("hans", port: 5003))
            #expect(try lines(log) == ["1; 26 Nov 2026 13:05:02; yoda; 127.0.0.1; 5002",
                                       "2; 26 Nov 2026 13:05:03; hans; 127.0.0.1; 5003"])
        }
    }

    @Test func removingSomeoneNotListedChangesNothing() throws {
        try withLog { log in
            try log.add(record("hans", port: 5001))
            log.remove(user: "nobody")
            try log.flush()
            #expect(try lines(log) == ["1; 26 Nov 2026 13:05:01; hans; 127.0.0.1; 5001"])
        }
    }
}
