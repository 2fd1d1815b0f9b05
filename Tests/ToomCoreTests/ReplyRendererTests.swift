import Testing
@testable import ToomCore

private let ts = "1 Jun 2022 21:30:04"
private let ts2 = "2 Jun 2022 08:00:09"

@Suite struct ReplyRendererTests {
    @Test func broadcastStored() {
        #expect(ReplyRenderer.lines(for: [.ok(kind: "BCM", fields: ["1", ts])])
            == ["Broadcast message, #1 broadcast at 1 Jun 2022 21:30:04."])
    }

    @Test func activeUsers() {
        let replies: [ServerFrame] = [
            .item(kind: "USER", fields: ["hans", "127.0.0.1", "6001", ts]),
            .item(kind: "USER", fields: ["obi", "10.0.0.2", "7000", ts2]),
            .ok(kind: "ATU", fields: ["2"]),
        ]
        #expect(ReplyRenderer.lines(for: replies) == [
            "hans, 127.0.0.1, 6001, active since 1 Jun 2022 21:30:04.",
            "obi, 10.0.0.2, 7000, active since 2 Jun 2022 08:00:09.",
        ])
    }

    @Test func noOtherActiveUser() {
        #expect(ReplyRenderer.lines(for: [.ok(kind: "ATU", fields: ["0"])]) == ["no other active user"])
    }

    @Test func roomCreated() {
        #expect(ReplyRenderer.lines(for: [.ok(kind: "SRB", fields: ["1", "yoda", "hans", "obi"])])
            == ["Separate chat room has been created, room ID: 1, users in this room: yoda, hans, obi"])
        #expect(ReplyRenderer.lines(for: [.ok(kind: "SRB", fields: ["12", "yoda"])])
            == ["Separate chat room has been created, room ID: 12, users in this room: yoda"])
    }

    @Test func roomMessageStored() {
        #expect(ReplyRenderer.lines(for: [.ok(kind: "SRM", fields: ["2", "3", ts])])
            == ["Separate room message, #3 issued at 1 Jun 2022 21:30:04."])
    }

    @Test func readBroadcasts() {
        let replies: [ServerFrame] = [
            .item(kind: "B", fields: ["1", ts, "yoda", "hello; there"]),
            .item(kind: "B", fields: ["2", ts2, "hans", "say \"hi\""]),
            .ok(kind: "RDM", fields: ["2"]),
        ]
        #expect(ReplyRenderer.lines(for: replies) == [
            "#1; yoda: \"hello; there\" broadcast at 1 Jun 2022 21:30:04.",
            "#2; hans: \"say \"hi\"\" broadcast at 2 Jun 2022 08:00:09.",
        ])
    }

    @Test func readRoomsGroupsByRoom() {
        let replies: [ServerFrame] = [
            .item(kind: "S", fields: ["1", "1", ts, "yoda", "first"]),
            .item(kind: "S", fields: ["1", "2", ts2, "hans", "second"]),
            .item(kind: "S", fields: ["3", "1", ts2, "yoda", "elsewhere"]),
            .ok(kind: "RDM", fields: ["3"]),
        ]
        #expect(ReplyRenderer.lines(for: replies) == [
            "room-1:",
            "#1; yoda: \"first\" issued at 1 Jun 2022 21:30:04.",
            "#2; hans: \"second\" issued at 2 Jun 2022 08:00:09.",
            "room-3:",
            "#1; yoda: \"elsewhere\" issued at 2 Jun 2022 08:00:09.",
        ])
    }

    @Test func noNewMessage() {
        #expect(ReplyRenderer.lines(for: [.ok(kind: "RDM", fields: ["0"])]) == ["no new message"])
    }

    @Test func bye() {
        #expect(ReplyRenderer.lines(for: [.ok(kind: "OUT", fields: ["yoda"])]) == ["Bye, yoda!"])
    }

    @Test func errorsPrintEveryMessage() {
        #expect(ReplyRenderer.lines(for: [.error(code: .offline, messages: ["hans is offline", "obi is offline"])])
            == ["hans is offline", "obi is offline"])
        #expect(ReplyRenderer.lines(for: [.error(code: .usage, messages: ["Usage: SRM <roomID> <message>"])])
            == ["Usage: SRM <roomID> <message>"])
        #expect(ReplyRenderer.lines(for: [.error(code: .unknown, messages: [])]) == [])
    }

    @Test(arguments: [
        ServerFrame.ok(kind: "USER", fields: []),
        .ok(kind: "LOGIN", fields: ["yoda"]),
        .ok(kind: "UPD", fields: ["hans", "127.0.0.1", "6001"]),
        .ok(kind: "ATU", fields: ["2"]),
        .ok(kind: "RDM", fields: ["1"]),
        .hello(version: 1),
        .event(kind: "SHUTDOWN", fields: ["The server is shutting down. Goodbye!"]),
        .item(kind: "USER", fields: ["hans", "127.0.0.1", "6001"]),
        .item(kind: "B", fields: ["1", ts, "yoda", "m", "extra"]),
        .item(kind: "S", fields: ["1", "1", ts, "yoda"]),
        .item(kind: "X", fields: ["1"]),
        .ok(kind: "BCM", fields: ["1"]),
        .ok(kind: "SRB", fields: ["1"]),
        .ok(kind: "SRM", fields: ["1", ts]),
        .ok(kind: "OUT", fields: []),
    ])
    func framesThatPrintNothing(_ frame: ServerFrame) {
        #expect(ReplyRenderer.lines(for: [frame]) == [])
    }

    @Test(arguments: [
        (ServerFrame.ok(kind: "BCM", fields: []), true),
        (.error(code: .usage, messages: []), true),
        (.hello(version: 1), true),
        (.item(kind: "B", fields: []), false),
        (.event(kind: "KICKED", fields: []), false),
    ])
    func isFinal(_ frame: ServerFrame, _ final: Bool) {
        #expect(ReplyRenderer.isFinal(frame) == final)
    }
}

