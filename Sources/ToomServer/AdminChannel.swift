import Foundation
import NIOCore
import NIOExtras
import NIOPosix
import ServiceLifecycle
import ToomCore

/// The admin channel: a Unix domain socket, `toom.sock` in the data directory, through
/// which `toom admin` asks the running server to list, kick and unblock. Only the server's
/// owner may use it: the socket is mode 0600, and every connection's peer uid
/// (SO_PEERCRED) must be the server's own. Protocol in docs/OPERATOR.md, "The admin channel".
public final class AdminChannel: Service, Sendable {
    public static let socketName = "toom.sock"

    public enum SetupError: Error, CustomStringConvertible {
        /// Another server answers on the socket: it is using this data directory.
        case serverRunning(path: String)
        case unusable(path: String, reason: String)

        public var description: String {
            switch self {
            case .serverRunning(let path):
                return "another toom server is running with this data directory (it answers on \(path))"
            case .unusable(let path, let reason):
                return "cannot set up the admin channel \(path): \(reason)"
            }
        }
    }

    public static func socketPath(dataDirectory: String) -> String {
        dataDirectory + "/" + socketName
    }

    /// Makes sure no other server uses the data directory, and removes the socket a crashed
    /// server left behind. Call before touching the data directory's files.
    public static func claim(dataDirectory: String) async throws {
        let path = socketPath(dataDirectory: dataDirectory)
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFSOCK else {
            throw SetupError.unusable(path: path, reason: "it exists and is not a socket")
        }
        if let channel = try? await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(unixDomainSocketPath: path).get() {
            try? await channel.close()
            throw SetupError.serverRunning(path: path)
        }
        guard unlink(path) == 0 || errno == ENOENT else {
            throw SetupError.unusable(path: path, reason: "cannot remove the stale socket: \(String(cString: strerror(errno)))")
        }
    }

    private typealias Connection = (channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>, peer: uid_t?)

    let path: String
    private let actions: OperatorActions
    private let listener: NIOAsyncChannel<Connection, Never>

    /// Binds the socket (mode 0600).
    public static func bind(dataDirectory: String, actions: OperatorActions) async throws -> AdminChannel {
        let path = socketPath(dataDirectory: dataDirectory)
        let listener: NIOAsyncChannel<Connection, Never>
        do {
            listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .bind(unixDomainSocketPath: path) { channel in
                    peerUID(of: channel).flatMapThrowing { peer in
                        try channel.pipeline.syncOperations.addHandler(
                            ByteToMessageHandler(LineBasedFrameDecoder(), maximumBufferSize: Wire.maxFrameBytes))
                        return (try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel), peer)
                    }
                }
        } catch {
            throw SetupError.unusable(path: path, reason: describeError(error))
        }
        guard chmod(path, 0o600) == 0 else {
            let reason = String(cString: strerror(errno))
            try? await listener.channel.close()
            unlink(path)
            throw SetupError.unusable(path: path, reason: "chmod: \(reason)")
        }
        return AdminChannel(path: path, actions: actions, listener: listener)
    }

    private init(path: String, actions: OperatorActions, listener: NIOAsyncChannel<Connection, Never>) {
        self.path = path
        self.actions = actions
        self.listener = listener
    }

    /// Serves requests until the graceful shutdown, then removes the socket.
    public func run() async throws {
        defer { unlink(path) }
        let listener = self.listener
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                try await listener.executeThenClose { inbound in
                    for try await connection in inbound {
                        group.addTask { await self.serve(connection) }
                    }
                }
            }
        } onGracefulShutdown: {
            listener.channel.close(promise: nil)
        }
    }

    private func serve(_ connection: Connection) async {
        try? await connection.channel.executeThenClose { inbound, outbound in
            var replies: [[String]]
            // The request is read even from a stranger, so the refusal is not lost to a reset.
            var lines = inbound.makeAsyncIterator()
            guard let request = try await lines.next() else { return }
            if connection.peer != getuid() {
                replies = [AdminFrame.final(.refused("Permission denied: only the server's owner may use the admin channel"))]
            } else {
                let text = String(decoding: request.readableBytesView, as: UTF8.self)
                if let command = AdminFrame.parseRequest(Wire.fields(text[...])) {
                    let reply = actions.perform(command)
                    replies = (command == .list ? AdminFrame.report(actions.report) : []) + [AdminFrame.final(reply)]
                } else {
                    replies = [AdminFrame.final(.refused("Unknown request; expected LIST, KICK <user> or UNBLOCK <user>"))]
                }
            }
            try await outbound.write(ByteBuffer(string: replies.map(Wire.encode).joined()))
        }
    }

    private static func peerUID(of channel: Channel) -> EventLoopFuture<uid_t?> {
        guard let provider = channel as? SocketOptionProvider else { return channel.eventLoop.makeSucceededFuture(nil) }
        #if os(Linux)
        let credentials: EventLoopFuture<PeerCredentials> = provider.unsafeGetSocketOption(
            level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
        return credentials.map { Optional($0.uid) }.recover { _ in nil }
        #else
        let credentials: EventLoopFuture<xucred> = provider.unsafeGetSocketOption(
            level: SocketOptionLevel(SOL_LOCAL), name: SocketOptionName(LOCAL_PEERCRED))
        return credentials.map { Optional($0.cr_uid) }.recover { _ in nil }
        #endif
    }
}

#if os(Linux)
/// Linux's `struct ucred`, which Glibc's Swift module leaves out (it needs _GNU_SOURCE).
private struct PeerCredentials: Sendable {
    var pid: pid_t = 0
    var uid: uid_t = 0
    var gid: gid_t = 0
}
#endif

/// An error in words: the system's message for an errno, else the error itself.
public func describeError(_ error: Error) -> String {
    if let error = error as? IOError { return String(cString: strerror(error.errnoCode)) }
    return "\(error)"
}
