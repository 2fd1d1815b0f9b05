import OrderedCollections
import ToomCore

/// Every chat rule of spec §4, §5 and §8: login, blocks, commands, rooms, who receives
/// which delivery, flood control. Pure: no sockets, no files, no clock. Each input comes
/// with the time and returns what must happen, in order (`ChatAction`). The server runs it
/// under one lock and carries the actions out; tests run it with a test clock.
public struct ChatCore {
    struct Session {
        enum Phase: Equatable {
            case greeting
            case username
            case password(String)
            /// The password is being checked off the event loops; frames wait.
            case verifying(user: String, udpPort: UInt16)
            /// Shared store: the password matched and the login is being committed; frames wait.
            case joining(String)
            case online(String)
            case closed
        }

        // In this order the fields pack into 80 bytes (120 otherwise): a server holds one
        // per connection, in a dictionary.
        var phase: Phase = .greeting
        var live = false
        let address: String
        let connected: Duration
        var flood: FloodControl?

        var user: String? {
            if case .online(let user) = phase { return user }
            return nil
        }
    }

    public let settings: ChatSettings
    private let floodLimits: FloodControl.Limits
    private var accounts: [String: StoredPassword]
    private var login: LoginPolicy
    private var addresses: AddressPolicy
    private var sessions: [SessionID: Session] = [:]
    private var online: [String: SessionID] = [:]
    /// The online sessions that asked for live delivery, in login order.
    private var live = OrderedSet<SessionID>()
    /// Who is online, in login order, numbered as in `userlog.txt`.
    public private(set) var onlineUsers: [UserLogRecord] = []
    private var rooms: RoomDirectory
    private var lastBroadcast: Int
    private var timestamps = TimestampCache()
    private var random: any RandomNumberGenerator
    private var stopping = false
    /// The record is shared by several servers (`ChatSnapshot.shared`).
    public let shared: Bool
    /// Shared store: the users online on other servers, as the store last reported them.
    private var elsewhere: [UserLogRecord] = []
    private var elsewhereByUser: [String: UserLogRecord] = [:]
    /// Sessions granted `p2p` (spec §12), apart from `sessions` so that the others stay small.
    private var peers: [SessionID: TransferPeer] = [:]

    struct TransferPeer {
        /// The client's X25519 public key, 64 hex digits, from PASS.
        var key: String?
        var registered = false
        /// Where its UDP port was seen and its own addresses, from its registrations.
        var candidates: [TransferCandidate] = []
    }

    /// `accounts` maps usernames to their stored passwords (as typed, or a hash).
    public init(settings: ChatSettings, accounts: [String: StoredPassword], snapshot: ChatSnapshot = ChatSnapshot(),
                random: any RandomNumberGenerator = SystemRandomNumberGenerator()) {
        self.settings = settings
        floodLimits = FloodControl.Limits(rate: settings.messageRate, burst: settings.messageBurst)
        self.accounts = accounts
        login = LoginPolicy(attempts: settings.attempts, blockDuration: settings.blockDuration)
        addresses = AddressPolicy(limit: settings.addressFailures, window: settings.addressWindow,
                                  blockDuration: settings.addressBlockDuration)
        rooms = RoomDirectory(snapshot.rooms)
        lastBroadcast = snapshot.lastBroadcast
        shared = snapshot.shared
        self.random = random
    }

    // MARK: Connections

    public mutating func connect(_ id: SessionID, address: String, at now: Moment) -> [ChatAction] {
        if stopping { return [.close(id)] }
        sessions[id] = Session(address: address, connected: now.monotonic)
        return [.loginDeadline(id, at: now.monotonic + settings.loginTimeout)]
    }

    /// The connection closed (the client left, the network dropped it).
    public mutating func disconnected(_ id: SessionID, at now: Moment) -> [ChatAction] {
        guard let session = sessions.removeValue(forKey: id), let user = session.user else {
            peers[id] = nil
            return []
        }
        return logout(user) + [.print(["\(user) disconnected"])]
    }

    /// The session's client registered its UDP port (spec §12): where the server saw it
    /// first, then the addresses the client has.
    public mutating func registered(_ id: SessionID, candidates: [TransferCandidate]) {
        guard peers[id] != nil else { return }
        peers[id]?.registered = true
        peers[id]?.candidates = candidates
    }

