import Foundation
import ToomTestSupport
import Testing
import ToomCore

/// The whole happy path of spec §4–§5 with three clients, each in its own directory.
@Suite struct ChatSessionTests {
    @Test func threeClientsUseEveryCommand() async throws {
        let server = try await TestServer()
        let hans = try await server.login("hans")
        let yoda = try await server.login("yoda")
        let vader = try await server.login("vader")

        // userlog.txt: one line per online user, numbered in login order.
        try await eventually("three userlog lines") { server.fileLines("userlog.txt").count == 3 }
        let userlog = server.fileLines("userlog.txt").compactMap(UserLogRecord.parse)
        #expect(userlog.map(\.user) == ["hans", "yoda", "vader"])
        #expect(userlog.map(\.sequence) == [1, 2, 3])
        #expect(userlog.allSatisfy { $0.address == "127.0.0.1" && $0.udpPort > 0 && matches($0.timestamp, timestampPattern) })

        // ATU lists every other user, from the same facts as userlog.txt.
        let atu = try await hans.command("ATU")
        #expect(atu == userlog.filter { $0.user != "hans" }.map {
            "\($0.user), 127.0.0.1, \($0.udpPort), active since \($0.timestamp)."
        })
        try await server.process.expect("hans issued ATU command\n" + atu.joined(separator: "\n"))

        // BCM: stored, numbered, and the reply's timestamp is the file's.
        let bcm1 = try #require(try await hans.command("BCM Hello everyone").first)
        #expect(matches(bcm1, #"Broadcast message, #1 broadcast at "# + timestampPattern + #"\."#))
        let ts1 = String(bcm1.dropFirst("Broadcast message, #1 broadcast at ".count).dropLast())
        let bcm2 = try #require(try await yoda.command("BCM Hi; there; friends").first)
        #expect(bcm2.hasPrefix("Broadcast message, #2 broadcast at "))
        let ts2 = String(bcm2.dropFirst("Broadcast message, #2 broadcast at ".count).dropLast())
        #expect(server.fileLines("messagelog.txt") == ["1; \(ts1); hans; Hello everyone", "2; \(ts2); yoda; Hi; there; friends"])
        try await server.process.expect("hans broadcasted BCM #1 \"Hello everyone\" at \(ts1).")
        try await server.process.expect("yoda broadcasted BCM #2 \"Hi; there; friends\" at \(ts2).")

        // SRB builds a room of the issuer plus the listed users.
        let srb = try await hans.command("SRB yoda vader")
        #expect(srb == ["Separate chat room has been created, room ID: 1, users in this room: hans, yoda, vader"])
        try await server.process.expect("hans issued SRB command\nSeparate chat room has been created, room ID: 1, users in this room: hans, yoda, vader")

        // SRM appends to the room's own log.
        let srm = try #require(try await yoda.command("SRM 1 secret plans").first)
        #expect(srm.hasPrefix("Separate room message, #1 issued at "))
        let ts3 = String(srm.dropFirst("Separate room message, #1 issued at ".count).dropLast())
        #expect(matches(ts3, timestampPattern))
        #expect(server.fileLines("SR_1_messageLog.txt") == ["1; \(ts3); yoda; secret plans"])
        try await server.process.expect("yoda issued a message in separate room 1: #1; \(ts3); yoda; secret plans")

        // RDM reads back what was stored after a time.
        let rdmB = try await vader.command("RDM b 1 Jan 2020 00:00:00")
        #expect(rdmB == ["#1; hans: \"Hello everyone\" broadcast at \(ts1).", "#2; yoda: \"Hi; there; friends\" broadcast at \(ts2)."])
        try await server.process.expect("vader issued RDM command\n" + rdmB.joined(separator: "\n"))
        let rdmS = try await vader.command("RDM s 01 Jan 2020 00:00:00")
        #expect(rdmS == ["room-1:", "#1; yoda: \"secret plans\" issued at \(ts3)."])
        #expect(try await hans.command("RDM b \(ts2)") == [Messages.noNewMessage])
        #expect(try await hans.command("RDM s \(ts3)") == [Messages.noNewMessage])

        // OUT: bye, exit 0, and userlog.txt renumbered.
        vader.send("OUT")
        try await vader.expect("Bye, vader!")
        #expect(try await vader.waitForExit() == 0)
        try await server.process.expect("vader logout")
        try await eventually("userlog without vader") { server.fileLines("userlog.txt").count == 2 }
        #expect(server.fileLines("userlog.txt").compactMap(UserLogRecord.parse).map(\.user) == ["hans", "yoda"])

        hans.send("OUT")
        #expect(try await hans.waitForExit() == 0)
        #expect(hans.lines.last == "Bye, hans!")
        try await eventually("userlog with yoda renumbered to 1") {
            server.fileLines("userlog.txt").compactMap(UserLogRecord.parse).map { "\($0.sequence) \($0.user)" } == ["1 yoda"]
        }
        yoda.closeInput()
        #expect(try await yoda.waitForExit() == 0)
        #expect(yoda.lines.last == "Bye, yoda!")
        try await eventually("empty userlog") { server.file("userlog.txt") == "" }
        #expect(hans.unexpectedStderr.isEmpty && yoda.unexpectedStderr.isEmpty && vader.unexpectedStderr.isEmpty)
    }

    @Test func rdmAcceptsOneAndTwoDigitDays() async throws {
        let server = try await TestServer()
        let hans = try await server.login("hans")
        _ = try await hans.command("BCM first")
        for since in ["1 Jan 2020 00:00:00", "01 Jan 2020 00:00:00", "9 Feb 2021 7:05:09", "10 Dec 2021 23:59:59"] {
            let lines = try await hans.command("RDM b \(since)")
            #expect(lines.count == 1 && lines[0].hasPrefix("#1; hans: \"first\" broadcast at "), "RDM b \(since)")
        }
        #expect(try await hans.command("RDM b 1 Jan 2100 00:00:00") == [Messages.noNewMessage])
    }

    @Test func emptyLineShowsThePromptAgain() async throws {
        let server = try await TestServer()
        let hans = try await server.login("hans")
        #expect(try await hans.command("") == [])
        #expect(try await hans.command("   ") == [])
        #expect(try await hans.command("ATU") == [Messages.noOtherActiveUser])
    }

    @Test func endOfInputLogsOutCleanly() async throws {
        let server = try await TestServer()
        let client = try server.client()
        client.send("leia")
        client.send("$blasterpistol$")
        client.send("BCM from a script")
        client.closeInput()
        #expect(try await client.waitForExit() == 0)
        #expect(client.lines.contains { $0.hasPrefix("Broadcast message, #1 broadcast at ") })
        #expect(client.lines.last == "Bye, leia!")
        try await eventually("empty userlog") { server.file("userlog.txt") == "" }
        #expect(client.unexpectedStderr.isEmpty)
    }
}