@Suite struct MessagesTests {
    @Test func loginStrings() {
        #expect(Messages.usernamePrompt == "Username: ")
        #expect(Messages.passwordPrompt == "Password: ")
        #expect(Messages.welcome == "Welcome to TOOM!")
        #expect(Messages.invalidUsername == "Invalid Username. Please try again")
        #expect(Messages.invalidPassword == "Invalid Password. Please try again")
        #expect(Messages.passwordBlocked == "Invalid Password. Your account has been blocked. Please try again later")
        #expect(Messages.accountBlocked == "Your account is blocked due to multiple login failures. Please try again later")
        #expect(Messages.alreadyLoggedIn("yoda") == "yoda is already logged in")
    }

    @Test func commandErrorStrings() {
        #expect(Messages.roomWithYourself == "You cannot build a separate room with yourself")
        #expect(Messages.doesNotExist("obi") == "obi does not exist")
        #expect(Messages.isOffline("hans") == "hans is offline")
        #expect(Messages.roomExists(2) == "a separate room (ID: 2) already created for these users")
        #expect(Messages.noSuchRoom == "The separate room does not exist")
        #expect(Messages.notMember == "You are not in this separate room chat")
        #expect(Messages.noOtherActiveUser == "no other active user")
        #expect(Messages.noNewMessage == "no new message")
    }

    @Test func serverTerminalStrings() {
        #expect(Messages.serverBroadcast(user: "yoda", number: 1, message: "hi", timestamp: ts)
            == "yoda broadcasted BCM #1 \"hi\" at 1 Jun 2022 21:30:04.")
        #expect(Messages.serverIssued(user: "yoda", command: "ATU") == "yoda issued ATU command")
        #expect(Messages.serverLogin(user: "yoda") == "yoda login")
        #expect(Messages.serverLogout(user: "yoda") == "yoda logout")
    }

    /// Spec §5, SRM row: the server prints
    /// `<user> issued a message in separate room <id>: #<n>; <ts>; <user>; <message>`.
    @Test func serverRoomMessageHasAHashBeforeTheNumber() {
        #expect(Messages.serverRoomMessage(user: "yoda", room: 1,
                                           record: MessageRecord(number: 2, timestamp: ts, user: "yoda", message: "a; b"))
            == "yoda issued a message in separate room 1: #2; 1 Jun 2022 21:30:04; yoda; a; b")
    }
}
