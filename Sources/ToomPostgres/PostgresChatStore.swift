import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PostgresNIO
import ToomChat
import ToomCore
import ToomStore

/// The record in PostgreSQL (spec §11): several servers with the same database are one chat.
/// Numbers are taken at commit (`Schema`); live deliveries come back to every server from
/// the feed, in feed order, after a NOTIFY wakes it or a second has passed (a notification
/// sent while nobody listened is never needed: the feed number is the truth). Each server
/// holds a lease in `toom_servers`, renewed every few seconds; the users of a server whose
/// lease ran out are not online for anyone. Only bound parameters reach the database.
public final class PostgresChatStore: ChatStore, SharedStore, @unchecked Sendable {
    public let location: PostgresLocation
    /// This server's name in `toom_servers` and `toom_online`.
    public let serverID: String
    private let client: PostgresClient
    private let logger: Logger
    private let warn: @Sendable (String) -> Void
    private let runTask: Task<Void, Never>
    private let state: NIOLockedValueBox<State>
    private let tasks = NIOLockedValueBox<[Task<Void, Never>]>([])
    private let posts = NIOLockedValueBox(PostBatcher<PendingPost>())
    private let postChannel: PostChannel

    struct PendingPost: Sendable {
        let room: Int
        let time: Int64
        let record: MessageRecord
        let done: @Sendable (Result<Int, Error>) -> Void
    }

    /// What the flushes announced, and the rows the notifications carried (`Announcements`).
    private let announced = NIOLockedValueBox(Announcements())
    /// How long a server's users stay online after its last renewal, in seconds; renewed every
    /// third of it.
    public static let defaultLease: Double = 10
    let lease: Double
    /// How long one query may take before the command that needs it is told the database is unreachable.
    static let queryTimeout: Double = 5

    struct State {
        var accounts: [String: String]
        var accountsChanged = false
        var snapshot: ChatSnapshot
        var feedStart: Int64
        var unreachable = false
        /// The session number of each login of this server's.
        var sessions: [String: Int64] = [:]
        var nextSession: Int64 = 0
        /// This server's logins as written, to write again if the database lost them.
        var logins: [String: UserLogRecord] = [:]
    }

    /// A database this toom must not use: trying again will not help.
    public struct Refused: Error, CustomStringConvertible {
        public let description: String
    }

    /// Connects, creates or migrates the schema and reads what the rules start from.
    /// `lease` is shortened only by tests (a hidden option of `toom server`), so that a killed
    /// server's users vanish in seconds.
    public static func open(_ location: PostgresLocation, logger: Logger, lease: Double = defaultLease,
                            warn: @escaping @Sendable (String) -> Void) async throws -> PostgresChatStore {
        let client = PostgresClient(configuration: location.configuration, backgroundLogger: Logger(label: "toom.postgres.background") { _ in SwiftLogNoOpLogHandler() })
        let runTask = Task { await client.run() }
        do {
            do {
                try await withDeadline(Self.queryTimeout * 2) { try await Schema.migrate(client, logger: logger) }
            } catch let error as Schema.TooNew {
                throw Refused(description: error.description)
            } catch let error as PSQLError {
                // Wrong password, unknown role or database: say so, do not wait for it to change.
                if let state = error.serverInfo?[.sqlState], ["28P01", "28000", "3D000"].contains(state) {
                    throw Refused(description: "the database at \(location) refused toom: \(Self.describe(error))")
                }
                throw error
            }
            let store = PostgresChatStore(location: location, client: client, runTask: runTask, logger: logger, warn: warn,
                                          lease: lease, state: try await Self.load(client, logger: logger))
            try await store.register()
            return store
        } catch {
            runTask.cancel()
            throw error
        }
    }

    private init(location: PostgresLocation, client: PostgresClient, runTask: Task<Void, Never>, logger: Logger,
                 warn: @escaping @Sendable (String) -> Void, lease: Double, state: State) {
        self.location = location
        self.lease = lease
        self.client = client
        self.runTask = runTask
        self.logger = logger
        self.warn = warn
        self.state = NIOLockedValueBox(state)
        postChannel = PostChannel(location, logger: logger)
        serverID = UUID().uuidString.lowercased()
    }

