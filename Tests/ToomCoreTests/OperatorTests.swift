import Testing
import ToomCore

@Suite struct OperatorCommandTests {
    @Test func parsesTheConsoleCommands() {
        #expect(OperatorCommand.parse("list") == .command(.list))
        #expect(OperatorCommand.parse("  KICK hans ") == .command(.kick("hans")))
        #expect(OperatorCommand.parse("unblock vader") == .command(.unblock("vader")))
        #expect(OperatorCommand.parse("quit") == .command(.quit))
        #expect(OperatorCommand.parse("help") == .command(.help))
        #expect(OperatorCommand.parse("   ") == .empty)
    }

    @Test func explainsMistakes() {
        #expect(OperatorCommand.parse("kick") == .error("Usage: kick <user>"))
        #expect(OperatorCommand.parse("unblock a b") == .error("Usage: unblock <user>"))
        #expect(OperatorCommand.parse("list all") == .error("Usage: list"))
        #expect(OperatorCommand.parse("ban hans") == .error("Unknown command 'ban'. Commands: list, kick, unblock, quit, help; help explains them"))
    }

    @Test func reportReadsAsText() {
        let report = OperatorReport(
            users: [.init(user: "hans", address: "127.0.0.1", udpPort: 6001, since: "1 Jun 2022 21:30:04")],
            rooms: [.init(id: 2, members: ["hans", "yoda"])],
            blocked: [.init(user: "vader", secondsLeft: 1)])
        #expect(report.lines == [
            "Users online: 1",
            "  hans, 127.0.0.1, UDP port 6001, since 1 Jun 2022 21:30:04",
            "Rooms: 1",
            "  room 2: hans, yoda",
            "Blocked accounts: 1",
            "  vader, 1 second left",
        ])
    }

    @Test func adminFramesRoundTrip() throws {
        let report = OperatorReport(
            users: [.init(user: "hans", address: "::1", udpPort: 1, since: "1 Jun 2022 21:30:04")],
            rooms: [.init(id: 1, members: ["a", "b", "c"])],
            blocked: [.init(user: "x", secondsLeft: 9)])
        let reply = OperatorReply(done: true, lines: ["ok"])
        let lines = (AdminFrame.report(report) + [AdminFrame.final(reply)]).map(Wire.encode)
        let frames = lines.map { Wire.fields($0.dropLast()[...]) }
        let parsed = try #require(AdminFrame.parseReply(frames))
        #expect(parsed.report == report)
        #expect(parsed.reply == reply)
        #expect(AdminFrame.parseRequest(Wire.fields(Wire.encode(AdminFrame.request(.kick("hans"))!).dropLast()[...])) == .kick("hans"))
    }

    @Test func rejectsBrokenReplies() {
        #expect(AdminFrame.parseReply([]) == nil)
        #expect(AdminFrame.parseReply([["USER", "hans"]]) == nil)
        #expect(AdminFrame.parseReply([["DONE"], ["DONE"]]) == nil)
        #expect(AdminFrame.parseRequest(["QUIT"]) == nil)
        #expect(AdminFrame.parseRequest(["KICK"]) == nil)
    }
}