    /// The login timer of a session ran out. It measures the client's delay, not the
    /// server's: a password being checked or a login being committed is answered first, and
    /// a wrong password then ends the session if its time is up.
    public mutating func loginDeadline(_ id: SessionID, at now: Moment) -> [ChatAction] {
        guard let session = sessions[id], session.user == nil, loginExpired(session, now) else { return [] }
        switch session.phase {
        case .verifying, .joining, .closed: return []
        default: return refuse(id, .loginTimeout, loginTimeoutNotice)
        }
    }

    private func loginExpired(_ session: Session, _ now: Moment) -> Bool {
        now.monotonic >= session.connected + settings.loginTimeout
    }

    private var loginTimeoutNotice: String {
        "Login timed out: no login within \(settings.loginTimeout.secondsText) seconds. Please connect again"
    }

    /// A client that left `unread` bytes unread past the limit.
    public mutating func tooSlow(_ id: SessionID, unread: Int, at now: Moment) -> [ChatAction] {
        guard let session = sessions[id], session.phase != .closed else { return [] }
        sessions[id]?.phase = .closed
        let who = session.user ?? "a connection from \(session.address)"
        var actions: [ChatAction] = []
        if let user = session.user { actions = logout(user) }
        actions += [.send(id, [.event(kind: EventKind.tooSlow, fields: [
                        "You were disconnected: your client left \(unread) bytes unread"])]),
                    .close(id),
                    .print(["\(who) disconnected: not reading what it is sent (\(unread) bytes unread)"])]
        return actions
    }

    /// Graceful stop: every session is told and closed, everyone logged out; frames that
    /// still arrive close their connection without a reply.
    public mutating func shutdown(at now: Moment) -> [ChatAction] {
        stopping = true
        var actions: [ChatAction] = []
        for (id, session) in sessions.sorted(by: { $0.key < $1.key }) where session.phase != .closed {
            sessions[id]?.phase = .closed
            if let user = session.user { actions += logout(user) }
            actions += [.send(id, [.event(kind: EventKind.shutdown, fields: [Messages.serverShutdown])]), .close(id)]
        }
        return actions
    }

    // MARK: Frames

    public mutating func receive(_ fields: [Substring], from id: SessionID, at now: Moment) -> [ChatAction] {
        guard let session = sessions[id] else { return [] }
        if stopping { return [.close(id)] }
        switch session.phase {
        case .greeting: return greet(fields, id)
        case .username: return username(fields, id, session, now)
        case .password(let user): return password(fields, user: user, id, session, now)
        case .online(let user): return command(fields, user: user, id, now)
        case .verifying, .joining, .closed: return []  // the server offers no frame meanwhile
        }
    }

    private mutating func greet(_ fields: [Substring], _ id: SessionID) -> [ChatAction] {
        guard fields.first == "HELLO", fields.count >= 2 else {
            return refuse(id, .badFrame, "Protocol error: the first frame must be HELLO <version>")
        }
        guard Int(fields[1]) == Wire.protocolVersion else {
            return refuse(id, .unsupportedVersion,
                          "This server speaks toom protocol version \(Wire.protocolVersion), the client version \(fields[1]); please use a matching toom client")
        }
        // Capabilities follow the agent field; unknown ones are not granted.
        let asked = fields.dropFirst(3)
        let live = asked.contains(Substring(Capability.live))
        let p2p = settings.rendezvous && asked.contains(Substring(Capability.p2p))
        sessions[id]?.live = live
        sessions[id]?.phase = .username
        if p2p { peers[id] = TransferPeer() }
        let granted = (live ? [Capability.live] : []) + (p2p ? [Capability.p2p] : [])
        return [.send(id, [.hello(version: Wire.protocolVersion, capabilities: granted)])]
    }

    private mutating func username(_ fields: [Substring], _ id: SessionID, _ session: Session, _ now: Moment) -> [ChatAction] {
        guard fields.first == "USER", fields.count == 2 else { return reply(id, .notLoggedIn, "Please log in first") }
        if let refused = refusedAddress(id, session, now) { return refused }
        let user = String(fields[1])
        guard accounts[user] != nil else {
            sessions[id]?.phase = .username
            return failedLogin(id, session, now, reply(id, .invalidUsername, Messages.invalidUsername))
        }
        sessions[id]?.phase = .password(user)
        return [.send(id, [.ok(kind: "USER", fields: [])])]
    }

