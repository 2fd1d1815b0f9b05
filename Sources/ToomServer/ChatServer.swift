import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOExtras
import NIOPosix
import ToomCore
import ToomSecurity

/// The TOOM server: every connection on SwiftNIO event loops, one `ChatState` behind one
/// lock. A command runs atomically under the lock, log writes included; its reply leaves
/// after the lock is released.
public final class ChatServer: @unchecked Sendable {
    public let configuration: ServerConfiguration
    let output: ServerOutput
    private let lock = NIOLock()
    private let state: ChatState
    /// With `--sync`: the shared fsync replies to log writes wait for.
    let commit: GroupCommit?
    /// Checks hashed passwords off the event loops.
    let passwords = PasswordVerifier()
    private var sessions: [Int: Session] = [:]
    private var nextSessionId = 1
    private var stopping = false
    private var stopTask: Task<Void, Never>?
    private let group: MultiThreadedEventLoopGroup
    private var listener: Channel?

    /// Loads credentials and history (or moves them aside with `fresh`). Throws on files it cannot use.
    public init(configuration: ServerConfiguration, output: ServerOutput = StandardServerOutput()) throws {
        self.configuration = configuration
        self.output = output
        if configuration.fresh, let folder = try LogArchive.moveAside(in: configuration.dataDirectory) {
            output.diagnostic("Old logs moved to \(folder)")
        }
        state = try ChatState(configuration: configuration, warn: { output.diagnostic("warning: " + $0) },
                              note: output.diagnostic)
        commit = state.commit
        group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
    }

