import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ToomChat
import ToomCore
import ToomSecurity
import ToomStore

/// Runs the chat rules against the real world: one `ChatCore` behind one lock, the store's
/// writes made under it (so numbering and the record change together and a line is in its
/// file before any reply that depends on it), frames queued into the recipients' outboxes
/// under it, and everything slower — writing to sockets, printing, checking passwords,
/// reading history — after it is released.
final class ChatEngine: @unchecked Sendable {
    let store: ChatStore
    let output: ServerOutput
    let logger: Logger
    let limits: ServerLimits
    private let lock = NIOLock()
    private var core: ChatCore
    private var outboxes: [SessionID: Outbox] = [:]
    private var nextSession = 1
    private var stopping = false
    let pool: NIOThreadPool
    /// Checks hashed passwords on threads of its own.
    let passwords: PasswordVerifier
    private let flushPending = NIOLockedValueBox(false)

    /// One per event loop of the server: what other threads ask of its connections.
    private let mail: [LoopMail]
    /// What the server's UDP port knows (spec §12), behind a lock of its own: a relayed
    /// datagram never waits for the chat's.
    let rendezvous: NIOLockedValueBox<RendezvousTable>

    init(store: ChatStore, settings: ChatSettings, limits: ServerLimits, output: ServerOutput, logger: Logger,
         pool: NIOThreadPool, passwords: PasswordVerifier, loops: [EventLoop], relayRate: UInt64 = 0) throws {
        self.store = store
        mail = loops.map(LoopMail.init(loop:))
        self.output = output
        self.logger = logger
        self.limits = limits
        self.pool = pool
        self.passwords = passwords
        let accounts = try store.loadAccounts { logger.warning("\($0)") }
        core = ChatCore(settings: settings, accounts: accounts, snapshot: store.snapshot())
        rendezvous = NIOLockedValueBox(RendezvousTable(relayRate: relayRate))
    }

    /// Now, as the rules see it.
    static func now() -> Moment {
        Moment(monotonic: .nanoseconds(Int64(NIODeadline.now().uptimeNanoseconds)), wall: Timestamp.now())
    }

    // MARK: Connections

    enum Admission {
        case accepted(Outbox)
        /// Closed at once, after this frame if there is one.
        case refused(ServerFrame?)
    }

    /// Who waits for the last session to close (`sessionsClosed`), under the lock.
    private var whenNoSessions: [CheckedContinuation<Void, Never>] = []

    func open(_ channel: Channel) -> Admission {
        // An IPv4 client of a dual-stack port shows as IPv4 (`ATU`, `userlog.txt`).
        let address = channel.remoteAddress?.ipAddress.map(TransferCandidate.plainAddress) ?? "unknown"
        let admission: Admission = lock.withLock {
            guard !stopping else { return .refused(nil) }
            guard outboxes.count < limits.maxConnections else {
                return .refused(.error(code: .limit, messages: ["The server is full (\(limits.maxConnections) connections). Please try again later"]))
            }
            let outbox = Outbox(id: SessionID(nextSession), channel: channel, engine: self)
            nextSession += 1
            outboxes[outbox.id] = outbox
            return .accepted(outbox)
        }
        if case .accepted(let outbox) = admission { run(for: outbox.id) { $0.connect(outbox.id, address: address, at: $1) } }
        return admission
    }

    /// What the connection does next after a frame.
    enum Flow: Equatable {
        /// Read the next frame.
        case next
        /// Frames wait until the connection is resumed: a password is being checked, or an RDM
        /// answer is being sent (a client that does not read its answers is not read either).
        case wait
        /// Offer this frame again at this time (flood control).
        case hold(until: Duration)
    }

    func receive(_ fields: [Substring], from outbox: Outbox) -> Flow {
        // A changed credentials.txt is read again before a login uses it.
        if fields.first == "USER", store.accountsChanged() { reloadAccounts() }
        return run(for: outbox.id, batch: outbox.channel.eventLoop) { $0.receive(fields, from: outbox.id, at: $1) }
    }