    private mutating func password(_ fields: [Substring], user: String, _ id: SessionID, _ session: Session,
                                   _ now: Moment) -> [ChatAction] {
        if fields.first == "USER" { return username(fields, id, session, now) }
        // A `p2p` client adds its X25519 public key.
        let keyed = peers[id] != nil
        guard fields.first == "PASS", fields.count == 3 || (keyed && fields.count == 4) else {
            return reply(id, .notLoggedIn, "Please log in first")
        }
        guard let udpPort = Int(fields[2]), (1...65535).contains(udpPort) else {
            return reply(id, .invalidArgument, "The UDP port must be a number from 1 to 65535")
        }
        if fields.count == 4 {
            guard Hex.decode(fields[3], count: 32) != nil else {
                return reply(id, .invalidArgument, "The transfer key must be 64 lower-case hex digits")
            }
            peers[id]?.key = String(fields[3])
        }
        if let refused = refusedAddress(id, session, now) { return refused }
        if login.isBlocked(user, now: now.monotonic) { return refuse(id, .blocked, Messages.accountBlocked) }
        guard let stored = accounts[user] else {
            // The account went away with a reload of credentials.txt.
            sessions[id]?.phase = .username
            return reply(id, .invalidUsername, Messages.invalidUsername)
        }
        sessions[id]?.phase = .verifying(user: user, udpPort: UInt16(udpPort))
        return [.verifyPassword(id, candidate: String(fields[1]), stored: stored)]
    }

    /// The answer to `verifyPassword`.
    public mutating func passwordChecked(_ id: SessionID, matches: Bool, at now: Moment) -> [ChatAction] {
        guard let session = sessions[id], case .verifying(let user, let udpPort) = session.phase else { return [] }
        sessions[id]?.phase = .password(user)
        // Blocked meanwhile, by failures on other connections: refused even if right.
        if login.isBlocked(user, now: now.monotonic) { return refuse(id, .blocked, Messages.accountBlocked) }
        guard matches else {
            switch login.recordFailure(user, now: now.monotonic) {
            case .retry:
                var actions = reply(id, .invalidPassword, Messages.invalidPassword)
                // The login timer fired while the check ran: no further try.
                if loginExpired(session, now) { actions += refuse(id, .loginTimeout, loginTimeoutNotice) }
                return failedLogin(id, session, now, actions)
            case .blocked:
                // With a shared store the block holds on every server.
                let shared: [ChatAction] = self.shared
                    ? [.write(.block(user: user, seconds: Double(settings.blockDuration.components.seconds)
                                       + Double(settings.blockDuration.components.attoseconds) / 1e18), by: nil)]
                    : []
                return failedLogin(id, session, now, shared + refuse(id, .accountBlocked, Messages.passwordBlocked)
                    + [.print(["\(user) blocked for \(settings.blockDuration.secondsText) seconds after \(login.attempts) failed login attempts"])])
            }
        }
        login.recordSuccess(user)
        // With a shared store, online elsewhere is for the commit to decide: the list of
        // other servers' users may be a moment old.
        if online[user] != nil { return refuse(id, .alreadyLoggedIn, Messages.alreadyLoggedIn(user)) }
        let record = UserLogRecord(sequence: onlineUsers.count + 1, timestamp: timestamps.format(now.wall), user: user,
                                   address: session.address, udpPort: Int(udpPort))
        if shared {
            // Online on no other server is decided by the commit; the session waits for it.
            sessions[id]?.phase = .joining(user)
            return [.write(.login(record), by: id)]
        }
        return joined(id, record, session, now)
    }

    /// The login is recorded: the session is online.
    private mutating func joined(_ id: SessionID, _ record: UserLogRecord, _ session: Session, _ now: Moment) -> [ChatAction] {
        let user = record.user
        var record = record
        record.sequence = onlineUsers.count + 1
        onlineUsers.append(record)
        online[user] = id
        if session.live { live.append(id) }
        sessions[id]?.phase = .online(user)
        let limits = floodLimits
        sessions[id]?.flood = FloodControl(limits, now: now.monotonic)
        var rendezvous: [ChatAction] = []
        var fields = [user]
        if peers[id]?.key != nil {
            // The client registers its UDP port with these (spec §12); only it learns the secret.
            let registration = random.next() as UInt64
            var secret: [UInt8] = []
            for _ in 0..<4 { withUnsafeBytes(of: random.next() as UInt64) { secret += $0 } }
            rendezvous = [.rendezvous(.open(id, registration: registration, secret: secret))]
            fields += [Hex.encode(withUnsafeBytes(of: registration.bigEndian) { Array($0) }), Hex.encode(secret)]
        } else {
            peers[id] = nil
        }
        let welcome: [ChatAction] = rendezvous + [.loggedIn(id, user: user), .send(id, [.ok(kind: "LOGIN", fields: fields)]),
                                                  .print([Messages.serverLogin(user: user)])]
        return shared ? welcome : [.write(.login(record), by: id)] + welcome
    }

