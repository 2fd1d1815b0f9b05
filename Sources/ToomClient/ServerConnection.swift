import NIOConcurrencyHelpers
import NIOCore
import NIOExtras
import NIOPosix
import ToomCore
import ToomSecurity

/// The TCP connection to the server: sends frames, and delivers the server's frames in
/// order. Events (and the unasked ERR login_timeout) are handed to `onEvent` at once,
/// whatever the client is doing; SHUTDOWN, KICKED and TOO_SLOW end the session.
final class ServerConnection: Sendable {
    let channel: Channel
    let replies: AsyncStream<ServerFrame>

    /// Set once the session is ending on purpose, so its close is not reported as a lost connection.
    private let closeExpected: NIOLockedValueBox<Bool>

    /// With `tls`, the connection is returned only once the server's certificate is trusted.
    static func connect(host: String, port: Int, tls: ClientTLS?, group: EventLoopGroup,
                        onEvent: @escaping @Sendable (ServerFrame) -> Void,
                        onLost: @escaping @Sendable () -> Void) async throws -> ServerConnection {
        let (stream, continuation) = AsyncStream<ServerFrame>.makeStream()
        let expected = NIOLockedValueBox(false)
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try tls?.configure(channel)
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(LineBasedFrameDecoder(), maximumBufferSize: Wire.maxFrameBytes))
                    try channel.pipeline.syncOperations.addHandler(
                        FrameHandler(continuation: continuation, closeExpected: expected, onEvent: onEvent, onLost: onLost))
                }
            }
            .connect(host: host, port: port).get()
        try await tls?.established()
        return ServerConnection(channel: channel, replies: stream, closeExpected: expected)
    }

    private init(channel: Channel, replies: AsyncStream<ServerFrame>, closeExpected: NIOLockedValueBox<Bool>) {
        self.channel = channel
        self.replies = replies
        self.closeExpected = closeExpected
    }

    func expectClose() { closeExpected.withLockedValue { $0 = true } }

    func send(_ fields: [String]) {
        channel.writeAndFlush(ByteBuffer(string: Wire.encode(fields)), promise: nil)
    }
}

private final class FrameHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    let continuation: AsyncStream<ServerFrame>.Continuation
    let closeExpected: NIOLockedValueBox<Bool>
    let onEvent: @Sendable (ServerFrame) -> Void
    let onLost: @Sendable () -> Void

    init(continuation: AsyncStream<ServerFrame>.Continuation, closeExpected: NIOLockedValueBox<Bool>,
         onEvent: @escaping @Sendable (ServerFrame) -> Void, onLost: @escaping @Sendable () -> Void) {
        self.continuation = continuation
        self.closeExpected = closeExpected
        self.onEvent = onEvent
        self.onLost = onLost
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard let frame = ServerFrame.decode(Substring(String(decoding: buffer.readableBytesView, as: UTF8.self))) else {
            return
        }
        switch frame {
        case .event(let kind, _):
            // Only these end the session; other events (an upload offer, a delivery) are news.
            if EventKind.endingSession.contains(kind) {
                closeExpected.withLockedValue { $0 = true }
            }
            onEvent(frame)
        case .error(.loginTimeout, _):
            // Unsolicited: it comes while the user may be typing at a login prompt.
            closeExpected.withLockedValue { $0 = true }
            onEvent(frame)
        case .error(let code, _) where code.endsSession:
            closeExpected.withLockedValue { $0 = true }
            continuation.yield(frame)
        case .ok("OUT", _):
            closeExpected.withLockedValue { $0 = true }
            continuation.yield(frame)
        default:
            continuation.yield(frame)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        continuation.finish()
        if !closeExpected.withLockedValue({ $0 }) { onLost() }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