    /// A frame that could not be decoded: the connection ends with one line of explanation.
    func refuse(_ outbox: Outbox, _ message: String) {
        let bytes = ByteBuffer(string: ServerFrame.error(code: .badFrame, messages: [message]).encoded)
        lock.withLock {
            _ = outbox.enqueue(.frames(bytes, gate: nil, notDurable: nil), size: bytes.readableBytes, limit: .max, endsSession: true)
            _ = outbox.enqueue(.close, size: 0, limit: .max)
        }
        outbox.schedule()
    }

    /// The client closed its side: what it is owed still goes out (the batch it waits for
    /// included), then the connection closes.
    func endOfInput(_ outbox: Outbox) {
        var effects = Effects()
        lock.withLock {
            generation &+= 1
            writeHeld(&effects)
            _ = outbox.enqueue(.close, size: 0, limit: .max)
            if outbox.touched != generation {
                outbox.touched = generation
                effects.touched.append(outbox)
            }
        }
        finish(effects)
    }

    func closed(_ outbox: Outbox) {
        outbox.cancelLoginTimer()
        let waiting: [CheckedContinuation<Void, Never>] = lock.withLock {
            outboxes[outbox.id] = nil
            guard outboxes.isEmpty else { return [] }
            defer { whenNoSessions = [] }
            return whenNoSessions
        }
        run { $0.disconnected(outbox.id, at: $1) }
        for continuation in waiting { continuation.resume() }
    }