    /// The reply to a login from an address refused for its failed logins, if it is.
    private mutating func refusedAddress(_ id: SessionID, _ session: Session, _ now: Moment) -> [ChatAction]? {
        guard addresses.isBlocked(session.address, now: now.monotonic) else { return nil }
        return refuse(id, .addressBlocked, "Too many failed logins from your address. Please try again later")
    }

    /// Counts a failed login against the client's address (unknown usernames and wrong
    /// passwords, any account); the one that reaches the limit refuses the address.
    private mutating func failedLogin(_ id: SessionID, _ session: Session, _ now: Moment,
                                      _ actions: [ChatAction]) -> [ChatAction] {
        guard addresses.recordFailure(session.address, now: now.monotonic) else { return actions }
        return actions + [.print(["address \(session.address) refused for \(addresses.blockDuration.secondsText) seconds after \(addresses.limit) failed logins"])]
    }

    // MARK: Commands

    private mutating func command(_ fields: [Substring], user: String, _ id: SessionID, _ now: Moment) -> [ChatAction] {
        switch CommandParser.decode(fields) {
        case .empty:
            return reply(id, .usage, Command.invalidCommand)
        case .error(let message):
            let code: ErrorCode = message == Command.invalidCommand ? .invalidCommand
                : message.hasPrefix("Usage:") ? .usage : .invalidArgument
            return reply(id, code, message)
        case .command(let command):
            switch command {
            case .broadcast, .roomMessage, .buildRoom:
                // What reaches other users' screens is what flood control meters.
                let limits = floodLimits
                if let due = sessions[id]?.flood?.take(now: now.monotonic, limits) { return [.hold(id, until: due)] }
            default:
                break
            }
            switch command {
            case .broadcast(let message): return broadcast(message, user: user, id, now)
            case .activeUsers: return activeUsers(user: user, id)
            case .buildRoom(let users): return buildRoom(users, user: user, id)
            case .roomMessage(let room, let message): return roomMessage(room, message, user: user, id, now)
            case .readMessages(let scope, let since): return readMessages(scope, since: since, user: user, id)
            case .logout: return logoutCommand(user: user, id)
            case .upload(let audience, let file): return uploadOffer(audience, file: file, user: user, id)
            }
        }
    }

    private mutating func broadcast(_ message: String, user: String, _ id: SessionID, _ now: Moment) -> [ChatAction] {
        if shared {
            // The store numbers it at commit; the reply follows the commit (`committed`).
            let record = MessageRecord(number: 0, timestamp: timestamps.format(now.wall), user: user, message: message)
            return [.write(.broadcast(record, time: now.wall), by: id)]
        }
        lastBroadcast += 1
        let record = MessageRecord(number: lastBroadcast, timestamp: timestamps.format(now.wall), user: user, message: message)
        let number = String(record.number)
        return [.write(.broadcast(record, time: now.wall), by: id),
                .send(id, [.ok(kind: "BCM", fields: [number, record.timestamp])]),
                .deliver(live.filter { $0 != id },
                         .event(kind: EventKind.broadcast, fields: [number, record.timestamp, user, message])),
                .print([Messages.serverBroadcast(user: user, number: record.number, message: message, timestamp: record.timestamp)])]
    }

    private func activeUsers(user: String, _ id: SessionID) -> [ChatAction] {
        var replies: [ServerFrame] = []
        var lines = [Messages.serverIssued(user: user, command: "ATU")]
        for entry in onlineUsers + elsewhere where entry.user != user && (entry.sequence > 0 || online[entry.user] == nil) {
            replies.append(.item(kind: "USER", fields: [entry.user, entry.address, String(entry.udpPort), entry.timestamp]))
            lines.append(Messages.activeUser(entry.user, address: entry.address, udpPort: entry.udpPort, since: entry.timestamp))
        }
        if replies.isEmpty { lines.append(Messages.noOtherActiveUser) }
        replies.append(.ok(kind: "ATU", fields: [String(replies.count)]))
        return [.send(id, replies), .print(lines)]
    }

