import Foundation
import Testing
import ToomChat
import ToomCore
@testable import ToomStore
import ToomTestSupport

/// Message lines staged during an event-loop turn reach their files in one write each,
/// byte for byte as one `apply` per message would have written them; a failed write
/// leaves nothing of the batch in the file and says which writes failed.
@Suite struct StagedWriteTests {
    private func withDirectory(_ body: (String) throws -> Void) throws {
        let directory = try TemporaryDirectory("toom-staged")
        try "hans falcon*solo\nyoda wise@!man\n".write(to: directory.url.appendingPathComponent("credentials.txt"),
                                                       atomically: true, encoding: .utf8)
        try body(directory.url.path)
    }

    private static let time = Timestamp.parse("1 Jun 2022 21:30:04")!

    private static func record(_ n: Int, _ message: String) -> MessageRecord {
        MessageRecord(number: n, timestamp: "1 Jun 2022 21:30:04", user: "hans", message: message)
    }

    @Test func stagedLinesAreTheLinesApplyWrites() throws {
        var applied = "", staged = ""
        for batch in [false, true] {
            try withDirectory { dir in
                let store = try FileChatStore(directory: dir, sync: false, warn: { _ in })
                _ = try store.apply(.room(RoomRecord(id: 1, members: ["hans", "yoda"])))
                let writes: [StoreWrite] = [
                    .broadcast(Self.record(1, "first; with a separator"), time: Self.time),
                    .roomMessage(room: 1, Self.record(1, "in the room"), time: Self.time),
                    .broadcast(Self.record(2, "second"), time: Self.time),
                ]
                if batch {
                    var positions: [Int] = []
                    for write in writes { positions.append(try #require(try store.stage(write))) }
                    #expect(positions == [0, 1, 2])
                    #expect(try String(contentsOfFile: dir + "/messagelog.txt", encoding: .utf8) == "", "nothing before writeStaged")
                    let written = store.writeStaged()
                    #expect(written.failed.isEmpty && written.ticket == nil)
                } else {
                    for write in writes { _ = try store.apply(write) }
                }
                let text = try String(contentsOfFile: dir + "/messagelog.txt", encoding: .utf8)
                    + "|" + String(contentsOfFile: dir + "/SR_1_messageLog.txt", encoding: .utf8)
                if batch { staged = text } else { applied = text }
                #expect(store.snapshot().lastBroadcast == 2)
            }
        }
        #expect(staged == applied)
        #expect(applied == "1; 1 Jun 2022 21:30:04; hans; first; with a separator\n2; 1 Jun 2022 21:30:04; hans; second\n|1; 1 Jun 2022 21:30:04; hans; in the room\n")
    }

    @Test func roomsAndLoginsAreNotStaged() throws {
        try withDirectory { dir in
            let store = try FileChatStore(directory: dir, sync: false, warn: { _ in })
            #expect(try store.stage(.room(RoomRecord(id: 1, members: ["hans", "yoda"]))) == nil)
            #expect(try store.stage(.login(UserLogRecord(sequence: 1, timestamp: "1 Jun 2022 21:30:04", user: "hans",
                                                         address: "127.0.0.1", udpPort: 6000))) == nil)
            #expect(try store.stage(.logout(user: "hans")) == nil)
        }
    }

    @Test func aFailedBatchWriteFailsEveryLineOfThatLog() throws {
        // /dev/full takes the open and refuses every write (ENOSPC).
        let log = try MessageLog(path: "/dev/full", commit: nil, warn: { _ in })
        log.stage(Self.record(1, "a"), time: Self.time, position: 0)
        log.stage(Self.record(2, "b"), time: Self.time, position: 3)
        guard case .failure(let failure) = log.writeStaged() else {
            Issue.record("a write to /dev/full succeeded")
            return
        }
        #expect(failure.positions == [0, 3])
        #expect("\(failure.error)".contains("No space left on device"))
        #expect(log.lastNumber == 0, "nothing of the batch counts")
        #expect(!log.hasStaged, "the next batch starts empty")
    }
}
