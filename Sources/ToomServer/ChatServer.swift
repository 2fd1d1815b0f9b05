import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ToomChat
import ToomCore
import ToomStore
import ToomSecurity

/// The TOOM server: connections on SwiftNIO event loops, the chat rules in one `ChatEngine`,
/// the record in a `ChatStore`. Its lifecycle — start, serve, quiesce, stop — is driven by
/// `ServerService` under swift-service-lifecycle.
public final class ChatServer: @unchecked Sendable {
    public let configuration: ServerConfiguration
    let output: ServerOutput
    public let logger: Logger
    let engine: ChatEngine
    private let store: ChatStore
    private let group: MultiThreadedEventLoopGroup
    private let pool: NIOThreadPool
    private let passwords = PasswordVerifier()
    private let stopTask = NIOLockedValueBox<Task<Void, Never>?>(nil)
    private let listener = NIOLockedValueBox<Channel?>(nil)
    private let datagrams = NIOLockedValueBox<Channel?>(nil)

    /// Loads the accounts and the history (or moves them aside with `fresh`). Throws on files it cannot use.
    /// `store` is the record when it is not the data directory's files (a PostgreSQL store, spec §11).
    public init(configuration: ServerConfiguration, output: ServerOutput = StandardServerOutput(),
                store: ChatStore? = nil) throws {
        self.configuration = configuration
        self.output = output
        let logger = Logger.server(output)
        self.logger = logger
        if let store {
            self.store = store
        } else {
            if configuration.fresh, let folder = try LogArchive.moveAside(in: configuration.dataDirectory) {
                logger.info("Old logs moved to \(folder)")
            }
            self.store = try FileChatStore(directory: configuration.dataDirectory, sync: configuration.sync,
                                           warn: { logger.warning("\($0)") })
        }
        group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        engine = try ChatEngine(store: self.store, settings: configuration.chatSettings, limits: configuration.limits,
                                output: output, logger: logger, pool: pool, passwords: passwords,
                                loops: Array(group.makeIterator()), relayRate: configuration.relayRate)
    }

    /// Binds the listening socket and returns the address it is bound to.
    public func start() async throws -> SocketAddress {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            // The end of a client's input is an event, not a close: what it is owed (replies
            // waiting for the end of a loop turn's batch) still goes out before the connection closes.
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            // Each connection keeps its receive buffer between reads; chat frames are short, so
            // start small (it grows for long frames): an idle session then holds 64 bytes, not 2 KiB.
            .childChannelOption(.recvAllocator, value: ReceiveBuffers(minimum: 64, initial: 64, maximum: 65536))
            .probingIdleConnections()
            .childChannelInitializer { [engine, configuration] channel in
                channel.eventLoop.makeCompletedFuture {
                    try configuration.tls?.configure(channel)
                    try channel.pipeline.syncOperations.addHandler(Connection(engine: engine))
                }
            }
        let (channel, udp) = try await bind(bootstrap, host: configuration.host)
        listener.withLockedValue { $0 = channel }
        datagrams.withLockedValue { $0 = udp }
        engine.followSharedStore()
        store.verify { [logger] in logger.warning("\($0)") }
        return channel.localAddress!
    }

    /// Binds TCP, then UDP on the same port number (spec §12). A port the kernel picked for
    /// TCP may be taken for UDP: then both are tried again on another.
    private func bind(_ bootstrap: ServerBootstrap, host: String) async throws -> (Channel, Channel) {
        var attempts = configuration.port == 0 ? 5 : 1
        while true {
            attempts -= 1
            let channel: Channel
            do {
                channel = try await bindTCP(bootstrap, host: host)
            } catch let error as IOError where host == "::" && error.errnoCode == EAFNOSUPPORT {
                // No IPv6 on this system: every IPv4 interface instead.
                return try await bind(bootstrap, host: "0.0.0.0")
            }
            do {
                return (channel, try await engine.bindRendezvous(to: channel.localAddress!, group: group))
            } catch {
                try? await channel.close()
                if attempts <= 0 { throw error }
            }
        }
    }

    private func bindTCP(_ bootstrap: ServerBootstrap, host: String) async throws -> Channel {
        // An address literal binds without a resolver round trip; a name is resolved.
        if let address = try? SocketAddress(ipAddress: host, port: configuration.port) {
            return try await bootstrap.bind(to: address).get()
        }
        return try await bootstrap.bind(host: host, port: configuration.port).get()
    }

    /// Completes when the listening socket has closed.
    public func waitUntilClosed() async throws {
        guard let listener = listener.withLockedValue({ $0 }) else { return }
        try await listener.closeFuture.get()
    }

    /// Graceful stop: tell every client and close them, stop listening, wait until every
    /// session has closed, empty `userlog.txt` and finish pending fsyncs. Every caller waits
    /// for the same stop.
    public func shutdown() async {
        let task = stopTask.withLockedValue { task -> Task<Void, Never> in
            if let task { return task }
            // Only a server that listened has connections to wait for.
            let listening = listener.withLockedValue { $0 }
            let datagrams = self.datagrams.withLockedValue { $0 }
            let started = Task { [engine, store, logger] in
                // From here the engine refuses new connections; those it has are told and closed.
                engine.shutdown()
                if let listening {
                    try? await listening.close()
                    try? await datagrams?.close()
                    await engine.sessionsClosed()
                }
                if let shared = store.shared { await shared.stop() }
                if let report = store.close() { logger.info("\(report)") }
            }
            task = started
            return started
        }
        await task.value
    }

    /// Stops the event loops, after `shutdown`. Nothing may wait on a channel's future once
    /// they are gone, so this comes last.
    public func releaseEventLoops() async {
        await shutdown()
        try? await pool.shutdownGracefully()
        await passwords.shutdown()
        try? await group.shutdownGracefully()
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
        engine.onlineUsers.map { OnlineUser(user: $0.user, address: $0.address, udpPort: $0.udpPort, since: $0.timestamp) }
    }

    public var rooms: [Room] { engine.rooms.map { Room(id: $0.id, members: $0.members) } }

    public var blockedUsers: [(user: String, secondsLeft: Int)] {
        engine.blocked.map { entry in
            let (seconds, attoseconds) = entry.remaining.components
            return (entry.user, Int(seconds) + (attoseconds > 0 ? 1 : 0))
        }
    }

    /// Disconnects a user; their client prints the operator notice. False when not online.
    public func kick(_ user: String) -> Bool { engine.kick(user) }

    public typealias UnblockResult = ChatCore.UnblockResult

    public func unblock(_ user: String) -> UnblockResult { engine.unblock(user) }
}