    private mutating func buildRoom(_ listed: [String], user: String, _ id: SessionID) -> [ChatAction] {
        var seen = Set<String>()
        let others = listed.filter { seen.insert($0).inserted }
        let issued = Messages.serverIssued(user: user, command: "SRB")
        func refused(_ frame: ServerFrame) -> [ChatAction] {
            [.send(id, [frame]), .print([issued] + ReplyRenderer.lines(for: [frame]))]
        }
        if others.contains(user) { return refused(.error(code: .selfReference, messages: [Messages.roomWithYourself])) }
        var problems: [String] = []
        for other in others {
            if accounts[other] == nil { problems.append(Messages.doesNotExist(other)) }
            else if online[other] == nil && elsewhereByUser[other] == nil { problems.append(Messages.isOffline(other)) }
        }
        if !problems.isEmpty {
            let code: ErrorCode = others.contains(where: { accounts[$0] == nil }) ? .noSuchUser : .offline
            return refused(.error(code: code, messages: problems))
        }
        let members = [user] + others
        if let existing = rooms.room(withMembers: Set(members)) {
            return refused(.error(code: .roomExists, messages: [Messages.roomExists(existing)]))
        }
        if shared { return [.write(.room(RoomRecord(id: 0, members: members)), by: id)] }
        let record = rooms.proposed(members: members)
        rooms.add(record)
        let built = ServerFrame.ok(kind: "SRB", fields: [String(record.id)] + members)
        return [.write(.room(record), by: id), .send(id, [built]),
                .deliver(liveSessions(of: others, except: id),
                         .event(kind: EventKind.roomBuilt, fields: [String(record.id)] + members)),
                .print([issued] + ReplyRenderer.lines(for: [built]))]
    }

    private mutating func roomMessage(_ roomText: String, _ message: String, user: String, _ id: SessionID,
                                      _ now: Moment) -> [ChatAction] {
        guard roomText.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let room = Int(roomText),
              let members = rooms.rooms[room]?.members
        else { return reply(id, .noSuchRoom, Messages.noSuchRoom) }
        guard members.contains(user) else { return reply(id, .notMember, Messages.notMember) }
        if shared {
            let record = MessageRecord(number: 0, timestamp: timestamps.format(now.wall), user: user, message: message)
            return [.write(.roomMessage(room: room, record, time: now.wall), by: id)]
        }
        let record = MessageRecord(number: rooms.nextMessage(in: room), timestamp: timestamps.format(now.wall),
                                   user: user, message: message)
        let number = String(record.number)
        return [.write(.roomMessage(room: room, record, time: now.wall), by: id),
                .send(id, [.ok(kind: "SRM", fields: [String(room), number, record.timestamp])]),
                .deliver(liveSessions(of: members, except: id),
                         .event(kind: EventKind.roomMessage, fields: [String(room), number, record.timestamp, user, message])),
                .print([Messages.serverRoomMessage(user: user, room: room, record: record)])]
    }

    private func readMessages(_ scope: Command.ReadScope, since: String, user: String, _ id: SessionID) -> [ChatAction] {
        guard let after = Timestamp.parse(since) else {
            return reply(id, .invalidArgument, "Error. Invalid timestamp '\(since)': expected \(Timestamp.expectedFormat)")
        }
        let sources: [HistoryRequest.Source]
        // A shared store answers with everything committed when it reads: other servers may
        // have stored messages this one has not heard of yet.
        switch scope {
        case .broadcasts:
            sources = [.init(room: nil, through: shared ? .max : lastBroadcast)]
        case .rooms:
            sources = rooms.rooms(of: user).compactMap { room in
                rooms.rooms[room].map { .init(room: room, through: shared ? .max : $0.lastMessage) }
            }
        }
        return [.print([Messages.serverIssued(user: user, command: "RDM")]),
                .readHistory(id, HistoryRequest(user: user, after: after, sources: sources.filter { $0.through > 0 }))]
    }

    private mutating func logoutCommand(user: String, _ id: SessionID) -> [ChatAction] {
        sessions[id]?.phase = .closed
        return logout(user) + [.send(id, [.ok(kind: "OUT", fields: [user])]), .print([Messages.serverLogout(user: user)]),
                               .close(id)]
    }

