import Foundation
import Testing
import ToomCore

/// A message line that cannot be written (the disk is full) is not recorded, its sender is
/// told so, and its number is used again, as docs/DESIGN.md says of the batch written at the
/// end of each event-loop turn. The room's log is made a link to /dev/full, which takes the
/// open and refuses every write with ENOSPC.
@Suite struct FailedWriteTests {
    @Test func aMessageThatCannotBeWrittenIsNotRecordedAndItsSenderIsTold() async throws {
        let server = try await TestServer()
        do {
            let hans = try RawConnection(port: server.port)
            try hans.login("hans", passwords["hans"]!)
            let yoda = try RawConnection(port: server.port)
            try yoda.login("yoda", passwords["yoda"]!)
            hans.send("SRB\tyoda\n")
            #expect(hans.readLine() == "OK\tSRB\t1\thans\tyoda")
        }
        #expect(try await server.stop() == 0)
        let roomLog = server.data.appendingPathComponent("SR_1_messageLog.txt").path
        try FileManager.default.createSymbolicLink(atPath: roomLog, withDestinationPath: "/dev/full")
        try await server.restart()

        let hans = try RawConnection(port: server.port)
        try hans.login("hans", passwords["hans"]!)
        let yoda = try RawConnection(port: server.port)
        try yoda.login("yoda", passwords["yoda"]!, live: true)
        let refused = "ERR\tstorage\tError. The server could not store that; nothing was recorded"
        hans.send("SRM\t1\tlost\n")
        #expect(hans.readLine() == refused)
        // Broadcasts live in another file and still work, numbered from 1.
        hans.send("BCM\tkept\n")
        let reply = try #require(hans.readLine())
        #expect(reply.hasPrefix("OK\tBCM\t1\t"))
        let timestamp = String(reply.split(separator: "\t")[3])
        #expect(server.fileLines("messagelog.txt") == ["1; \(timestamp); hans; kept"])
        // The failed message reached nobody: the live member's first delivery is the broadcast.
        #expect(yoda.readLine() == "EVENT\tB\t1\t\(timestamp)\thans\tkept")
        // A second try fails the same way, and the server says why on its terminal.
        hans.send("SRM\t1\tlost again\n")
        #expect(hans.readLine() == refused)
        try await server.process.expect("No space left on device")
    }
}
