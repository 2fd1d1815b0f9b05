import Foundation
import NIOCore
import ToomCore
import ToomTransfer

/// One client connection as the state sees it. Mutated only under the server's lock.
final class Session: @unchecked Sendable {
    enum Phase: Equatable {
        case greeting
        case username
        case password(String)
        case online(String)
        case closed
    }

    let id: Int
    let channel: Channel
    let address: String
    var phase: Phase = .greeting

    init(id: Int, channel: Channel, address: String) {
        self.id = id
        self.channel = channel
        self.address = address
    }

    var user: String? {
        if case .online(let user) = phase { return user }
        return nil
    }
}

/// What handling one frame produced: replies for the sender, lines for the server's
/// terminal, and whether to close the sender's connection after the replies.
struct Outcome {
    var replies: [ServerFrame] = []
    var console: [String] = []
    var close = false
    /// An RDM to answer from the files once the lock is released.
    var history: HistoryQuery?
    /// With `--sync`: the fsync ticket the replies wait for.
    var durable: GroupCommit.Ticket?
    /// Frames for other sessions (an upload offer for its audience), sent before the replies.
    var notices: [(session: Session, frame: ServerFrame)] = []
    /// A password hash to check off the lock; the frame is then handled again with the result.
    var verify: PasswordVerification.Pending?

    static func error(_ code: ErrorCode, _ messages: String...) -> Outcome {
        Outcome(replies: [.error(code: code, messages: messages)], close: code.endsSession)
    }
}

/// Everything the server knows: accounts, who is online, blocks, rooms, the logs.
/// Not thread-safe: `ChatServer` calls it under one lock, so each command is atomic, and
/// every log line is written before the reply that depends on it is returned.
final class ChatState {
    let configuration: ServerConfiguration
    private var credentialsFile: CredentialsFile
    private var credentials: Credentials { credentialsFile.accounts }
    private var login: LoginPolicy
    private var addresses: AddressPolicy
    private let broadcasts: MessageLog
    private let rooms: RoomRegistry
    private let userLog: UserLog
    private var online: [String: Session] = [:]
    private var clock = TimestampCache()
    /// With `--sync`: the shared fsync that replies to log writes wait for.
    let commit: GroupCommit?

    init(configuration: ServerConfiguration, warn: @escaping (String) -> Void,
         note: @escaping (String) -> Void = { _ in }) throws {
        self.configuration = configuration
        let dir = configuration.dataDirectory
        credentialsFile = try CredentialsFile(path: dir + "/credentials.txt", warn: warn, note: note)
        login = LoginPolicy(attempts: configuration.attempts, blockDuration: configuration.blockDuration)
        addresses = AddressPolicy(limits: configuration.limits)
        commit = configuration.sync ? GroupCommit() : nil
        broadcasts = try MessageLog(path: dir + "/messagelog.txt", commit: commit, warn: warn)
        rooms = try RoomRegistry(directory: dir, commit: commit, warn: warn)
        // Files created just now are durable once their directory is.
        if let commit { commit.wrote(try DirectoryHandle(path: dir)) }
        userLog = try UserLog(path: dir + "/userlog.txt")
    }

    // MARK: Frames

    /// `verified`: the result of checking this frame's password off the lock, when a previous
    /// call asked for it (`Outcome.verify`).
    func handle(_ fields: [Substring], from session: Session, verified: PasswordVerification? = nil) -> Outcome {
        switch session.phase {
        case .greeting: return greet(fields, session)
        case .username: return username(fields, session)
        case .password(let user): return password(fields, user: user, session, verified: verified)
        case .online(let user): return command(fields, user: user, session)
        case .closed: return Outcome(close: true)
        }
    }

    private func greet(_ fields: [Substring], _ session: Session) -> Outcome {
        guard fields.first == "HELLO", fields.count >= 2 else {
            return .error(.badFrame, "Protocol error: the first frame must be HELLO <version>")
        }
        guard Int(fields[1]) == Wire.protocolVersion else {
            return .error(.unsupportedVersion,
                          "This server speaks toom protocol version \(Wire.protocolVersion), the client version \(fields[1]); please use a matching toom client")
        }
        session.phase = .username
        return Outcome(replies: [.hello(version: Wire.protocolVersion)])
    }

