import Foundation
import ToomTestSupport
import Testing
import ToomCore

/// Spec §3: the files are the record, across logouts, dropped connections and restarts.
@Suite struct PersistenceTests {
    @Test func historyAndRoomsSurviveARestartOnTheSamePort() async throws {
        let server = try await TestServer()
        let hans = try await server.login("hans")
        let yoda = try await server.login("yoda")
        _ = try await hans.command("BCM one")
        _ = try await yoda.command("BCM two; with separator")
        _ = try await hans.command("SRB yoda")
        _ = try await yoda.command("SRM 1 in the room")
        let before = server.fileLines("messagelog.txt")

        #expect(try await server.stop() == 0)
        try await hans.expect(Messages.serverShutdown)
        #expect(try await hans.waitForExit() == 4)
        #expect(try await yoda.waitForExit() == 4)
        #expect(server.file("userlog.txt") == "")

        // Same port at once: address reuse.
        try await server.restart()
        #expect(server.file("userlog.txt") == "")
        #expect(server.fileLines("messagelog.txt") == before)
        let hans2 = try await server.login("hans")
        let yoda2 = try await server.login("yoda")
        #expect(try await hans2.command("BCM three").first?.hasPrefix("Broadcast message, #3 broadcast at ") == true)
        #expect(try await yoda2.command("SRM 1 again").first?.hasPrefix("Separate room message, #2 issued at ") == true)
        #expect(try await hans2.command("SRB yoda") == ["a separate room (ID: 1) already created for these users"])
        let vader = try await server.login("vader")
        #expect(try await hans2.command("SRB vader").first == "Separate chat room has been created, room ID: 2, users in this room: hans, vader")
        let read = try await vader.command("RDM b 1 Jan 2020 00:00:00")
        #expect(read.count == 3 && read[1].hasPrefix("#2; yoda: \"two; with separator\" broadcast at "))
        let rooms = try await yoda2.command("RDM s 1 Jan 2020 00:00:00")
        #expect(rooms.count == 3 && rooms[0] == "room-1:" && rooms[2].hasPrefix("#2; yoda: \"again\" issued at "))
        #expect(server.fileLines("rooms.txt") == ["1; hans, yoda", "2; hans, vader"])
    }

    @Test func freshMovesOldLogsAside() async throws {
        let server = try await TestServer()
        let hans = try await server.login("hans")
        _ = try await hans.command("BCM old news")
        _ = try await hans.command("SRB yoda") // offline: no room
        #expect(try await server.stop() == 0)
        _ = try await hans.waitForExit()

        try await server.restart(samePort: false, extra: ["--fresh"])
        let archives = try FileManager.default.contentsOfDirectory(atPath: server.data.path).filter { $0.hasPrefix("archive-") }
        #expect(archives.count == 1)
        let archived = try String(contentsOf: server.data.appendingPathComponent(archives[0]).appendingPathComponent("messagelog.txt"), encoding: .utf8)
        #expect(archived.hasSuffix("; hans; old news\n"))
        let hans2 = try await server.login("hans")
        #expect(try await hans2.command("BCM new").first?.hasPrefix("Broadcast message, #1 broadcast at ") == true)
        #expect(try await hans2.command("RDM b 1 Jan 2020 00:00:00").count == 1)
    }

    @Test func userlogIsRenumberedWhenAClientIsKilled() async throws {
        let server = try await TestServer()
        let hans = try await server.login("hans")
        let yoda = try await server.login("yoda")
        let vader = try await server.login("vader")
        yoda.signal(SIGKILL)
        try await server.process.expect("yoda disconnected")
        try await eventually("userlog renumbered") {
            server.fileLines("userlog.txt").compactMap(UserLogRecord.parse).map { "\($0.sequence) \($0.user)" } == ["1 hans", "2 vader"]
        }
        #expect(try await hans.command("ATU").first?.hasPrefix("vader, 127.0.0.1, ") == true)
        _ = vader
    }

    @Test func aTornLastLineIsRepairedOnStart() async throws {
        let server = try await TestServer()
        #expect(try await server.stop() == 0)
        try "1; 1 Jun 2022 21:30:04; hans; whole\n2; 1 Jun 2022 21:30:0".write(
            to: server.data.appendingPathComponent("messagelog.txt"), atomically: true, encoding: .utf8)
        try await server.restart(samePort: false)
        try await eventually("a repair warning") { server.process.stderr.contains("messagelog.txt: removed a torn last line") }
        #expect(server.fileLines("messagelog.txt") == ["1; 1 Jun 2022 21:30:04; hans; whole"])
        let hans = try await server.login("hans")
        #expect(try await hans.command("BCM next").first?.hasPrefix("Broadcast message, #2 broadcast at ") == true)
    }
}