    /// Returns once no session is open (after `shutdown`, which closes them all). The engine
    /// knows every admitted connection, so the stop waits on it and not on a registry of
    /// channels of its own (swift-nio-extras' quiescing helper kept one: a dictionary entry
    /// and a close callback per connection, about 4% of an idle session's memory).
    func sessionsClosed() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let none: Bool = lock.withLock {
                if outboxes.isEmpty { return true }
                whenNoSessions.append(continuation)
                return false
            }
            if none { continuation.resume() }
        }
    }

    private func reloadAccounts() {
        do {
            let accounts = try store.loadAccounts { logger.warning("\($0)") }
            lock.withLock { core.accountsChanged(accounts) }
            logger.info("\(LogFiles.credentials) changed: \(accounts.count) accounts loaded")
        } catch {
            logger.warning("cannot read \(LogFiles.credentials) again: \(error); the accounts stay as they were")
        }
    }

    // MARK: Carrying out the rules' actions

    /// What one step of the rules left to do once the lock is released.
    private struct Effects {
        var touched: [Outbox] = []
        var slow: [(SessionID, Int)] = []
        var prints: [String] = []
        var flushUsers = false
    }

    /// A step whose output waits for the batch's write: what it says to clients and prints,
    /// not yet done, and the staged writes it depends on.
    private struct HeldStep {
        let caller: SessionID?
        /// The step's actions; those from `start` on that say something or print are held.
        let actions: [ChatAction]
        let start: Int
        let staged: Staged?
        /// With --sync: the ticket of a write the step made at once.
        let gate: UInt64?
    }

    /// A write staged for the batch (a step stages at most one: a message).
    private struct Staged {
        let position: Int
        let write: StoreWrite
        let by: SessionID?
    }

    /// Steps waiting for the staged writes, in the rules' order (under the lock).
    private var held: [HeldStep] = []
    /// Event loops that will write the batch at the end of their current turn.
    private var flushingLoops: [ObjectIdentifier] = []
    /// Tells outboxes already touched in this step or batch apart, so each is scheduled once.
    private var generation = 0

    /// Runs one step of the rules and carries out its actions. `caller` is the session whose
    /// frame this is; the result says how its connection goes on. On an event loop (`batch`)
    /// message writes are staged and written once at the end of the loop's turn, with what
    /// the step says to clients held until then: one `write(2)` for all the lines of a turn,
    /// each reply still after its line. Elsewhere the batch is written before this returns.
    @discardableResult
    private func run(for caller: SessionID? = nil, batch: EventLoop? = nil,
                     _ step: (inout ChatCore, Moment) -> [ChatAction]) -> Flow {
        var later: [ChatAction] = []
        var effects = Effects()
        var answering = false
        var flushOn: EventLoop?
        // A shared store's writes, committed after the lock is released.
        var commits: [(StoreWrite, SessionID?)] = []
        let shared = store.shared
        lock.withLock {
            generation &+= 1
            let now = Self.now()
            var actions = step(&core, now)
            // With --sync: the fsync ticket of this step's write, which what follows waits for.
            var gate: UInt64?
            var staged: Staged?
            // Where the held part of the step begins; nil while its actions are carried out at once.
            var heldFrom: Int? = held.isEmpty ? nil : 0
            var index = 0
            while index < actions.count {
                let action = actions[index]
                index += 1
                switch action {
                case .write(let write, let by):
                    if shared != nil {
                        // What depends on it comes from `ChatCore.committed`, after the commit.
                        commits.append((write, by))
                        continue
                    }
                    do {
                        if batch != nil, staged == nil, let position = try store.stage(write) {
                            staged = Staged(position: position, write: write, by: by)
                            if heldFrom == nil { heldFrom = index }
                        } else {
                            // Only a message is staged, and no step writes two messages, so no
                            // line applied here can overtake a staged line of the same log.
                            if let ticket = try store.apply(write) { gate = ticket }
                            if case .logout = write { effects.flushUsers = true }
                        }
                    } catch {
                        // Nothing of the step after its write happens; the rules say what does instead.
                        actions = core.writeFailed(write, by: by, error: "\(error)", at: now)
                        index = 0
                        if staged == nil, heldFrom != nil { heldFrom = 0 }
                    }
                case .send, .deliver, .close, .readHistory, .print:
                    if case .readHistory(caller, _) = action { answering = true }
                    // Behind a held step, everything waits its turn: each client's queue keeps the rules' order.
                    if heldFrom == nil { perform(action, caller: caller, gate: gate, &effects) }
                case .verifyPassword, .hold, .loginDeadline, .loggedIn, .forward:
                    later.append(action)
                case .rendezvous(let change):
                    // At once: a client registers as soon as it reads its login's reply.
                    rendezvous.withLockedValue { $0.apply(change, now: now.monotonic) }
                }
            }
            if let heldFrom, staged != nil || heldFrom < actions.count {
                held.append(HeldStep(caller: caller, actions: actions, start: heldFrom, staged: staged, gate: gate))
            }
            if !held.isEmpty {
                if let loop = batch {
                    let id = ObjectIdentifier(loop)
                    if !flushingLoops.contains(id) {
                        flushingLoops.append(id)
                        flushOn = loop
                    }
                } else {
                    writeHeld(&effects)
                }
            }
        }
        if let loop = flushOn { loop.execute { [self] in endOfTurn(on: loop) } }
        finish(effects)
        var flow = answering ? Flow.wait : .next
        for action in later {
            switch action {
            case .verifyPassword(let id, let candidate, let stored):
                if id == caller { flow = .wait }
                verify(id, candidate: candidate, stored: stored)
            case .hold(_, let until):
                flow = .hold(until: until)
            case .loginDeadline(let id, let at):
                outbox(id)?.startLoginTimer(at: at) { [weak self] in self?.run { $0.loginDeadline(id, at: $1) } }
            case .loggedIn(let id, _):
                outbox(id)?.cancelLoginTimer()
            case .forward(let user, let frames):
                var text = ""
                for frame in frames { text += frame.encoded }
                shared?.forward(to: user, .frames(text))
            default:
                break
            }
        }
        if let shared {
            for (write, by) in commits {
                // The caller reads its next frame once its write is committed and answered.
                let waits = by != nil && by == caller
                if waits { flow = .wait }
                commit(write, by: by, resume: waits, to: shared)
            }
        }
        return flow
    }


    /// The end of an event loop's turn: the batch is written and the held steps go out.
    private func endOfTurn(on loop: EventLoop) {
        var effects = Effects()
        lock.withLock {
            generation &+= 1
            flushingLoops.removeAll { $0 == ObjectIdentifier(loop) }
            writeHeld(&effects)
        }
        finish(effects)
    }

    /// Writes the staged lines, then carries out the held steps in order; a step whose write
    /// failed is rolled back by the rules and its issuer told, as for a failed `apply`.
    /// Under the lock.
    private func writeHeld(_ effects: inout Effects) {
        guard !held.isEmpty else { return }
        var steps: [HeldStep] = []
        swap(&steps, &held)
        let written = store.writeStaged()
        defer {
            // The array's storage goes back for the next batch.
            steps.removeAll(keepingCapacity: true)
            if held.isEmpty { swap(&steps, &held) }
        }
        for step in steps {
            var gate = step.gate
            if let staged = step.staged {
                if let error = written.failed[staged.position] {
                    for action in core.writeFailed(staged.write, by: staged.by, error: "\(error)", at: Self.now()) {
                        perform(action, caller: step.caller, gate: gate, &effects)
                    }
                    continue
                }
                if let ticket = written.ticket { gate = max(gate ?? 0, ticket) }
            }
            for action in step.actions[step.start...] { perform(action, caller: step.caller, gate: gate, &effects) }
        }
    }

    /// Queues what an action says to clients, or notes what it prints. Under the lock.
    private func perform(_ action: ChatAction, caller: SessionID?, gate: UInt64?, _ effects: inout Effects) {
        func queue(_ id: SessionID, _ entry: Outbox.Entry, size: Int, endsSession: Bool = false) {
            guard let outbox = outboxes[id] else { return }
            if let unread = outbox.enqueue(entry, size: size, limit: limits.maxUnreadBytes, endsSession: endsSession) {
                effects.slow.append((id, unread))
            }
            if outbox.touched != generation {
                outbox.touched = generation
                effects.touched.append(outbox)
            }
        }
        switch action {
        case .send(let id, let frames):
            let bytes = Self.encode(frames)
            let notDurable = gate != nil && id == caller ? Self.notDurableReply : nil
            let ends = frames.contains { if case .event(let kind, _) = $0 { EventKind.endingSession.contains(kind) } else { false } }
            queue(id, .frames(bytes, gate: gate, notDurable: notDurable), size: bytes.readableBytes, endsSession: ends)
        case .deliver(let ids, let frame):
            guard !ids.isEmpty else { return }
            let bytes = Self.encode([frame])  // one buffer, shared by every recipient
            let size = bytes.readableBytes
            for id in ids { queue(id, .frames(bytes, gate: gate, notDurable: nil), size: size) }
        case .close(let id):
            queue(id, .close, size: 0)
        case .readHistory(let id, let request):
            queue(id, .history(request), size: 0)
        case .print(let lines):
            effects.prints += lines
        default:
            break
        }
    }

    /// What a step leaves for after the lock: drains, event lines, cut-offs, the userlog rewrite.
    private func finish(_ effects: Effects) {
        // Event lines first: once a reply is out, its client may cause the next line (from
        // another event loop), which must not print ahead of this one.
        if !effects.prints.isEmpty { output.events(effects.prints) }
        // Outboxes of this thread's event loop drain here; each other loop gets all of its own
        // at once, and is woken only if it is not already on its way.
        var elsewhere: [ObjectIdentifier: (EventLoop, [LoopMail.Item])] = [:]
        for outbox in effects.touched {
            let loop = outbox.channel.eventLoop
            if loop.inEventLoop {
                outbox.schedule()
            } else {
                elsewhere[ObjectIdentifier(loop), default: (loop, [])].1.append(.drain(outbox))
            }
        }
        for (loop, items) in elsewhere.values { post(items, to: loop) }
        for (id, unread) in effects.slow { run { $0.tooSlow(id, unread: unread, at: $1) } }
        if effects.flushUsers { scheduleFlush() }
    }

    /// Commits a write to the shared store, off the lock and the event loops, then tells the
    /// rules how it went and carries out what they say.
    private func commit(_ write: StoreWrite, by: SessionID?, resume: Bool, to shared: SharedStore) {
        shared.commit(write) { [self] result in
            let flow = run(for: by) { core, now in
                switch result {
                case .success(let stored): return core.committed(stored, by: by, at: now)
                case .failure(let refusal as SharedWriteRefusal): return core.refused(write, by: by, because: refusal, at: now)
                case .failure(let error): return core.writeFailed(write, by: by, error: "\(error)", at: now)
                }
            }
            if resume, flow == .next, let by { outbox(by)?.resumeReading() }
        }
    }

    // MARK: A shared store

    /// Follows what every server commits: deliveries in commit order, who is online everywhere.
    func followSharedStore() {
        guard let shared = store.shared else { return }
        shared.follow(events: { [weak self] events in
            self?.run { $0.arrived(events, at: $1) }
        }, online: { [weak self] users, blocked in
            guard let self else { return }
            lock.withLock { core.onlineEverywhere(users, blocked: blocked, at: Self.now()) }
        }, forwarded: { [weak self] user, what in
            self?.forwarded(to: user, what)
        })
    }

    /// Something another server passed to a user who may be online here.
    private func forwarded(to user: String, _ what: Forwarded) {
        switch what {
        case .kick:
            _ = kick(user, everywhere: false)
        case .frames(let text):
            let bytes = ByteBuffer(string: text)
            let outbox: Outbox? = lock.withLock {
                guard let id = core.session(of: user), let outbox = outboxes[id] else { return nil }
                _ = outbox.enqueue(.frames(bytes, gate: nil, notDurable: nil), size: bytes.readableBytes, limit: limits.maxUnreadBytes)
                return outbox
            }
            outbox?.schedule()
        }
    }

    private func outbox(_ id: SessionID) -> Outbox? { lock.withLock { outboxes[id] } }

    /// Work for connections of `loop`, from another thread.
    func post(_ items: [LoopMail.Item], to loop: EventLoop) {
        if let mail = mail.first(where: { $0.loop === loop }) {
            mail.post(items)
        } else {
            loop.execute { for item in items { item.carryOut() } }
        }
    }

    /// The frames as wire bytes, written straight into one buffer of the right size.
    static func encode(_ frames: [ServerFrame]) -> ByteBuffer {
        var size = 0
        for frame in frames { frame.visit { size += $0.utf8.count + 1 } }
        var buffer = allocator.buffer(capacity: size)
        for frame in frames {
            var first = true
            frame.visit { field in
                if !first { buffer.writeInteger(UInt8(ascii: "\t")) }
                first = false
                buffer.writeString(field)
            }
            buffer.writeInteger(UInt8(ascii: "\n"))
        }
        return buffer
    }

    private static let allocator = ByteBufferAllocator()

    private static let notDurableReply = encode([.error(code: .storage, messages: [
        "Error. The server could not make that durable (fsync failed); it may be lost if the machine stops"])])

    /// A write whose fsync failed: the line is in the file, but may not survive power loss.
    func notDurable(_ error: Error) {
        logger.error("\(error)")
    }

    /// Checks a password off the event loops, a hash on the verifier's low-priority threads (a
    /// burst of logins must not delay anyone's messages), then lets the session read frames again.
    private func verify(_ id: SessionID, candidate: String, stored: StoredPassword) {
        guard let outbox = outbox(id) else { return }
        passwords.verify(candidate, against: stored, on: outbox.channel.eventLoop).whenComplete { [self] result in
            // Failed only when the server is stopping: no verdict, so no failed attempt counted.
            guard case .success(let matches) = result else { return }
            // With a shared store the login is committed first; reading resumes after it.
            if run(for: id, { $0.passwordChecked(id, matches: matches, at: $1) }) == .next { outbox.resumeReading() }
        }
    }

    /// Rewrites `userlog.txt` soon, off the event loops; logouts meanwhile share the rewrite.
    private func scheduleFlush() {
        guard flushPending.withLockedValue({ pending in defer { pending = true }; return !pending }) else { return }
        pool.submit { [self] _ in
            flushPending.withLockedValue { $0 = false }
            do { try store.flush() } catch { logger.error("\(error)") }
        }
    }

    // MARK: RDM answers

    /// Streams an RDM answer into the outbox (`HistoryAnswer`); calls `done` on the event
    /// loop when it is sent.
    func answer(_ request: HistoryRequest, to outbox: Outbox, done: @escaping () -> Void) {
        HistoryAnswer(cursor: store.history(request), outbox: outbox, engine: self, done: done).next()
    }

    // MARK: Operator

    var onlineUsers: [UserLogRecord] { lock.withLock { core.everyoneOnline } }
    var rooms: [(id: Int, members: [String])] { lock.withLock { core.roomList } }
    var blocked: [(user: String, remaining: Duration)] { lock.withLock { core.blocked(at: Self.now()) } }

    /// Disconnects a user; with a shared store, on whichever server they are online.
    func kick(_ user: String, everywhere: Bool = true) -> Bool {
        if everywhere, let shared = store.shared, lock.withLock({ core.isOnlineElsewhere(user) }) {
            shared.forward(to: user, .kick)
            return true
        }
        var found = false
        run { core, now in
            guard let actions = core.kick(user, at: now) else { return [] }
            found = true
            return actions
        }
        return found
    }

    /// Lifts a block; with a shared store, on every server.
    func unblock(_ user: String) -> ChatCore.UnblockResult {
        let result = lock.withLock { core.unblock(user, at: Self.now()) }
        if let shared = store.shared, result != .noSuchUser {
            commit(.unblock(user: user), by: nil, resume: false, to: shared)
        }
        return result
    }

    /// Changes the rules' state where nothing follows from it.
    func update(_ change: (inout ChatCore) -> Void) {
        lock.withLock { change(&core) }
    }

    /// Tells every client the server stops, logs everyone out and closes every session.
    func shutdown() {
        lock.withLock { stopping = true }
        run { $0.shutdown(at: $1) }
    }
}