    private func username(_ fields: [Substring], _ session: Session) -> Outcome {
        guard fields.first == "USER", fields.count == 2 else {
            return .error(.notLoggedIn, "Please log in first")
        }
        if let refused = refusedAddress(session) { return refused }
        credentialsFile.refresh()
        let user = String(fields[1])
        guard credentials.contains(user) else {
            session.phase = .username
            return failedLogin(session, .error(.invalidUsername, Messages.invalidUsername))
        }
        session.phase = .password(user)
        return Outcome(replies: [.ok(kind: "USER", fields: [])])
    }

    private func password(_ fields: [Substring], user: String, _ session: Session,
                          verified: PasswordVerification?) -> Outcome {
        if fields.first == "USER" { return username(fields, session) }
        guard fields.first == "PASS", fields.count == 3 else {
            return .error(.notLoggedIn, "Please log in first")
        }
        guard let udpPort = Int(fields[2]), (1...65535).contains(udpPort) else {
            return .error(.invalidArgument, "The UDP port must be a number from 1 to 65535")
        }
        if let refused = refusedAddress(session) { return refused }
        let now = NIODeadline.now()
        if login.isBlocked(user, now: now) {
            return .error(.blocked, Messages.accountBlocked)
        }
        credentialsFile.refresh()
        let right: Bool
        switch PasswordVerification.check(String(fields[1]), against: credentials.password(for: user), verified) {
        case .known(let result): right = result
        case .needed(let pending): return Outcome(verify: pending)
        }
        guard right else {
            switch login.recordFailure(user, now: now) {
            case .retry:
                return failedLogin(session, .error(.invalidPassword, Messages.invalidPassword))
            case .blocked:
                var outcome = Outcome.error(.accountBlocked, Messages.passwordBlocked)
                outcome.console = ["\(user) blocked for \(configuration.blockDuration.seconds) seconds after \(login.attempts) failed login attempts"]
                return failedLogin(session, outcome)
            }
        }
        login.recordSuccess(user)
        if online[user] != nil { return .error(.alreadyLoggedIn, Messages.alreadyLoggedIn(user)) }
        let timestamp = clock.format(Timestamp.now())
        do {
            _ = try userLog.add(user: user, timestamp: timestamp, address: session.address, udpPort: udpPort)
        } catch {
            return Outcome(replies: [.error(code: .storage, messages: ["The server could not record your login; please try again later"])],
                           console: ["error: \(error)"])
        }
        online[user] = session
        session.phase = .online(user)
        return Outcome(replies: [.ok(kind: "LOGIN", fields: [user])], console: [Messages.serverLogin(user: user)])
    }

    /// The reply to a login from an address refused for its failed logins, if it is.
    private func refusedAddress(_ session: Session) -> Outcome? {
        guard addresses.isBlocked(session.address, now: .now()) else { return nil }
        return .error(.addressBlocked, "Too many failed logins from your address. Please try again later")
    }

    /// Counts a failed login against the client's address (unknown usernames and wrong
    /// passwords, any account); the one that reaches the limit refuses the address.
    private func failedLogin(_ session: Session, _ outcome: Outcome) -> Outcome {
        guard addresses.recordFailure(session.address, now: .now()) else { return outcome }
        var outcome = outcome
        outcome.console.append("address \(session.address) refused for \(addresses.blockDuration.seconds) seconds after \(addresses.limit) failed logins")
        return outcome
    }

    private func command(_ fields: [Substring], user: String, _ session: Session) -> Outcome {
        switch CommandParser.decode(fields) {
        case .empty:
            return .error(.usage, Command.invalidCommand)
        case .error(let message):
            let code: ErrorCode = message == Command.invalidCommand ? .invalidCommand
                : message.hasPrefix("Usage:") ? .usage : .invalidArgument
            return .error(code, message)
        case .command(let command):
            switch command {
            case .broadcast(let message): return broadcast(message, user: user)
            case .activeUsers: return activeUsers(user: user)
            case .buildRoom(let users): return buildRoom(users, user: user)
            case .roomMessage(let room, let message): return roomMessage(room, message, user: user)
            case .readMessages(let scope, let since): return readMessages(scope, since: since, user: user)
            case .logout: return logout(session, user: user)
            case .upload(let audience, let file): return uploadOffer(audience, file: file, user: user)
            }
        }
    }

