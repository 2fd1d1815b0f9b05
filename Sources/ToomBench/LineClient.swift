import NIOCore
import NIOExtras
import NIOPosix
import ToomSecurity

/// A load-generating connection: sends a frame, completes when the reply's last line arrives.
/// Against toom a reply ends with an `OK`, `ERR` or `HELLO` line; against the echo reference
/// every line is a whole reply; against ngircd a reply ends with the line that contains the
/// request's `until` text (a `PONG` for the load, since every command there is followed by a `PING`).
/// Lines that carry a fan-out message go to the `FanoutLoad` instead, never into a reply.
final class LineClient: Sendable {
    let channel: Channel
    private let handler: ReplyHandler

    enum Peer: Sendable { case toom, echo, irc }

    /// `fingerprint`: speak TLS, as `toom client --fingerprint` does, through the client's own hook.
    static func connect(port: Int, peer: Peer, group: EventLoopGroup,
                        deliveries: (load: FanoutLoad, receiver: Int)? = nil, fingerprint: String? = nil) async throws -> LineClient {
        let tls = try fingerprint.map { try ClientTLS(host: "127.0.0.1", port: port, pinned: $0, notice: { _ in }) }
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try tls?.configure(channel)
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineBasedFrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(ReplyHandler(peer: peer, deliveries: deliveries))
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
    func request(_ frame: String, until: String? = nil) async throws -> Int {
        try await send(frame, until: until, keepLines: false).count
    }

    /// Sends `frame` and returns the lines of the reply.
    func requestLines(_ frame: String, until: String? = nil) async throws -> [String] {
        try await send(frame, until: until, keepLines: true).lines
    }

    private func send(_ frame: String, until: String?, keepLines: Bool) async throws -> Reply {
        let handler = self.handler
        let channel = self.channel
        return try await channel.eventLoop.flatSubmit {
            let promise = channel.eventLoop.makePromise(of: Reply.self)
            guard channel.isActive else {
                promise.fail(ChannelError.ioOnClosedChannel)
                return promise.futureResult
            }
            handler.pending.append(ReplyHandler.Pending(promise: promise, until: until.map { Array($0.utf8) },
                                                        keepLines: keepLines))
            channel.writeAndFlush(ByteBuffer(string: frame), promise: nil)
            return promise.futureResult
        }.get()
    }

    func close() async {
        try? await channel.close()
    }
}

struct Reply: Sendable {
    var count = 0
    var lines: [String] = []
}

/// Touched only on its channel's event loop.
private final class ReplyHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    struct Pending {
        let promise: EventLoopPromise<Reply>
        let until: [UInt8]?
        let keepLines: Bool
    }

    let peer: LineClient.Peer
    let deliveries: (load: FanoutLoad, receiver: Int)?
    var pending = CircularBuffer<Pending>()
    private var reply = Reply()
    /// The last sequence number seen from each sender, to notice a delivery out of order, lost or twice.
    private var lastSeen: [Int]

    init(peer: LineClient.Peer, deliveries: (load: FanoutLoad, receiver: Int)?) {
        self.peer = peer
        self.deliveries = deliveries
        lastSeen = Array(repeating: -1, count: deliveries?.load.senders ?? 0)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let line = unwrapInboundIn(data)
        if let deliveries, let message = FanoutMessage.parse(line) {
            guard message.sender != deliveries.receiver, message.sender < lastSeen.count else { return }
            let inOrder = message.sequence == lastSeen[message.sender] + 1
            lastSeen[message.sender] = message.sequence
            deliveries.load.received(message, inOrder: inOrder)
            return
        }
        guard let first = pending.first else { return }
        reply.count += 1
        if first.keepLines { reply.lines.append(String(buffer: line)) }
        let final: Bool
        switch peer {
        case .echo:
            final = true
        case .toom:
            let byte = line.getInteger(at: line.readerIndex, as: UInt8.self)
            // OK…, ERR…, HELLO…; not ITEM or EVENT.
            final = byte == UInt8(ascii: "O") || byte == UInt8(ascii: "H")
                || (byte == UInt8(ascii: "E") && line.getInteger(at: line.readerIndex + 1, as: UInt8.self) == UInt8(ascii: "R"))
        case .irc:
            final = line.readableBytesView.firstRange(of: first.until ?? Array(" PONG ".utf8)) != nil
        }
        if final {
            pending.removeFirst().promise.succeed(reply)
            reply = Reply()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        while !pending.isEmpty { pending.removeFirst().promise.fail(ChannelError.ioOnClosedChannel) }
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