    /// UPD: checks the audience and the file name, mints a one-time token and a key, tells
    /// the audience to expect the transfer, then tells the presenter where to send it.
    private mutating func uploadOffer(_ audience: String, file: String, user: String, _ id: SessionID) -> [ChatAction] {
        if audience == user { return reply(id, .selfReference, Messages.uploadToYourself) }
        guard accounts[audience] != nil else { return reply(id, .noSuchUser, Messages.doesNotExist(audience)) }
        let target = online[audience]
        guard let entry = target != nil ? onlineUsers.first(where: { $0.user == audience }) : elsewhereByUser[audience] else {
            return reply(id, .offline, Messages.isOffline(audience))
        }
        if let problem = TransferName.problem(file) { return reply(id, .invalidArgument, problem) }
        let minted = TransferToken(high: random.next(), low: random.next())
        let token = minted.hex
        if let target, let presenterKey = peers[id]?.key, let audienceKey = peers[target]?.key {
            // Both clients agree the key themselves; each learns the other's public key and
            // where it may be reached, and the server may relay what finds no direct path.
            let relay = settings.relay ? "relay" : "norelay"
            let offer = ServerFrame.event(kind: EventKind.offer, fields: [user, file, token, "x25519:" + presenterKey, relay]
                                          + candidates(of: id, entry: onlineUsers.first { $0.user == user }))
            return [.rendezvous(.introduce(transfer: minted.id, presenter: id, audience: target)),
                    .send(target, [offer]),
                    .send(id, [.ok(kind: "UPD", fields: [audience, entry.address, String(entry.udpPort), token,
                                                          "x25519:" + audienceKey, relay] + candidates(of: target, entry: entry))])]
        }
        // The transfer's AES-256-GCM key: only the two clients, over their connections, learn it.
        let key = TransferToken(high: random.next(), low: random.next()).hex + TransferToken(high: random.next(), low: random.next()).hex
        let offer = ServerFrame.event(kind: EventKind.offer, fields: [user, file, token, key])
        // An audience on another server is told through that server (a shared store).
        return [target.map { .send($0, [offer]) } ?? .forward(user: audience, [offer]),
                .send(id, [.ok(kind: "UPD", fields: [audience, entry.address, String(entry.udpPort), token, key])])]
    }

    /// Where a `p2p` session's client may be reached: what its registrations said, then
    /// the address of its connection with the UDP port it gave at login.
    private func candidates(of id: SessionID, entry: UserLogRecord?) -> [String] {
        var list = peers[id]?.candidates ?? []
        if let entry, let declared = TransferCandidate(host: entry.address, port: entry.udpPort), !list.contains(declared) {
            list.append(declared)
        }
        return list.prefix(TransferCandidate.maxListed).map(\.description)
    }

    // MARK: The store's answer

    /// A write failed: nothing of it counts, and its issuer is told. The actions that
    /// followed the write in its step are dropped by the caller.
    public mutating func writeFailed(_ write: StoreWrite, by id: SessionID?, error: String, at now: Moment) -> [ChatAction] {
        if shared { return sharedWriteFailed(write, by: id, error: error, at: now) }
        var actions: [ChatAction] = [.print(["error: \(error)"])]
        switch write {
        case .broadcast:
            lastBroadcast -= 1
        case .roomMessage(let room, _, _):
            rooms.unnumber(in: room)
        case .room(let record):
            rooms.removeNewest(record.id)
        case .login(let record):
            onlineUsers.removeAll { $0.user == record.user }
            if let id = online.removeValue(forKey: record.user) { live.remove(id) }
            if let id { sessions[id]?.phase = .password(record.user) }
            if let id { actions.append(.send(id, [.error(code: .storage, messages: ["The server could not record your login; please try again later"])])) }
            return actions
        case .logout, .block, .unblock:
            return actions
        }
        if let id { actions.append(.send(id, [.error(code: .storage, messages: ["Error. The server could not store that; nothing was recorded"])])) }
        return actions
    }

    // MARK: A shared store (spec §11)