    private static func load(_ client: PostgresClient, logger: Logger) async throws -> State {
        try await withDeadline(queryTimeout) {
            // One transaction: the feed position matches the numbers and rooms read with it.
            try await client.withTransaction(logger: logger) { connection in
                _ = try await connection.query("set transaction isolation level repeatable read", logger: logger)
                var feed: Int64 = 0
                for try await last in try await connection.query("select last from toom_feed", logger: logger).decode(Int64.self) {
                    feed = last
                }
                var lastBroadcast = 0
                var lastInRoom: [Int: Int] = [:]
                let numbers = try await connection.query("select room, max(n) from toom_messages group by room", logger: logger)
                for try await (room, last) in numbers.decode((Int, Int).self) {
                    if room == 0 { lastBroadcast = last } else { lastInRoom[room] = last }
                }
                var rooms: [(room: RoomRecord, lastMessage: Int)] = []
                for try await (id, members) in try await connection.query("select id, members from toom_rooms order by id", logger: logger)
                    .decode((Int, [String]).self) {
                    rooms.append((RoomRecord(id: id, members: members), lastInRoom[id] ?? 0))
                }
                let accounts = try await Self.accounts(connection, logger: logger)
                return State(accounts: accounts, snapshot: ChatSnapshot(lastBroadcast: lastBroadcast, rooms: rooms, shared: true),
                             feedStart: feed)
            }
        }
    }

    private static func accounts(_ connection: PostgresConnection, logger: Logger) async throws -> [String: String] {
        var accounts: [String: String] = [:]
        for try await (user, password) in try await connection.query("select username, password from toom_accounts", logger: logger)
            .decode((String, String).self) {
            accounts[user] = password
        }
        return accounts
    }

