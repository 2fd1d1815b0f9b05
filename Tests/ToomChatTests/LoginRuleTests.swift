import Testing
import ToomChat
import ToomCore

/// Spec §4 and docs/PROTOCOL.md §3–§4, every rule and string, with a test clock.
@Suite struct LoginRuleTests {
    @Test func aLoginIsRecordedAndWelcomed() {
        var chat = TestChat()
        let id = chat.connect(from: "10.1.2.3")
        #expect(chat.send(id, "HELLO\t1\ttoom") == [.send(id, [.hello(version: 1)])])
        #expect(chat.send(id, "USER\thans") == [.send(id, [.ok(kind: "USER", fields: [])])])
        let pass = chat.core.receive(["PASS", "falcon*solo", "6001"], from: id, at: chat.now)
        #expect(pass == [.verifyPassword(id, candidate: "falcon*solo", stored: .plain("falcon*solo"))])
        // Frames wait while the password is checked.
        #expect(chat.core.receive(["ATU"], from: id, at: chat.now) == [])
        let record = UserLogRecord(sequence: 1, timestamp: chat.timestamp, user: "hans", address: "10.1.2.3", udpPort: 6001)
        #expect(chat.core.passwordChecked(id, matches: true, at: chat.now) == [
            .write(.login(record), by: id), .loggedIn(id, user: "hans"),
            .send(id, [.ok(kind: "LOGIN", fields: ["hans"])]), .print(["hans login"]),
        ])
        #expect(chat.core.onlineUsers == [record])
    }

    @Test func theFirstFrameMustBeAHelloOfVersionOne() {
        var chat = TestChat()
        let a = chat.connect()
        #expect(chat.send(a, "USER\thans") == [
            .send(a, [error(.badFrame, "Protocol error: the first frame must be HELLO <version>")]), .close(a)])
        let b = chat.connect()
        #expect(chat.send(b, "HELLO\t2\ttoom") == [
            .send(b, [error(.unsupportedVersion, "This server speaks toom protocol version 1, the client version 2; please use a matching toom client")]),
            .close(b)])
        let c = chat.connect()
        #expect(chat.send(c, "HELLO\t01") == [.send(c, [.hello(version: 1)])])
    }

    @Test func liveIsGrantedOnlyWhenAskedFor() {
        var chat = TestChat()
        let a = chat.connect()
        #expect(chat.send(a, "HELLO\t1\ttoom\tlive\tsomething-new") == [.send(a, [.hello(version: 1, capabilities: ["live"])])])
        let b = chat.connect()
        // "live" in the agent's place is an agent name, not a capability.
        #expect(chat.send(b, "HELLO\t1\tlive") == [.send(b, [.hello(version: 1)])])
    }

    @Test func anUnknownUsernameIsAskedAgainAndNotCountedAgainstTheAccount() {
        var chat = TestChat(attempts: 1)
        let id = chat.connect()
        chat.send(id, "HELLO\t1")
        for _ in 0..<5 {
            #expect(chat.send(id, "USER\tnobody") == [.send(id, [error(.invalidUsername, "Invalid Username. Please try again")])])
        }
        chat.send(id, "USER\thans")
        #expect(chat.send(id, "PASS\tfalcon*solo\t6000").frames(to: id) == [.ok(kind: "LOGIN", fields: ["hans"])])
    }

    @Test func beforeLoginOnlyUserAndPassAreAnswered() {
        var chat = TestChat()
        let id = chat.connect()
        chat.send(id, "HELLO\t1")
        #expect(chat.send(id, "ATU") == [.send(id, [error(.notLoggedIn, "Please log in first")])])
        #expect(chat.send(id, "PASS\tx\t6000") == [.send(id, [error(.notLoggedIn, "Please log in first")])])
        chat.send(id, "USER\thans")
        #expect(chat.send(id, "PASS\tx") == [.send(id, [error(.notLoggedIn, "Please log in first")])])
        #expect(chat.send(id, "PASS\tx\t0") == [.send(id, [error(.invalidArgument, "The UDP port must be a number from 1 to 65535")])])
        #expect(chat.send(id, "PASS\tx\t65536") == [.send(id, [error(.invalidArgument, "The UDP port must be a number from 1 to 65535")])])
        // USER in the password state starts over with another account.
        #expect(chat.send(id, "USER\tyoda") == [.send(id, [.ok(kind: "USER", fields: [])])])
        #expect(chat.send(id, "PASS\twise@!man\t6000").frames(to: id) == [.ok(kind: "LOGIN", fields: ["yoda"])])
    }

    @Test func theAttemptsThWrongPasswordBlocksTheAccountForTenSeconds() {
        var chat = TestChat(attempts: 3)
        let id = chat.atPassword("vader")
        for _ in 0..<2 {
            #expect(chat.send(id, "PASS\twrong\t6000") == [.send(id, [error(.invalidPassword, "Invalid Password. Please try again")])])
        }
        #expect(chat.send(id, "PASS\twrong\t6000") == [
            .send(id, [error(.accountBlocked, "Invalid Password. Your account has been blocked. Please try again later")]),
            .close(id), .print(["vader blocked for 10 seconds after 3 failed login attempts"])])

        // Every connection, every address, even with the right password.
        let other = chat.atPassword("vader", from: "192.168.9.9")
        chat.advance(.milliseconds(9_999))
        #expect(chat.send(other, "PASS\tsithlord**\t6000") == [
            .send(other, [error(.blocked, "Your account is blocked due to multiple login failures. Please try again later")]),
            .close(other)])

        // Tries during the block did not extend it.
        chat.advance(.milliseconds(1))
        let third = chat.atPassword("vader")
        #expect(chat.send(third, "PASS\tsithlord**\t6000").frames(to: third) == [.ok(kind: "LOGIN", fields: ["vader"])])
        #expect(chat.core.blocked(at: chat.now).isEmpty)
    }

    @Test func failedTriesDuringABlockAreNotCounted() {
        var chat = TestChat(attempts: 2)
        let a = chat.atPassword("luke")
        chat.send(a, "PASS\tx\t6000")
        chat.send(a, "PASS\tx\t6000")
        for _ in 0..<5 {
            let b = chat.atPassword("luke")
            #expect(chat.send(b, "PASS\tx\t6000").frames(to: b) == [error(.blocked, Messages.accountBlocked)])
        }
        chat.advance(.seconds(10))
        let c = chat.atPassword("luke")
        // The count starts again from zero after the block: one try left, not none.
        #expect(chat.send(c, "PASS\tx\t6000").frames(to: c) == [error(.invalidPassword, Messages.invalidPassword)])
    }

    @Test func aSuccessResetsTheCount() {
        var chat = TestChat(attempts: 3)
        for _ in 0..<3 {
            let id = chat.atPassword("hans")
            chat.send(id, "PASS\tx\t6000")
            chat.send(id, "PASS\tx\t6000")
            #expect(chat.send(id, "PASS\tfalcon*solo\t6000").frames(to: id) == [.ok(kind: "LOGIN", fields: ["hans"])])
            chat.send(id, "OUT")
        }
    }

    @Test func aBlockThatCameWhileThePasswordWasCheckedRefusesTheLogin() {
        var chat = TestChat(attempts: 1)
        let a = chat.atPassword("hans")
        #expect(chat.core.receive(["PASS", "falcon*solo", "6000"], from: a, at: chat.now).count == 1)
        let b = chat.atPassword("hans")
        chat.send(b, "PASS\twrong\t6000")
        #expect(chat.core.passwordChecked(a, matches: true, at: chat.now).frames(to: a) == [error(.blocked, Messages.accountBlocked)])
    }

    @Test func aUserOnlineElsewhereIsRefused() {
        var chat = TestChat()
        _ = chat.login("hans")
        let id = chat.atPassword("hans")
        #expect(chat.send(id, "PASS\tfalcon*solo\t6000") == [
            .send(id, [error(.alreadyLoggedIn, "hans is already logged in")]), .close(id)])
    }

    @Test func aConnectionMustLogInBeforeItsDeadline() {
        var chat = TestChat()
        let slow = chat.connect()
        let quick = chat.connect()
        chat.send(slow, "HELLO\t1")
        chat.send(quick, "HELLO\t1")
        chat.send(quick, "USER\thans")
        chat.send(quick, "PASS\tfalcon*solo\t6000")
        chat.advance(.milliseconds(59_999))
        #expect(chat.core.loginDeadline(slow, at: chat.now) == [])
        chat.advance(.milliseconds(1))
        #expect(chat.core.loginDeadline(slow, at: chat.now) == [
            .send(slow, [error(.loginTimeout, "Login timed out: no login within 60 seconds. Please connect again")]), .close(slow)])
        #expect(chat.core.loginDeadline(quick, at: chat.now) == [])
    }

    /// The login timeout measures the client, not the server: a password check that outlasts
    /// it is answered, and only a wrong password then ends the session.
    @Test func aSlowPasswordCheckIsAnsweredBeforeTheDeadlineCounts() {
        var chat = TestChat()
        let right = chat.atPassword("hans")
        let wrong = chat.atPassword("yoda")
        let timeout = error(.loginTimeout, "Login timed out: no login within 60 seconds. Please connect again")
        #expect(chat.core.receive(["PASS", "falcon*solo", "6000"], from: right, at: chat.now).count == 1)
        #expect(chat.core.receive(["PASS", "not it", "6000"], from: wrong, at: chat.now).count == 1)
        chat.advance(.seconds(90))
        #expect(chat.core.loginDeadline(right, at: chat.now) == [])
        #expect(chat.core.loginDeadline(wrong, at: chat.now) == [])
        #expect(chat.core.passwordChecked(right, matches: true, at: chat.now).frames(to: right)
                    == [.ok(kind: "LOGIN", fields: ["hans"])])
        #expect(chat.core.passwordChecked(wrong, matches: false, at: chat.now) == [
            .send(wrong, [error(.invalidPassword, Messages.invalidPassword)]), .send(wrong, [timeout]), .close(wrong)])
        // Before the deadline a wrong password leaves the usual tries.
        let early = chat.atPassword("vader")
        #expect(chat.send(early, "PASS\tx\t6000") == [.send(early, [error(.invalidPassword, Messages.invalidPassword)])])
        #expect(chat.core.loginDeadline(early, at: chat.now) == [])
    }

    @Test func anAddressWithTooManyFailuresIsRefusedForAWhile() {
        var chat = TestChat(attempts: 5, addressFailures: 3)
        let id = chat.connect(from: "10.6.6.6")
        chat.send(id, "HELLO\t1")
        chat.send(id, "USER\tnobody")
        chat.send(id, "USER\thans")
        chat.send(id, "PASS\tx\t6000")
        // The third failure, any account, unknown names included, refuses the address.
        #expect(chat.send(id, "USER\tghost") == [
            .send(id, [error(.invalidUsername, Messages.invalidUsername)]),
            .print(["address 10.6.6.6 refused for 60 seconds after 3 failed logins"])])
        #expect(chat.send(id, "USER\thans") == [
            .send(id, [error(.addressBlocked, "Too many failed logins from your address. Please try again later")]), .close(id)])
        _ = chat.login("yoda", from: "10.7.7.7")
        chat.advance(.seconds(60))
        _ = chat.login("hans", from: "10.6.6.6")
    }

    @Test func credentialsThatChangeTakeEffectForTheNextLogin() {
        var chat = TestChat()
        var accounts = TestChat.accounts
        accounts["leia"] = "rebel"
        chat.core.accountsChanged(accounts.mapValues { .plain($0) })
        let id = chat.atPassword("leia")
        #expect(chat.send(id, "PASS\trebel\t6000").frames(to: id) == [.ok(kind: "LOGIN", fields: ["leia"])])
    }

    @Test func theOperatorUnblocksAnAccount() {
        var chat = TestChat(attempts: 1)
        let id = chat.atPassword("luke")
        chat.send(id, "PASS\tx\t6000")
        #expect(chat.core.blocked(at: chat.now).map(\.user) == ["luke"])
        #expect(chat.core.unblock("luke", at: chat.now) == .unblocked)
        #expect(chat.core.unblock("luke", at: chat.now) == .notBlocked)
        #expect(chat.core.unblock("nobody", at: chat.now) == .noSuchUser)
        _ = chat.login("luke")
    }
}