    /// A write of this server's committed; the store numbered it. What depended on it
    /// happens now: the reply that says it was stored comes after the commit.
    public mutating func committed(_ write: StoreWrite, by id: SessionID?, at now: Moment) -> [ChatAction] {
        switch write {
        case .login(let record):
            guard let id, let session = sessions[id], session.phase == .joining(record.user), online[record.user] == nil else {
                // The session went (or timed out) while its login was being committed.
                return [.write(.logout(user: record.user), by: nil)]
            }
            return joined(id, record, session, now)
        case .logout, .block, .unblock:
            return []
        case .broadcast(let record, _):
            lastBroadcast = max(lastBroadcast, record.number)
            guard let id else { return [] }
            return [.send(id, [.ok(kind: "BCM", fields: [String(record.number), record.timestamp])]),
                    .print([Messages.serverBroadcast(user: record.user, number: record.number, message: record.message,
                                                     timestamp: record.timestamp)])]
        case .roomMessage(let room, let record, _):
            rooms.noteMessage(record.number, in: room)
            guard let id else { return [] }
            return [.send(id, [.ok(kind: "SRM", fields: [String(room), String(record.number), record.timestamp])]),
                    .print([Messages.serverRoomMessage(user: record.user, room: room, record: record)])]
        case .room(let record):
            if rooms.rooms[record.id] == nil { rooms.add(record) }
            guard let id else { return [] }
            let built = ServerFrame.ok(kind: "SRB", fields: [String(record.id)] + record.members)
            return [.send(id, [built]),
                    .print([Messages.serverIssued(user: record.members[0], command: "SRB")] + ReplyRenderer.lines(for: [built]))]
        }
    }

    /// A write of this server's that failed in a shared store: nothing of it counts.
    private mutating func sharedWriteFailed(_ write: StoreWrite, by id: SessionID?, error: String,
                                             at now: Moment) -> [ChatAction] {
        var actions: [ChatAction] = [.print(["error: \(error)"])]
        switch write {
        case .login(let record):
            guard let id, let session = sessions[id], session.phase == .joining(record.user) else { return actions }
            sessions[id]?.phase = .password(record.user)
            actions.append(.send(id, [.error(code: .storage, messages: ["The server could not record your login; please try again later"])]))
            if loginExpired(session, now) { actions += refuse(id, .loginTimeout, loginTimeoutNotice) }
        case .logout, .block, .unblock:
            break
        case .broadcast, .roomMessage, .room:
            // The commit may have happened with only its answer lost: say no more than is known.
            if let id { actions.append(.send(id, [.error(code: .storage, messages: [Messages.notConfirmed])])) }
        }
        return actions
    }

    /// A write of this server's that a shared store refused: another server got there first.
    public mutating func refused(_ write: StoreWrite, by id: SessionID?, because refusal: SharedWriteRefusal,
                                 at now: Moment) -> [ChatAction] {
        switch (write, refusal) {
        case (.login(let record), .alreadyOnline):
            guard let id, sessions[id]?.phase == .joining(record.user) else { return [] }
            return refuse(id, .alreadyLoggedIn, Messages.alreadyLoggedIn(record.user))
        case (.room(let record), .roomExists(let existing)):
            guard let id else { return [] }
            let frame = ServerFrame.error(code: .roomExists, messages: [Messages.roomExists(existing)])
            return [.send(id, [frame]),
                    .print([Messages.serverIssued(user: record.members[0], command: "SRB")] + ReplyRenderer.lines(for: [frame]))]
        default:
            return sharedWriteFailed(write, by: id, error: "\(refusal)", at: now)
        }
    }

    /// Messages and rooms committed by any server, in commit order: each goes live to the
    /// sessions here that it concerns, but never to its author's.
    public mutating func arrived(_ events: [SharedEvent], at now: Moment) -> [ChatAction] {
        var actions: [ChatAction] = []
        for event in events {
            switch event {
            // Every server reads every message: the frame is built only for someone live here.
            case .broadcast(let record):
                lastBroadcast = max(lastBroadcast, record.number)
                if live.isEmpty { continue }
                let author = online[record.user]
                let to = Array(live.filter { $0 != author })
                if to.isEmpty { continue }
                actions.append(.deliver(to, .event(kind: EventKind.broadcast, fields: [
                    String(record.number), record.timestamp, record.user, record.message])))
            case .roomMessage(let room, let record):
                rooms.noteMessage(record.number, in: room)
                guard !live.isEmpty, let members = rooms.rooms[room]?.members else { continue }
                let to = liveSessions(of: members, except: online[record.user])
                if to.isEmpty { continue }
                actions.append(.deliver(to, .event(
                    kind: EventKind.roomMessage,
                    fields: [String(room), String(record.number), record.timestamp, record.user, record.message])))
            case .room(let record):
                guard rooms.rooms[record.id] == nil || rooms.rooms[record.id]?.members == record.members else { continue }
                if rooms.rooms[record.id] == nil { rooms.add(record) }
                let to = liveSessions(of: Array(record.members.dropFirst()), except: online[record.members[0]])
                if to.isEmpty { continue }
                actions.append(.deliver(to, .event(kind: EventKind.roomBuilt, fields: [String(record.id)] + record.members)))
            }
        }
        return actions
    }