    /// Takes the lease and starts renewing it; also reloads the accounts now and then.
    private func register() async throws {
        try await query("insert into toom_servers (id, lease_until) values (\(serverID), now() + make_interval(secs => \(lease)))")
        background { [self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(lease / 3))
                do {
                    var lost = false
                    for try await inserted in try await query("""
                        insert into toom_servers (id, lease_until) values (\(serverID), now() + make_interval(secs => \(lease)))
                        on conflict (id) do update set lease_until = excluded.lease_until returning (xmax = 0)
                        """).decode(Bool.self) {
                        lost = inserted
                    }
                    // The lease had run out long enough for the other servers to remove it
                    // (a long outage): this server's users are written again.
                    if lost { try await restoreLogins() }
                    // Servers whose lease ran out long ago leave nothing behind.
                    try await query("""
                        delete from toom_online o where not exists (
                            select 1 from toom_servers s where s.id = o.server and s.lease_until > now() - interval '1 minute')
                        """)
                    try await query("delete from toom_servers where lease_until < now() - interval '1 minute'")
                    try await query("delete from toom_flushes f where not exists (select 1 from toom_servers s where s.id = f.server)")
                    reachable()
                } catch {
                    unreachable(error)
                }
            }
        }
        background { [self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(2))
                guard let accounts = try? await withDeadline(Self.queryTimeout, { [client, logger] in
                    try await client.withConnection { try await Self.accounts($0, logger: logger) }
                }) else { continue }
                state.withLockedValue { state in
                    if accounts != state.accounts {
                        state.accounts = accounts
                        state.accountsChanged = true
                    }
                }
            }
        }
    }

    private func restoreLogins() async throws {
        let logins = state.withLockedValue { state in state.logins.values.map { ($0, state.sessions[$0.user] ?? 0) } }
        var restored = 0
        for (record, session) in logins {
            let since = Timestamp.parse(record.timestamp) ?? Timestamp.now()
            for try await _ in try await query("""
                insert into toom_online values (\(record.user), \(serverID), \(session), \(record.address), \(record.udpPort),
                                                \(record.timestamp), \(since))
                on conflict (username) do nothing returning username
                """).decode(String.self) {
                restored += 1
            }
        }
        try await query("select pg_notify('toom', 'o')")
        warn("the database had dropped this server's lease; \(restored) of its \(logins.count) users are listed online again")
    }

    private func background(_ body: @escaping @Sendable () async -> Void) {
        let task = Task { await body() }
        tasks.withLockedValue { $0.append(task) }
    }

    private func reachable() {
        let was = state.withLockedValue { state in defer { state.unreachable = false }; return state.unreachable }
        if was { warn("the database at \(location) is reachable again") }
    }

    private func unreachable(_ error: Error) {
        let was = state.withLockedValue { state in defer { state.unreachable = true }; return state.unreachable }
        if !was { warn("the database at \(location) is unreachable: \(Self.describe(error))") }
    }

    /// A database error in one line, without the connection's details.
    public static func describe(_ error: Error) -> String {
        if let error = error as? PostgresTransactionError {
            if let inner = error.closureError ?? error.beginError ?? error.commitError { return describe(inner) }
        }
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] { return message }
            return "\(error.code)"
        }
        return "\(error)"
    }

    @discardableResult
    private func query(_ query: PostgresQuery) async throws -> PostgresRowSequence {
        try await withDeadline(Self.queryTimeout) { [client, logger] in try await client.query(query, logger: logger) }
    }

    // MARK: ChatStore

    public var shared: SharedStore? { self }

    public func loadAccounts(warn: (String) -> Void) throws -> [String: StoredPassword] {
        let fields = state.withLockedValue { state in
            state.accountsChanged = false
            return state.accounts
        }
        var accounts: [String: StoredPassword] = [:]
        for (user, field) in fields {
            switch StoredPassword.parse(field: field) {
            case .success(let password): accounts[user] = password
            case .failure(let problem): warn("account '\(user)' skipped: \(problem.reason)")
            }
        }
        return accounts
    }

    public func accountsChanged() -> Bool { state.withLockedValue { $0.accountsChanged } }

    public func snapshot() -> ChatSnapshot { state.withLockedValue { $0.snapshot } }

    public func apply(_ write: StoreWrite) throws -> UInt64? {
        throw StoreUnavailable(reason: "a shared store commits through commit(_:_:)")
    }

    public func whenDurable(_ ticket: UInt64, _ done: @escaping @Sendable (Error?) -> Void) { done(nil) }

    public func history(_ request: HistoryRequest) -> HistoryCursor { PostgresHistory(store: self, request: request) }

    public func flush() throws {}

    public func verify(warn: @escaping @Sendable (String) -> Void) {}

    public func close() -> String? { nil }

    // MARK: SharedStore

    public func commit(_ write: StoreWrite, _ done: @escaping @Sendable (Result<StoreWrite, Error>) -> Void) {
        // Each login gets a session number, taken now, in the order the server issues its
        // writes: a logout removes only the row of the login it ends, even if it reaches the
        // database after the user's next login.
        let session: Int64 = state.withLockedValue { state in
            switch write {
            case .login(let record):
                state.nextSession += 1
                state.sessions[record.user] = state.nextSession
                state.logins[record.user] = record
                return state.nextSession
            case .logout(let user):
                state.logins[user] = nil
                return state.sessions.removeValue(forKey: user) ?? 0
            default:
                return 0
            }
        }
        switch write {
        case .broadcast(let record, let time):
            post(room: 0, record, time: time) { [self] result in
                answer(result.map { var record = record; record.number = $0; return .broadcast(record, time: time) }, write, session, done)
            }
            return
        case .roomMessage(let room, let record, let time):
            post(room: room, record, time: time) { [self] result in
                answer(result.map { var record = record; record.number = $0; return .roomMessage(room: room, record, time: time) }, write, session, done)
            }
            return
        default:
            break
        }
        Task {
            let result: Result<StoreWrite, Error>
            do { result = .success(try await commit(write, session: session)) } catch { result = .failure(error) }
            answer(result, write, session, done)
        }
    }

    /// How a write went, told to the rules: the database is reachable again, another server
    /// refused the write, or the database could not be used.
    private func answer(_ result: Result<StoreWrite, Error>, _ write: StoreWrite, _ session: Int64,
                        _ done: @Sendable (Result<StoreWrite, Error>) -> Void) {
        switch result {
        case .success:
            reachable()
            done(result)
        case .failure(let refusal as SharedWriteRefusal):
            forget(write, session: session)
            done(.failure(refusal))
        case .failure(let error):
            unreachable(error)
            forget(write, session: session)
            done(.failure(StoreUnavailable(reason: "the database is unreachable (\(Self.describe(error)))")))
        }
    }

    /// A login that was not recorded is not this server's to write again.
    private func forget(_ write: StoreWrite, session: Int64) {
        guard case .login(let record) = write else { return }
        state.withLockedValue { state in
            guard state.sessions[record.user] == session else { return }
            state.sessions[record.user] = nil
            state.logins[record.user] = nil
        }
    }

    private func commit(_ write: StoreWrite, session: Int64) async throws -> StoreWrite {
        switch write {
        case .broadcast, .roomMessage:
            preconditionFailure("messages are posted in batches")
        case .room(var record):
            let members = record.members
            let set = Set(members).sorted().joined(separator: ",")
            for try await (id, existing) in try await query("select id, existing from toom_build_room(\(members), \(set))")
                .decode((Int, Bool).self) {
                if existing { throw SharedWriteRefusal.roomExists(id) }
                record.id = id
                return .room(record)
            }
            throw StoreUnavailable(reason: "no room id from the database")
        case .login(let record):
            let since = Timestamp.parse(record.timestamp) ?? Timestamp.now()
            for try await joined in try await query("""
                select toom_login(\(serverID), \(session), \(record.user), \(record.address), \(record.udpPort), \(record.timestamp), \(since))
                """).decode(Bool.self) {
                if !joined { throw SharedWriteRefusal.alreadyOnline }
            }
            return write
        case .block(let user, let seconds):
            try await query("""
                insert into toom_blocks (username, until) values (\(user), now() + make_interval(secs => \(seconds)))
                on conflict (username) do update set until = excluded.until
                """)
            try await query("select pg_notify('toom', 'o')")
            return write
        case .unblock(let user):
            try await query("delete from toom_blocks where username = \(user)")
            try await query("select pg_notify('toom', 'o')")
            return write
        case .logout(let user):
            try await query("delete from toom_online where username = \(user) and server = \(serverID) and session = \(session)")
            try await query("select pg_notify('toom', 'o')")
            return write
        }
    }

    /// Stores a message and answers with its number once it is durable. Messages go in
    /// batches (`PostBatcher`), each one call of `toom_post` (`Schema`), which takes the feed
    /// row's lock for its work only and returns once the batch is on disk, through the
    /// `PostChannel`. (A separate flush loop that let the next batch go while one waited for
    /// the disk made batches smaller and cost more CPU per message.)
    private func post(room: Int, _ record: MessageRecord, time: Int64, _ done: @escaping @Sendable (Result<Int, Error>) -> Void) {
        let send = posts.withLockedValue { $0.add(PendingPost(room: room, time: time, record: record, done: done)) }
        if send { postChannel.eventLoop.execute { self.sendBatch() } }
    }

    /// Sends what waits as one batch; on the post channel's loop.
    private func sendBatch() {
        let batch = posts.withLockedValue { $0.take() }
        if batch.isEmpty { return }
        let query: PostgresQuery = """
            call toom_post(\(serverID), \(batch.map(\.room)), \(batch.map(\.time)), \(batch.map(\.record.timestamp)),
                           \(batch.map(\.record.user)), \(batch.map(\.record.message)), null, null, null)
            """
        let sent = NIODeadline.now()
        postChannel.run(query, within: Self.queryTimeout).whenComplete { [self] result in
            var stored: Int64?
            do {
                var numbers: [Int] = []
                var last: Int64 = 0
                var epoch: Int64 = 0
                for row in try result.get().rows { (numbers, last, epoch) = try row.decode(([Int], Int64, Int64).self) }
                guard numbers.count == batch.count else { throw StoreUnavailable(reason: "no message numbers from the database") }
                // The call returned after its flush: the batch is durable, and so is everything before it.
                announced.withLockedValue { $0.flushed(through: last, epoch: epoch) }
                for (post, number) in zip(batch, numbers) {
                    post.done(number > 0 ? .success(number) : .failure(StoreUnavailable(reason: "room \(post.room) is not in the database")))
                }
                stored = last
            } catch {
                for post in batch { post.done(.failure(error)) }
            }
            switch posts.withLockedValue({ $0.answered(size: batch.count, last: stored) }) {
            case .idle:
                break
            case .send:
                sendBatch()
            case .hold(let hold):
                // As long as the batch took: its clients' next messages are on their way.
                let wait = min(NIODeadline.now() - sent, Self.longestHold)
                postChannel.eventLoop.scheduleTask(in: wait) { [self] in
                    if posts.withLockedValue({ $0.holdEnded(hold) }) { sendBatch() }
                }
            }
        }
    }

    /// The longest a batch is held for more messages after the one before it was answered.
    static let longestHold = TimeAmount.milliseconds(10)

    /// Returns once everything committed before it is on the database's disk (a synchronous
    /// commit of a small write of this reader's, whose commit record follows theirs in the
    /// WAL), with the feed number through which everything is durable, and the epoch.
    private func flushForReader() async throws -> (Int64, Int64) {
        for try await answer in try await query("select o_durable, o_epoch from toom_flush(\(serverID), 'feed')")
            .decode((Int64, Int64).self) {
            return answer
        }
        throw StoreUnavailable(reason: "no answer to a flush from the database")
    }

    public func follow(events: @escaping @Sendable ([SharedEvent]) -> Void,
                       online: @escaping @Sendable ([UserLogRecord], _ blocked: [String: Duration]) -> Void,
                       forwarded: @escaping @Sendable (String, Forwarded) -> Void) {
        // A wake-up of the feed reader: true to also look past the durable feed number.
        let (feedWakeups, feedWake) = AsyncStream.makeStream(of: Bool.self, bufferingPolicy: .bufferingNewest(1))
        let (onlineWakeups, onlineWake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        // The wake-up: LISTEN on one connection, again after any reconnect. A notification
        // lost meanwhile costs nothing but time: the feed is read after every (re)connect.
        background { [client, logger, announced] in
            while !Task.isCancelled {
                do {
                    try await client.withConnection { connection in
                        try await connection.listen(on: "toom") { notifications in
                            feedWake.yield(true)
                            onlineWake.yield()
                            for try await notification in notifications {
                                let payload = notification.payload
                                if payload == "o" {
                                    onlineWake.yield()
                                } else if let (durable, epoch) = Announcements.flushed(payload) {
                                    announced.withLockedValue { $0.flushed(through: durable, epoch: epoch) }
                                    feedWake.yield(false)
                                } else if let (first, batch) = Announcements.carried(payload) {
                                    announced.withLockedValue { $0.flushed(batch, from: first) }
                                    feedWake.yield(false)
                                } else if let (user, what) = Self.forwarded(payload) {
                                    forwarded(user, what)
                                }
                            }
                        }
                    }
                } catch {
                    logger.debug("listen: \(error)")
                }
                try? await Task.sleep(for: .seconds(1))
            }
        }
        // And a tick, for what no notification announces: a lease that ran out.
        background {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                feedWake.yield(true)
                onlineWake.yield()
            }
        }
        let start = state.withLockedValue { $0.feedStart }
        background { [self] in
            var position = start
            for await wake in feedWakeups {
                var catchUp = wake
                while !Task.isCancelled {
                    // Carried rows that continue what was delivered and are durable need no query.
                    while let batch = announced.withLockedValue({ $0.take(after: position) }) {
                        position = batch.last
                        events(batch.events)
                    }
                    // Through the durable feed number every row is committed and on disk.
                    let through = announced.withLockedValue { $0.durable }
                    let bounded = through > position
                    if !bounded && !catchUp { break }
                    guard let (batch, last, readEpoch) = try? await readFeed(after: position, through: bounded ? through : nil) else { break }
                    if bounded {
                        position = batch.count < Self.feedPage ? through : last
                    } else {
                        // Rows no notification announced (their server died between its two
                        // commits, or a notification was lost): made durable here first.
                        if batch.isEmpty { break }
                        guard let (durable, epoch) = try? await flushForReader(), epoch == readEpoch else { break }
                        announced.withLockedValue { $0.flushed(through: durable, epoch: epoch) }
                        position = last
                        catchUp = batch.count == Self.feedPage
                    }
                    if !batch.isEmpty { events(batch) }
                }
            }
        }
        background { [self] in
            for await _ in onlineWakeups {
                guard let users = try? await onlineEverywhere(), let blocked = try? await blockedEverywhere() else { continue }
                online(users, blocked)
            }
        }
    }

    /// `u` + `k` (kick) or `f` (frames) + the user, a newline, then the frames.
    public func forward(to user: String, _ what: Forwarded) {
        let payload: String
        switch what {
        case .kick: payload = "uk\(user)\n"
        case .frames(let text): payload = "uf\(user)\n\(text)"
        }
        Task {
            do { try await query("select pg_notify('toom', \(payload))") } catch { unreachable(error) }
        }
    }

    static func forwarded(_ payload: String) -> (String, Forwarded)? {
        guard payload.hasPrefix("u"), let newline = payload.firstIndex(of: "\n") else { return nil }
        let head = payload[payload.index(after: payload.startIndex)..<newline]
        guard let kind = head.first else { return nil }
        let user = String(head.dropFirst())
        switch kind {
        case "k": return (user, .kick)
        case "f": return (user, .frames(String(payload[payload.index(after: newline)...])))
        default: return nil
        }
    }

    static let feedPage = 500

    /// What was committed after feed number `position` (through `through`), in order: a page at a time.
    private func readFeed(after position: Int64, through: Int64?) async throws -> ([SharedEvent], Int64, Int64) {
        let end = through ?? Int64.max
        let rows = try await query("""
            select feed, room, n, ts, username, message, members, toom_epoch() from (
                select feed, room, n, ts, username, message, null::text[] as members from toom_messages
                where feed > \(position) and feed <= \(end)
                union all
                select feed, id, 0::bigint, '', '', '', members from toom_rooms where feed > \(position) and feed <= \(end)) f
            order by feed limit \(Self.feedPage)
            """)
        var events: [SharedEvent] = []
        var last = position
        var epoch: Int64 = 0
        for try await (feed, room, n, ts, user, message, members, start) in rows
            .decode((Int64, Int, Int, String, String, String, [String]?, Int64).self) {
            last = feed
            epoch = start
            if let members {
                events.append(.room(RoomRecord(id: room, members: members)))
            } else {
                let record = MessageRecord(number: n, timestamp: ts, user: user, message: message)
                events.append(room == 0 ? .broadcast(record) : .roomMessage(room: room, record))
            }
        }
        return (events, last, epoch)
    }

    /// Who is online on a server whose lease holds, in login order.
    private func onlineEverywhere() async throws -> [UserLogRecord] {
        let rows = try await query("""
            select o.username, o.address, o.udp_port, o.ts from toom_online o
            join toom_servers s on s.id = o.server where s.lease_until > now()
            order by o.since, o.username
            """)
        var users: [UserLogRecord] = []
        for try await (user, address, port, ts) in rows.decode((String, String, Int, String).self) {
            users.append(UserLogRecord(sequence: users.count + 1, timestamp: ts, user: user, address: address, udpPort: port))
        }
        return users
    }

    /// Accounts blocked on any server, with the time left.
    private func blockedEverywhere() async throws -> [String: Duration] {
        let rows = try await query("""
            select username, (extract(epoch from until - now()) * 1000)::bigint from toom_blocks where until > now()
            """)
        var blocked: [String: Duration] = [:]
        for try await (user, milliseconds) in rows.decode((String, Int64).self) { blocked[user] = .milliseconds(milliseconds) }
        return blocked
    }

    public func stop() async {
        for task in tasks.withLockedValue({ $0 }) { task.cancel() }
        do {
            try await query("delete from toom_online where server = \(serverID)")
            try await query("delete from toom_servers where id = \(serverID)")
            try await query("delete from toom_flushes where server = \(serverID)")
            try await query("select pg_notify('toom', 'o')")
        } catch {
            warn("could not take this server's users off the database: \(Self.describe(error)); they go when its lease runs out")
        }
        postChannel.close()
        runTask.cancel()
    }

    // MARK: Reading history

    /// One page of an RDM answer, read on the caller's thread (a pool thread) by waiting for the query.
    func page(_ source: HistoryRequest.Source, after time: Int64, afterNumber: Int) throws -> [MessageRecord] {
        let room = source.room ?? 0
        let through = source.through
        return try blocking { [self] in
            var records: [MessageRecord] = []
            let rows = try await query("""
                select n, ts, username, message from toom_messages
                where room = \(room) and time > \(time) and n > \(afterNumber) and n <= \(through)
                order by n limit 1000
                """)
            for try await (n, ts, user, message) in rows.decode((Int, String, String, String).self) {
                records.append(MessageRecord(number: n, timestamp: ts, user: user, message: message))
            }
            return records
        }
    }
}

