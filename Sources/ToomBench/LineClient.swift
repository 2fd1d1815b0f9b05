import NIOCore
import NIOExtras
import NIOPosix
import ToomSecurity

/// A load-generating connection: sends a frame, completes when the reply's last line arrives.
/// Against toom a reply ends with an `OK`, `ERR` or `HELLO` line; against the echo reference
/// every line is a whole reply.
final class LineClient: Sendable {
    let channel: Channel
    private let handler: ReplyHandler

    enum Peer: Sendable { case toom, echo }

    /// `fingerprint`: speak TLS, as `toom client --fingerprint` does, through the client's own hook.
    static func connect(port: Int, peer: Peer, group: EventLoopGroup, fingerprint: String? = nil) async throws -> LineClient {
        let tls = try fingerprint.map { try ClientTLS(host: "127.0.0.1", port: port, pinned: $0, notice: { _ in }) }
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try tls?.configure(channel)
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineBasedFrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(ReplyHandler(peer: peer))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        try await tls?.established()
        let handler = try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.handler(type: ReplyHandler.self)
        }.get()
        return LineClient(channel: channel, handler: handler)
    }

    private init(channel: Channel, handler: ReplyHandler) {
        self.channel = channel
        self.handler = handler
    }

    /// Sends `frame` (with its newline) and returns the number of lines in the reply.
    func request(_ frame: String) async throws -> Int {
        let handler = self.handler
        let channel = self.channel
        return try await channel.eventLoop.flatSubmit {
            let promise = channel.eventLoop.makePromise(of: Int.self)
            guard channel.isActive else {
                promise.fail(ChannelError.ioOnClosedChannel)
                return promise.futureResult
            }
            handler.pending.append(promise)
            channel.writeAndFlush(ByteBuffer(string: frame), promise: nil)
            return promise.futureResult
        }.get()
    }

    func close() async {
        try? await channel.close()
    }
}

/// Touched only on its channel's event loop.
private final class ReplyHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    let peer: LineClient.Peer
    var pending = CircularBuffer<EventLoopPromise<Int>>()
    private var lines = 0

    init(peer: LineClient.Peer) { self.peer = peer }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let line = unwrapInboundIn(data)
        lines += 1
        let final: Bool
        switch peer {
        case .echo:
            final = true
        case .toom:
            let first = line.getInteger(at: line.readerIndex, as: UInt8.self)
            // OK…, ERR…, HELLO…; not ITEM or EVENT.
            final = first == UInt8(ascii: "O") || first == UInt8(ascii: "H")
                || (first == UInt8(ascii: "E") && line.getInteger(at: line.readerIndex + 1, as: UInt8.self) == UInt8(ascii: "R"))
        }
        if final, !pending.isEmpty {
            pending.removeFirst().succeed(lines)
            lines = 0
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        while !pending.isEmpty { pending.removeFirst().fail(ChannelError.ioOnClosedChannel) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// Runs `body` for each of `count` items with at most `width` at a time.
func forEachConcurrently(_ count: Int, width: Int, _ body: @escaping @Sendable (Int) async throws -> Void) async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
        var next = 0
        while next < min(width, count) {
            let i = next
            group.addTask { try await body(i) }
            next += 1
        }
        while try await group.next() != nil {
            if next < count {
                let i = next
                group.addTask { try await body(i) }
                next += 1
            }
        }
    }
}
