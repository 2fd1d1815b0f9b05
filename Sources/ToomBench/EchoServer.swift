import Foundation
import ArgumentParser
import NIOCore
import NIOExtras
import NIOPosix

/// The reference: a minimal NIO server that frames lines and echoes them, with the same
/// framing, event-loop count and socket options as toom, and nothing else.
struct EchoServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "echo-server", abstract: "The reference server (used by the benchmarks).", shouldDisplay: false)

    func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineBasedFrameDecoder(), maximumBufferSize: 16 * 1024))
                    try channel.pipeline.syncOperations.addHandler(EchoHandler())
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        FileHandle.standardOutput.write(Data("Echo server listening on 127.0.0.1 port \(channel.localAddress!.port!)\n".utf8))
        try await channel.closeFuture.get()
    }
}

private final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var line = unwrapInboundIn(data)
        var reply = context.channel.allocator.buffer(capacity: line.readableBytes + 1)
        reply.writeBuffer(&line)
        reply.writeInteger(UInt8(ascii: "\n"))
        context.writeAndFlush(wrapOutboundOut(reply), promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
