import DequeModule
import NIOCore
import ToomChat
import ToomCore

/// One client connection: bytes in, cut into frames at each newline (one handler does the
/// framing too, which keeps an idle session small), to the engine one at a time and in
/// order. Its one
/// state says whether it is reading, waiting for a password check, held back by flood
/// control, or closed; frames that arrive meanwhile wait in `backlog`, and reading from the
/// socket pauses so the kernel holds the rest (a flooder's frames are read later, never
/// refused). What goes out goes through the session's `Outbox`.
final class Connection: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    enum State {
        /// Not yet admitted.
        case opening
        case reading
        /// A password is being checked, or an RDM answer is on its way out; `resumeWaiting` comes next.
        case waiting
        /// Flood control: the first frame of `backlog` is offered again when the timer fires.
        /// The timer is not kept (nor cancelled): if the connection closed meanwhile, it finds
        /// the state `closed` and does nothing. Without it the handler packs into 72 bytes.
        case holding
        /// Refused, closing or closed: frames are dropped.
        case closed
    }

    // In this order the fields pack tightly: one handler per connection.
    private let engine: ChatEngine
    private var backlog = Deque<ByteBuffer>()
    private var outbox: Outbox?
    private var context: ChannelHandlerContext?
    /// The start of a frame whose newline has not arrived yet.
    private var partial: ByteBuffer?
    private var state = State.opening

    init(engine: ChatEngine) { self.engine = engine }

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        switch engine.open(context.channel) {
        case .accepted(let outbox):
            self.outbox = outbox
            outbox.attach(self)
            read()  // frames that came before admission, if any, first
        case .refused(let frame):
            state = .closed
            let channel = context.channel
            channel.writeAndFlush(frame.map { ByteBuffer(string: $0.encoded) } ?? ByteBuffer())
                .whenComplete { _ in channel.close(promise: nil) }
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if var partial {
            self.partial = nil
            partial.writeBuffer(&bytes)
            bytes = partial
        }
        while let newline = bytes.readableBytesView.firstIndex(of: 0x0A) {
            let frame = bytes.readSlice(length: newline - bytes.readerIndex)!
            bytes.moveReaderIndex(forwardBy: 1)
            switch state {
            case .reading where backlog.isEmpty:
                handle(frame)
            case .reading, .waiting, .holding, .opening:
                backlog.append(frame)
            case .closed:
                return
            }
        }
        guard bytes.readableBytes > 0 else { return }
        // A frame can never grow past the limit, however it arrives.
        if bytes.readableBytes >= Wire.maxFrameBytes { return close(explaining: FrameError.tooLong.description) }
        partial = bytes
    }

    /// Hands one frame to the engine and follows its answer.
    private func handle(_ frame: ByteBuffer) {
        guard let outbox else { return }
        switch Wire.decodeFrame(frame.readableBytesView) {
        case .failure(let error):
            close(explaining: error.description)
        case .success(let fields):
            switch engine.receive(fields, from: outbox) {
            case .next:
                break
            case .wait:
                state = .waiting
                setReading(false)
            case .hold(let until):
                backlog.prepend(frame)
                let nanoseconds = UInt64(until.components.seconds) * 1_000_000_000 + UInt64(until.components.attoseconds / 1_000_000_000)
                outbox.channel.eventLoop.assumeIsolated().scheduleTask(deadline: .uptimeNanoseconds(nanoseconds)) { [self] in
                    guard case .holding = state else { return }
                    read()
                }
                state = .holding
                setReading(false)
            }
        }
    }

    /// What the connection waited for is done (a password check, an RDM answer sent).
    func resumeWaiting() {
        guard case .waiting = state else { return }
        read()
    }

    /// Reads again: the frames that waited first, in order.
    private func read() {
        state = .reading
        while case .reading = state, let frame = backlog.popFirst() { handle(frame) }
        if case .reading = state { setReading(true) }
    }

    private func setReading(_ on: Bool) {
        guard let context else { return }
        context.channel.setOption(.autoRead, value: on).whenFailure { _ in }
        if on { context.read() }
    }

    private func close(explaining message: String) {
        state = .closed
        backlog.removeAll()
        if let outbox { engine.refuse(outbox, message) } else { context?.close(promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        state = .closed
        backlog.removeAll()
        partial = nil
        if let outbox { engine.closed(outbox) }
        outbox?.attach(nil)
        outbox = nil
        self.context = nil
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            // The client sent its last byte: the answers to what it sent still go out (a
            // reply may wait for the end of this loop turn's batch), then the connection closes.
            state = .closed
            backlog.removeAll()
            partial = nil
            guard let outbox else { return context.close(promise: nil) }
            engine.endOfInput(outbox)
            // A peer that never reads what it is owed is not waited for long.
            let channel = context.channel
            context.eventLoop.scheduleTask(in: .seconds(10)) { channel.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