    private func broadcast(_ message: String, user: String) -> Outcome {
        let time = Timestamp.now()
        do {
            let record = try broadcasts.append(user: user, message: message, time: time,
                                               timestamp: clock.format(time))
            return Outcome(replies: [.ok(kind: "BCM", fields: [String(record.number), record.timestamp])],
                           console: [Messages.serverBroadcast(user: user, number: record.number, message: message, timestamp: record.timestamp)])
        } catch {
            return storageFailure(error)
        }
    }

    private func activeUsers(user: String) -> Outcome {
        var outcome = Outcome()
        for entry in userLog.entries where entry.user != user {
            outcome.replies.append(.item(kind: "USER", fields: [entry.user, entry.address, String(entry.udpPort), entry.timestamp]))
            outcome.console.append(Messages.activeUser(entry.user, address: entry.address, udpPort: entry.udpPort, since: entry.timestamp))
        }
        outcome.replies.append(.ok(kind: "ATU", fields: [String(outcome.replies.count)]))
        if outcome.console.isEmpty { outcome.console = [Messages.noOtherActiveUser] }
        outcome.console.insert(Messages.serverIssued(user: user, command: "ATU"), at: 0)
        return outcome
    }

    private func buildRoom(_ listed: [String], user: String) -> Outcome {
        var seen = Set<String>()
        let others = listed.filter { seen.insert($0).inserted }
        var outcome: Outcome
        if others.contains(user) {
            outcome = .error(.selfReference, Messages.roomWithYourself)
        } else {
            var problems: [String] = []
            for other in others {
                if !credentials.contains(other) { problems.append(Messages.doesNotExist(other)) }
                else if online[other] == nil { problems.append(Messages.isOffline(other)) }
            }
            let members = [user] + others
            if !problems.isEmpty {
                outcome = Outcome(replies: [.error(code: others.contains(where: { !credentials.contains($0) }) ? .noSuchUser : .offline,
                                                   messages: problems)])
            } else if let existing = rooms.room(withMembers: Set(members)) {
                outcome = .error(.roomExists, Messages.roomExists(existing))
            } else {
                do {
                    let room = try rooms.create(members: members)
                    outcome = Outcome(replies: [.ok(kind: "SRB", fields: [String(room.id)] + room.members)])
                } catch {
                    return storageFailure(error)
                }
            }
        }
        outcome.console = [Messages.serverIssued(user: user, command: "SRB")] + ReplyRenderer.lines(for: outcome.replies)
        return outcome
    }

    private func roomMessage(_ roomText: String, _ message: String, user: String) -> Outcome {
        guard roomText.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let id = Int(roomText),
              let room = rooms.rooms[id]
        else { return .error(.noSuchRoom, Messages.noSuchRoom) }
        guard room.members.contains(user) else { return .error(.notMember, Messages.notMember) }
        let time = Timestamp.now()
        do {
            let record = try rooms.log(of: id).append(user: user, message: message, time: time,
                                                      timestamp: clock.format(time))
            return Outcome(replies: [.ok(kind: "SRM", fields: [String(id), String(record.number), record.timestamp])],
                           console: [Messages.serverRoomMessage(user: user, room: id, record: record)])
        } catch {
            return storageFailure(error)
        }
    }

    private func readMessages(_ scope: Command.ReadScope, since: String, user: String) -> Outcome {
        guard let after = Timestamp.parse(since) else {
            return .error(.invalidArgument, "Error. Invalid timestamp '\(since)': expected \(Timestamp.expectedFormat)")
        }
        // Only the extent of each log is taken under the lock; the lines are read after it.
        var sources: [HistoryQuery.Source] = []
        switch scope {
        case .broadcasts:
            sources = [.init(room: nil, log: broadcasts, end: broadcasts.size)]
        case .rooms:
            for id in rooms.rooms(of: user) {
                if let log = rooms.rooms[id]?.log { sources.append(.init(room: id, log: log, end: log.size)) }
            }
        }
        return Outcome(history: HistoryQuery(user: user, after: after, sources: sources))
    }