/// One RDM answer on its way: read off the event loop a chunk at a time, the next chunk
/// only once the socket took the last, so one huge answer neither blocks others nor sits
/// in memory whole. Its state is touched on the outbox's event loop only; the cursor is
/// used by one pool job at a time.
private final class HistoryAnswer: @unchecked Sendable {
    private let cursor: HistoryCursor
    private let outbox: Outbox
    private let engine: ChatEngine
    private let done: () -> Void
    private var count = 0
    private var room: Int?

    init(cursor: HistoryCursor, outbox: Outbox, engine: ChatEngine, done: @escaping () -> Void) {
        self.cursor = cursor
        self.outbox = outbox
        self.engine = engine
        self.done = done
    }

    func next() {
        engine.pool.runIfActive(eventLoop: outbox.channel.eventLoop) { () -> ([HistoryItem], Bool) in
            var items: [HistoryItem] = []
            var bytes = 0
            while bytes < 64 * 1024 {
                guard let item = try self.cursor.next() else { return (items, true) }
                bytes += item.record.message.utf8.count + item.record.user.utf8.count + 48
                items.append(item)
            }
            return (items, false)
        }.whenComplete { result in
            switch result {
            case .success(let (items, finished)): self.send(items, finished: finished)
            case .failure(let error): self.fail(error)
            }
        }
    }