    /// The users online on every server as the shared store reports them; those of this
    /// server are kept as this server knows them.
    public mutating func onlineEverywhere(_ users: [UserLogRecord], blocked: [String: Duration] = [:], at now: Moment? = nil) {
        if let now { login.reconcile(blocked.mapValues { now.monotonic + $0 }, now: now.monotonic) }
        elsewhere = users.filter { online[$0.user] == nil }.map { var u = $0; u.sequence = 0; return u }
        elsewhereByUser = Dictionary(elsewhere.map { ($0.user, $0) }, uniquingKeysWith: { a, _ in a })
    }

    // MARK: Operator

    /// Disconnects a user (console `kick`, `toom admin kick`); nil when not online.
    public mutating func kick(_ user: String, at now: Moment) -> [ChatAction]? {
        guard let id = online[user] else { return nil }
        sessions[id]?.phase = .closed
        return logout(user) + [.send(id, [.event(kind: EventKind.kicked, fields: [Messages.kicked])]), .close(id),
                               .print(["\(user) disconnected by the operator"])]
    }

    public enum UnblockResult: Sendable { case unblocked, notBlocked, noSuchUser }

    public mutating func unblock(_ user: String, at now: Moment) -> UnblockResult {
        guard accounts[user] != nil else { return .noSuchUser }
        return login.unblock(user, now: now.monotonic) ? .unblocked : .notBlocked
    }

    /// Blocked accounts with the time left.
    public func blocked(at now: Moment) -> [(user: String, remaining: Duration)] { login.blocked(now: now.monotonic) }

    /// The session of a user online on this server.
    public func session(of user: String) -> SessionID? { online[user] }

    /// True when the user is online on another server (a shared store).
    public func isOnlineElsewhere(_ user: String) -> Bool { online[user] == nil && elsewhereByUser[user] != nil }

    /// Who is online: this server's users in login order, then, with a shared store, those of
    /// the other servers.
    public var everyoneOnline: [UserLogRecord] {
        onlineUsers + elsewhere.filter { online[$0.user] == nil }
    }

    /// Rooms in id order.
    public var roomList: [(id: Int, members: [String])] {
        rooms.rooms.values.sorted { $0.id < $1.id }.map { ($0.id, $0.members) }
    }

    /// `credentials.txt` changed: new accounts can log in; sessions already online stay.
    public mutating func accountsChanged(_ accounts: [String: StoredPassword]) { self.accounts = accounts }

    // MARK: Helpers

    /// Forgets a user's login; the `userlog.txt` line goes with the write.
    private mutating func logout(_ user: String) -> [ChatAction] {
        guard let id = online.removeValue(forKey: user) else { return [] }
        live.remove(id)
        let rendezvous: [ChatAction] = peers.removeValue(forKey: id) != nil ? [.rendezvous(.close(id))] : []
        if let index = onlineUsers.firstIndex(where: { $0.user == user }) {
            onlineUsers.remove(at: index)
            for i in index..<onlineUsers.count { onlineUsers[i].sequence = i + 1 }
        }
        return rendezvous + [.write(.logout(user: user), by: nil)]
    }

    /// The sessions of these users that are online and asked for live delivery, but `sender`.
    private func liveSessions(of users: [String], except sender: SessionID?) -> [SessionID] {
        if live.isEmpty || (live.count == 1 && sender.map { live.contains($0) } == true) { return [] }
        return users.compactMap { user in
            guard let id = online[user], id != sender, live.contains(id) else { return nil }
            return id
        }
    }

    private func reply(_ id: SessionID, _ code: ErrorCode, _ message: String) -> [ChatAction] {
        [.send(id, [.error(code: code, messages: [message])])]
    }

    /// An error that ends the session: sent, then the connection closes.
    private mutating func refuse(_ id: SessionID, _ code: ErrorCode, _ message: String) -> [ChatAction] {
        sessions[id]?.phase = .closed
        return [.send(id, [.error(code: code, messages: [message])]), .close(id)]
    }
}

extension Duration {
    /// Whole seconds as an integer ("10"), otherwise as a decimal ("2.5").
    var secondsText: String {
        let (seconds, attoseconds) = components
        if attoseconds == 0 { return String(seconds) }
        return String(Double(seconds) + Double(attoseconds) / 1e18)
    }
}
