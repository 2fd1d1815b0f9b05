import Foundation
import ArgumentParser
import NIOConcurrencyHelpers
import NIOCore
import NIOExtras
import NIOPosix

/// The fan-out reference: a minimal NIO server that writes each line it reads to every
/// connection (the sender's own copy included), with toom's framing, event-loop count and
/// socket options, and no chat logic.
struct RelayServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "relay-server", abstract: "The fan-out reference server (used by the benchmarks).", shouldDisplay: false)

    func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let connections = NIOLockedValueBox<[ObjectIdentifier: Channel]>([:])
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                connections.withLockedValue { $0[ObjectIdentifier(channel)] = channel }
                channel.closeFuture.whenComplete { _ in
                    _ = connections.withLockedValue { $0.removeValue(forKey: ObjectIdentifier(channel)) }
                }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineBasedFrameDecoder(), maximumBufferSize: 16 * 1024))
                    try channel.pipeline.syncOperations.addHandler(RelayHandler(connections: connections))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        FileHandle.standardOutput.write(Data("Relay server listening on 127.0.0.1 port \(channel.localAddress!.port!)\n".utf8))
        try await channel.closeFuture.get()
    }
}

/// Collects the lines of one read and writes them to every connection when the read is done:
/// one write per connection per read, as any NIO server that flushes per read batch would.
private final class RelayHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    let connections: NIOLockedValueBox<[ObjectIdentifier: Channel]>
    private var pending: ByteBuffer?

    init(connections: NIOLockedValueBox<[ObjectIdentifier: Channel]>) { self.connections = connections }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var line = unwrapInboundIn(data)
        if pending == nil { pending = context.channel.allocator.buffer(capacity: line.readableBytes + 1) }
        pending!.writeBuffer(&line)
        pending!.writeInteger(UInt8(ascii: "\n"))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        guard let frames = pending else { return }
        pending = nil
        for channel in connections.withLockedValue({ $0 }).values {
            channel.writeAndFlush(frames, promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