    /// Binds the listening socket and returns the address it is bound to.
    public func start() async throws -> SocketAddress {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .probingIdleConnections()
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try configuration.tls?.configure(channel)
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(LineBasedFrameDecoder(), maximumBufferSize: Wire.maxFrameBytes))
                    try channel.pipeline.syncOperations.addHandler(ConnectionHandler(server: self))
                }
            }
        // An address literal binds without a resolver round trip; a name is resolved.
        let channel: Channel
        if let address = try? SocketAddress(ipAddress: configuration.host, port: configuration.port) {
            channel = try await bootstrap.bind(to: address).get()
        } else {
            channel = try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
        }
        lock.withLock { listener = channel }
        verifyLogsInTheBackground()
        return channel.localAddress!
    }

    private func verifyLogsInTheBackground() {
        let logs = lock.withLock { state.logsToVerify }
        let output = self.output
        // Start-up read only the tails of the logs; the rest is checked in the background,
        // once the server is serving.
        Thread.detachNewThread {
            // Lowest priority: checking old lines must not slow down serving new ones.
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 19)  // 0: this thread, on Linux
            for (log, end) in logs {
                do {
                    try log.verify(end: end) { output.diagnostic("warning: " + $0) }
                } catch {
                    output.diagnostic("warning: \(error)")
                }
            }
        }
    }

    /// Completes when the listening socket has closed.
    public func waitUntilClosed() async throws {
        guard let listener = lock.withLock({ listener }) else { return }
        try await listener.closeFuture.get()
    }

    /// Graceful stop: refuse new connections, tell every client, close them, empty
    /// `userlog.txt` (nobody is online) and finish pending fsyncs. Every caller waits for
    /// the same stop.
    public func shutdown() async {
        let task = lock.withLock { () -> Task<Void, Never> in
            if let stopTask { return stopTask }
            stopping = true
            let open = Array(sessions.values)
            for session in open { state.disconnect(session) }
            if let problem = state.flushUserLog() { output.diagnostic(problem) }
            let task = Task { [listener, commit, output] in
                try? await listener?.close()
                for session in open {
                    Self.sendLast(.event(kind: EventKind.shutdown, fields: [Messages.serverShutdown]), on: session.channel)
                }
                for session in open { try? await session.channel.closeFuture.get() }
                if let commit {
                    commit.stop()
                    let done = commit.statistics
                    output.diagnostic("--sync: \(done.writes) writes made durable by \(done.batches) fsync batches")
                }
            }
            stopTask = task
            return task
        }
        await task.value
    }

    /// Stops the event loops, after `shutdown`. Nothing may wait on a channel's future once
    /// they are gone, so this comes last.
    public func releaseEventLoops() async {
        await shutdown()
        try? await group.shutdownGracefully()
        await passwords.shutdown()
    }

    // MARK: Connections

    enum Admission {
        case accepted(Session)
        /// Closed at once, after the reply if there is one.
        case refused(ServerFrame?)
    }

    func open(_ channel: Channel) -> Admission {
        let address = channel.remoteAddress?.ipAddress ?? "unknown"
        let limit = configuration.limits.maxConnections
        return lock.withLock {
            guard !stopping else { return .refused(nil) }
            guard sessions.count < limit else {
                return .refused(.error(code: .limit, messages: ["The server is full (\(limit) connections). Please try again later"]))
            }
            let session = Session(id: nextSessionId, channel: channel, address: address)
            nextSessionId += 1
            sessions[session.id] = session
            return .accepted(session)
        }
    }

    /// Runs one frame. With `--sync`, an outcome that wrote to a log carries the ticket its
    /// reply must wait for.
    func handle(_ fields: [Substring], from session: Session, verified: PasswordVerification? = nil) -> Outcome {
        var (outcome, loggedOut) = lock.withLock { () -> (Outcome, Bool) in
            if stopping { return (Outcome(close: true), false) }
            let before = commit?.latest
            let wasOnline = session.user != nil
            var outcome = state.handle(fields, from: session, verified: verified)
            if let after = commit?.latest, after != before { outcome.durable = after }
            return (outcome, wasOnline && session.user == nil)
        }
        if let query = outcome.history { outcome = query.answer() }
        output.events(outcome.console)
        if loggedOut { scheduleUserLogFlush() }
        for notice in outcome.notices {
            notice.session.channel.writeAndFlush(ByteBuffer(string: notice.frame.encoded), promise: nil)
        }
        return outcome
    }

    private let userLogQueue = DispatchQueue(label: "toom.userlog")

    /// Has `userlog.txt` rewritten soon, off the event loop; departures in the meantime
    /// share the rewrite.
    private func scheduleUserLogFlush() {
        userLogQueue.async { [self] in
            if let problem = lock.withLock({ state.flushUserLog() }) { output.diagnostic(problem) }
        }
    }

    /// The reply for a write whose fsync failed: the line is in the file, but may not survive power loss.
    func notDurable(_ error: Error) -> Outcome {
        output.events(["error: \(error)"])
        return Outcome(replies: [.error(code: .storage, messages: [
            "Error. The server could not make that durable (fsync failed); it may be lost if the machine stops"])])
    }

    /// True while the session has not logged in (and is not closing).
    func awaitsLogin(_ session: Session) -> Bool {
        lock.withLock { session.user == nil && session.phase != .closed }
    }

    /// A client that is not reading its replies is being disconnected.
    func stoppedReading(_ session: Session, unread: Int) {
        let who = lock.withLock { session.user } ?? "a connection from \(session.address)"
        output.events(["\(who) disconnected: not reading its replies (\(unread) bytes unread)"])
    }

    func closed(_ session: Session) {
        let lines: [String] = lock.withLock {
            sessions[session.id] = nil
            guard let user = session.user, state.session(of: user) === session else {
                session.phase = .closed
                return []
            }
            state.disconnect(session)
            return ["\(user) disconnected"]
        }
        output.events(lines)
        if !lines.isEmpty { scheduleUserLogFlush() }
    }

    // MARK: Operator actions

    public struct OnlineUser: Sendable, Equatable {
        public let user: String
        public let address: String
        public let udpPort: Int
        public let since: String
    }

    public struct Room: Sendable, Equatable {
        public let id: Int
        public let members: [String]
    }

    public var onlineUsers: [OnlineUser] {
        lock.withLock { state.onlineEntries.map { OnlineUser(user: $0.user, address: $0.address, udpPort: $0.udpPort, since: $0.timestamp) } }
    }

    public var rooms: [Room] {
        lock.withLock { state.roomList.map { Room(id: $0.id, members: $0.members) } }
    }

    public var blockedUsers: [(user: String, secondsLeft: Int)] {
        lock.withLock { state.blockedUsers.map { ($0.user, Int(($0.remaining.nanoseconds + 999_999_999) / 1_000_000_000)) } }
    }

    /// Disconnects a user; their client prints the operator notice. False when not online.
    public func kick(_ user: String) -> Bool {
        let session: Session? = lock.withLock {
            guard let session = state.session(of: user) else { return nil }
            state.disconnect(session)
            return session
        }
        guard let session else { return false }
        scheduleUserLogFlush()
        output.events(["\(user) disconnected by the operator"])
        Self.sendLast(.event(kind: EventKind.kicked, fields: [Messages.kicked]), on: session.channel)
        return true
    }

    /// Sends a connection's last frame, then closes it.
    private static func sendLast(_ frame: ServerFrame, on channel: Channel) {
        channel.writeAndFlush(ByteBuffer(string: frame.encoded)).whenComplete { _ in channel.close(promise: nil) }
    }

    public enum UnblockResult: Sendable { case unblocked, notBlocked, noSuchUser }

    public func unblock(_ user: String) -> UnblockResult {
        switch lock.withLock({ state.unblock(user) }) {
        case nil: return .noSuchUser
        case true?: return .unblocked
        case false?: return .notBlocked
        }
    }
}

