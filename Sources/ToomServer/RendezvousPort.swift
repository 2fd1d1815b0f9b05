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
        // With GRO one read holds a train of datagrams from one sender, all of one size but
        // the last: each is judged alone, and runs of them going to the same place leave as
        // one GSO train, cut where the original datagrams were.
        let total = envelope.data.readableBytes
        var step = envelope.metadata?.segmentSize ?? total
        if step <= 0 { step = total }
        var outcomes: [RendezvousTable.Outcome] = []
        envelope.data.withUnsafeReadableBytes { all in
            engine.rendezvous.withLockedValue { table in
                var offset = 0
                while offset < all.count {
                    let end = min(offset + step, all.count)
                    outcomes.append(table.receive(UnsafeRawBufferPointer(rebasing: all[offset..<end]),
                                                  from: envelope.remoteAddress, now: now))
                    offset = end
                }
            }
        }
        var index = 0
        while index < outcomes.count {
            switch outcomes[index] {
            case .drop:
                index += 1
            case .forward(let target):
                var last = index + 1
                while last < outcomes.count, outcomes[last] == .forward(to: target) { last += 1 }
                let start = index * step
                let length = min(last * step, total) - start
                let train = envelope.data.getSlice(at: envelope.data.readerIndex + start, length: length)!
                let metadata = last - index > 1
                    ? AddressedEnvelope<ByteBuffer>.Metadata(ecnState: .transportNotCapable, packetInfo: nil, segmentSize: step)
                    : nil
                context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: target, data: train, metadata: metadata)),
                              promise: nil)
                index = last
            case .reply(let bytes, let target, let changed):
                var buffer = context.channel.allocator.buffer(capacity: bytes.count)
                buffer.writeBytes(bytes)
                context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: target, data: buffer)), promise: nil)
                if let changed { engine.registered(changed.session, candidates: changed.candidates) }
                index += 1
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) { context.flush() }

    /// ICMP errors (a client's port closed) arrive here on a socket that stays open; a GSO
    /// train the kernel refused is lost like any datagram, and the transfer sends it again.
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
                    if System.supportsUDPReceiveOffload {
                        try channel.syncOptions?.setOption(.datagramReceiveOffload, value: true)
                        try channel.syncOptions?.setOption(.datagramReceiveSegmentSize, value: true)
                    }
                    try channel.pipeline.syncOperations.addHandler(RendezvousHandler(engine: self))
                }
            }
            .bind(to: address).get()
    }
}
