import NIOCore
import NIOPosix
import ToomChat
import ToomCore

/// The server's UDP port (spec §12): carries out what `RendezvousTable` says of each
/// datagram, on one event loop. Answers and relayed datagrams leave in one flush per burst
/// of reads; a registration that changed a session's addresses is handed to the rules.
final class RendezvousHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private let engine: ChatEngine

    init(engine: ChatEngine) { self.engine = engine }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let now = Duration.nanoseconds(Int64(NIODeadline.now().uptimeNanoseconds))
        let outcome = envelope.data.withUnsafeReadableBytes { bytes in
            engine.rendezvous.withLockedValue { $0.receive(bytes, from: envelope.remoteAddress, now: now) }
        }
        switch outcome {
        case .drop:
            break
        case .forward(let target):
            context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: target, data: envelope.data)), promise: nil)
        case .reply(let bytes, let target, let changed):
            var buffer = context.channel.allocator.buffer(capacity: bytes.count)
            buffer.writeBytes(bytes)
            context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: target, data: buffer)), promise: nil)
            if let changed { engine.registered(changed.session, candidates: changed.candidates) }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) { context.flush() }

    /// ICMP errors (a client's port closed) arrive here on a socket that stays open.
    func errorCaught(context: ChannelHandlerContext, error: Error) {}
}

extension ChatEngine {
    /// A session's client registered new addresses.
    func registered(_ id: SessionID, candidates: [TransferCandidate]) {
        update { $0.registered(id, candidates: candidates) }
    }

    /// Binds the UDP port beside the listening one.
    func bindRendezvous(to address: SocketAddress, group: EventLoopGroup) async throws -> Channel {
        // One read holds the largest datagram a loopback path carries; a few per wake-up.
        try await DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
            .channelOption(.socketOption(.so_sndbuf), value: 4 << 20)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536 * 8))
            .channelOption(.datagramVectorReadMessageCount, value: 8)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RendezvousHandler(engine: self))
                }
            }
            .bind(to: address).get()
    }
}