    private func logout(_ session: Session, user: String) -> Outcome {
        disconnect(session)
        return Outcome(replies: [.ok(kind: "OUT", fields: [user])], console: [Messages.serverLogout(user: user)], close: true)
    }

    /// UPD: checks the audience and the file name, mints a one-time token, tells the
    /// audience to expect the transfer, and tells the presenter where to send it.
    private func uploadOffer(_ audience: String, file: String, user: String) -> Outcome {
        if audience == user { return .error(.selfReference, Messages.uploadToYourself) }
        guard credentials.contains(audience) else { return .error(.noSuchUser, Messages.doesNotExist(audience)) }
        guard let entry = userLog.record(for: audience), let target = online[audience] else {
            return .error(.offline, Messages.isOffline(audience))
        }
        if let problem = TransferName.problem(file) { return .error(.invalidArgument, problem) }
        let token = TransferToken.random().hex
        return Outcome(replies: [.ok(kind: "UPD", fields: [audience, entry.address, String(entry.udpPort), token])],
                       notices: [(target, .event(kind: EventKind.offer, fields: [user, file, token]))])
    }

    private func storageFailure(_ error: Error) -> Outcome {
        Outcome(replies: [.error(code: .storage, messages: ["Error. The server could not store that; nothing was recorded"])],
                console: ["error: \(error)"])
    }

    // MARK: Sessions

    /// Forgets a session's login (OUT, a dropped connection, a kick). The caller then
    /// has `userlog.txt` rewritten with `flushUserLog`.
    func disconnect(_ session: Session) {
        defer { session.phase = .closed }
        guard let user = session.user, online[user] === session else { return }
        online[user] = nil
        userLog.remove(user: user)
    }

    /// Rewrites `userlog.txt` if users left since it was last written. Returns a line for the
    /// operator when that failed.
    func flushUserLog() -> String? {
        do {
            try userLog.flush()
            return nil
        } catch {
            return "error: \(error)"
        }
    }

    var onlineSessions: [Session] { Array(online.values) }

    func session(of user: String) -> Session? { online[user] }

    func unblock(_ user: String) -> Bool? {
        guard credentials.contains(user) else { return nil }
        return login.unblock(user, now: .now())
    }

    var onlineEntries: [UserLogRecord] { userLog.entries }

    var roomList: [(id: Int, members: [String])] {
        rooms.rooms.values.sorted { $0.id < $1.id }.map { ($0.id, $0.members) }
    }

    var blockedUsers: [(user: String, remaining: TimeAmount)] { login.blocked(now: .now()) }

    /// Logs whose lines are checked in the background after start-up, with their extent now.
    var logsToVerify: [(MessageLog, Int64)] {
        [(broadcasts, broadcasts.size)] + rooms.rooms.keys.sorted().compactMap { id in
            rooms.rooms[id]?.log.map { ($0, $0.size) }
        }
    }
}

extension TimeAmount {
    var seconds: String {
        let value = Double(nanoseconds) / 1e9
        return value == value.rounded() ? String(Int(value)) : String(value)
    }
}

/// RDM's reading, done without the state lock: logs only grow, so the lines up to the
/// extent captured under the lock are fixed.
struct HistoryQuery {
    struct Source {
        let room: Int?
        let log: MessageLog
        let end: Int64
    }

    let user: String
    let after: Int64
    let sources: [Source]

    func answer() -> Outcome {
        var outcome = Outcome()
        do {
            for source in sources {
                for m in try source.log.messages(after: after, end: source.end) {
                    if let room = source.room {
                        outcome.replies.append(.item(kind: "S", fields: [String(room), String(m.number), m.timestamp, m.user, m.message]))
                    } else {
                        outcome.replies.append(.item(kind: "B", fields: [String(m.number), m.timestamp, m.user, m.message]))
                    }
                }
            }
        } catch {
            return Outcome(replies: [.error(code: .storage, messages: ["Error. The server could not read the message history"])],
                           console: ["error: \(error)"])
        }
        outcome.replies.append(.ok(kind: "RDM", fields: [String(outcome.replies.count)]))
        outcome.console = [Messages.serverIssued(user: user, command: "RDM")] + ReplyRenderer.lines(for: outcome.replies)
        return outcome
    }
}