/// An RDM answer from the database: each source in turn, a page at a time.
private final class PostgresHistory: HistoryCursor {
    private let store: PostgresChatStore
    private let request: HistoryRequest
    private var source = 0
    private var page: [MessageRecord] = []
    private var index = 0
    private var lastNumber = 0
    private var exhausted = false

    init(store: PostgresChatStore, request: HistoryRequest) {
        self.store = store
        self.request = request
    }

    func next() throws -> HistoryItem? {
        while source < request.sources.count {
            if index < page.count {
                let record = page[index]
                index += 1
                lastNumber = record.number
                return HistoryItem(room: request.sources[source].room, record: record)
            }
            if !exhausted {
                page = try store.page(request.sources[source], after: request.after, afterNumber: lastNumber)
                index = 0
                exhausted = page.count < 1000
                if !page.isEmpty { continue }
            }
            source += 1
            page = []
            index = 0
            lastNumber = 0
            exhausted = false
        }
        return nil
    }
}

/// The database could not be used; the command that needed it gets one line.
public struct StoreUnavailable: Error, CustomStringConvertible {
    public let reason: String
    public var description: String { reason }
}

/// Runs `body`, failing with `StoreUnavailable` after `seconds`. The caller is released at
/// the deadline even if `body` does not stop when cancelled (a query waiting on a
/// connection that a database crash left behind): a task group would wait for it, and a
/// loop that reads the feed would hang for good.
func withDeadline<T: Sendable>(_ seconds: Double, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let answered = NIOLockedValueBox(false)
    let timer = NIOLockedValueBox<Scheduled<Void>?>(nil)
    return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
        let work = Task {
            let result: Result<T, Error>
            do { result = .success(try await body()) } catch { result = .failure(error) }
            guard answered.withLockedValue({ done in defer { done = true }; return !done }) else { return }
            timer.withLockedValue { $0?.cancel() }
            continuation.resume(with: result)
        }
        // An event loop's timer, not a sleeping task: a query is made many times a second.
        let deadline = MultiThreadedEventLoopGroup.singleton.next().scheduleTask(in: .nanoseconds(Int64(seconds * 1e9))) {
            guard answered.withLockedValue({ done in defer { done = true }; return !done }) else { return }
            work.cancel()
            continuation.resume(throwing: StoreUnavailable(reason: "no answer from the database within \(Int(seconds)) seconds"))
        }
        timer.withLockedValue { $0 = deadline }
        if answered.withLockedValue({ $0 }) { deadline.cancel() }
    }
}

/// Waits on this (non-async) thread for `body`; for the thread pool's RDM readers only.
func blocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let result = NIOLockedValueBox<Result<T, Error>?>(nil)
    let done = DispatchSemaphore(value: 0)
    Task {
        let outcome: Result<T, Error>
        do { outcome = .success(try await body()) } catch { outcome = .failure(error) }
        result.withLockedValue { $0 = outcome }
        done.signal()
    }
    done.wait()
    return try result.withLockedValue { $0! }.get()
}