/// One connection: frames in, replies out. A frame that is too long or not UTF-8 closes
/// only this connection, after a one-line explanation; so does a login that takes too long.
/// Replies leave in the order of the frames, each after its log line is written (and, with
/// `--sync`, made durable).
final class ConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let server: ChatServer
    private var session: Session?
    private var closing = false
    private var loginTimer: Scheduled<Void>?
    /// Set while a reply waits for fsync or a password check; frames read meanwhile wait their turn in `backlog`
    /// (reading is paused, so it holds at most one read's worth).
    private var paused = false
    private var backlog: [ByteBuffer] = []
    /// Reply bytes written to the channel but not yet taken by the socket.
    private var unread = 0

    init(server: ChatServer) { self.server = server }

    func channelActive(context: ChannelHandlerContext) {
        switch server.open(context.channel) {
        case .accepted(let session):
            self.session = session
            loginTimer = context.eventLoop.assumeIsolated().scheduleTask(in: server.configuration.limits.loginTimeout) { [self] in
                loginTimedOut(context)
            }
        case .refused(let reply):
            send(context, reply.map { [$0] } ?? [], close: true)
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if paused {
            backlog.append(frame)
        } else {
            handle(context, frame)
        }
    }

    private func handle(_ context: ChannelHandlerContext, _ frame: ByteBuffer, verified: PasswordVerification? = nil) {
        guard !closing, let session else { return }
        let fields: [Substring]
        switch Wire.decodeFrame(frame.readableBytesView) {
        case .failure(let error):
            fail(context, error.description)
            return
        case .success(let decoded):
            fields = decoded
        }
        let outcome = server.handle(fields, from: session, verified: verified)
        if let pending = outcome.verify {
            pause(context)
            server.passwords.verify(pending, on: context.eventLoop).assumeIsolated().whenComplete { [self] result in
                paused = false
                guard case .success(let verified) = result else { return context.close(promise: nil) }
                handle(context, frame, verified: verified)
                resume(context)
            }
            return
        }
        if loginTimer != nil, outcome.replies.contains(where: { if case .ok("LOGIN", _) = $0 { true } else { false } }) {
            loginTimer?.cancel()
            loginTimer = nil
        }
        guard let ticket = outcome.durable, let commit = server.commit else {
            send(context, outcome.replies, close: outcome.close)
            return
        }
        pause(context)
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        commit.whenDurable(ticket) { error in
            bound.eventLoop.execute {
                let (handler, context) = bound.value
                handler.durable(context, error.map(handler.server.notDurable) ?? outcome)
            }
        }
    }

    /// Stops reading while a reply waits (for fsync, or a password check off the loop).
    private func pause(_ context: ChannelHandlerContext) {
        paused = true
        context.channel.setOption(.autoRead, value: false).whenFailure { _ in }
    }

    private func durable(_ context: ChannelHandlerContext, _ outcome: Outcome) {
        paused = false
        send(context, outcome.replies, close: outcome.close)
        resume(context)
    }

    /// Handles the frames read while paused, then reads again.
    private func resume(_ context: ChannelHandlerContext) {
        guard !closing else { return }
        while !paused, !closing, !backlog.isEmpty {
            handle(context, backlog.removeFirst())
        }
        if !paused { context.channel.setOption(.autoRead, value: true).whenFailure { _ in } }
    }

    private func loginTimedOut(_ context: ChannelHandlerContext) {
        loginTimer = nil
        guard !closing, let session, server.awaitsLogin(session) else { return }
        let seconds = server.configuration.limits.loginTimeout.seconds
        send(context, [.error(code: .loginTimeout, messages: ["Login timed out: no login within \(seconds) seconds. Please connect again"])],
             close: true)
    }

    func channelInactive(context: ChannelHandlerContext) {
        loginTimer?.cancel()
        loginTimer = nil
        if let session { server.closed(session) }
        session = nil
        backlog = []
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if error is ByteToMessageDecoderError.PayloadTooLargeError {
            fail(context, FrameError.tooLong.description)
        } else {
            context.close(promise: nil)
        }
    }

    private func fail(_ context: ChannelHandlerContext, _ message: String) {
        send(context, [.error(code: .badFrame, messages: [message])], close: true)
    }

    private func send(_ context: ChannelHandlerContext, _ replies: [ServerFrame], close: Bool) {
        if close { closing = true }
        guard !replies.isEmpty else {
            if close { context.close(promise: nil) }
            return
        }
        if unread > server.configuration.limits.maxUnreadBytes {
            // Not reading: more replies would only pile up in memory.
            if let session { server.stoppedReading(session, unread: unread) }
            closing = true
            context.close(promise: nil)
            return
        }
        var text = ""
        for reply in replies { text += reply.encoded }
        let size = text.utf8.count
        unread += size
        let future = context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: text)))
        future.assumeIsolated().whenComplete { [self] _ in unread -= size }
        if close {
            let channel = context.channel
            future.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