    private func send(_ items: [HistoryItem], finished: Bool) {
        var text = ""
        var lines: [String] = []
        for item in items {
            text += item.frame.encoded
            let r = item.record
            if let id = item.room {
                if id != room { lines.append(Messages.roomHeader(id)) }
                lines.append(Messages.roomEntry(number: r.number, user: r.user, message: r.message, timestamp: r.timestamp))
            } else {
                lines.append(Messages.broadcastEntry(number: r.number, user: r.user, message: r.message, timestamp: r.timestamp))
            }
            room = item.room
        }
        count += items.count
        if finished {
            text += ServerFrame.ok(kind: "RDM", fields: [String(count)]).encoded
            if count == 0 { lines.append(Messages.noNewMessage) }
        }
        engine.output.events(lines)
        let written = write(ByteBuffer(string: text))
        if finished { return done() }
        written.whenComplete { _ in self.next() }
    }

    private func fail(_ error: Error) {
        engine.logger.error("\(error)")
        write(ChatEngine.encode([.error(code: .storage, messages: ["Error. The server could not read the message history"])]))
        done()
    }

    @discardableResult
    private func write(_ bytes: ByteBuffer) -> EventLoopFuture<Void> {
        outbox.counted(bytes.readableBytes)
        let written = outbox.write(bytes)
        outbox.channel.flush()
        return written
    }
}
