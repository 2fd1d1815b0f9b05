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
/// refused). A wait pauses reading only once a frame actually arrives during it: a client
/// that waits for each answer (nearly all of them) costs no pause and resume per frame.
/// What goes out goes through the session's `Outbox`.
final class Connection: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    enum State {
        /// Not yet admitted.
        case opening
        case reading
        /// A password is being checked, a write is being committed, or an RDM answer is on its
        /// way out; `resumeWaiting` comes next. The socket is still read.
        case waiting
        /// Waiting, and a frame came meanwhile: it is in `backlog`, and reading is paused.
        case waitingPaused
        /// Flood control: the first frame of `backlog` is offered again when the timer fires.
        /// The timer is not kept (nor cancelled): if the connection closed meanwhile, it finds
        /// the state `closed` and does nothing. Without it the handler packs into 72 bytes.
        case holding
        /// Waiting or held back, and the client has closed its side (a script that sent
        /// everything at once): what it sent is still answered, in order, then the
        /// connection closes.
        case waitingEnded
        case holdingEnded
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
            case .waiting:
                backlog.append(frame)
                state = .waitingPaused
                setReading(false)
            case .reading, .waitingPaused, .holding, .opening:
                backlog.append(frame)
            case .waitingEnded, .holdingEnded, .closed:
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
            case .hold(let until):
                backlog.prepend(frame)
                let nanoseconds = UInt64(until.components.seconds) * 1_000_000_000 + UInt64(until.components.attoseconds / 1_000_000_000)
                outbox.channel.eventLoop.assumeIsolated().scheduleTask(deadline: .uptimeNanoseconds(nanoseconds)) { [self] in
                    switch state {
                    case .holding, .holdingEnded: read()
                    default: break
                    }
                }
                state = .holding
                setReading(false)
            }
        }
    }

    /// What the connection waited for is done (a password check, a commit, an RDM answer sent).
    func resumeWaiting() {
        switch state {
        case .waiting, .waitingPaused, .waitingEnded: read()
        default: break
        }
    }

    /// Reads again: the frames that waited first, in order.
    private func read() {
        var paused = false, ended = false
        switch state {
        case .waitingPaused, .holding: paused = true
        case .waitingEnded, .holdingEnded: ended = true
        default: break
        }
        state = .reading
        while case .reading = state, let frame = backlog.popFirst() { handle(frame) }
        switch state {
        case .reading:
            if ended { inputEnded() } else if paused { setReading(true) }
        case .waiting:
            if ended { state = .waitingEnded } else if paused { state = .waitingPaused }
        case .holding:
            if ended { state = .holdingEnded }
        default:
            break
        }
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
            // Frames that wait (and the answer waited for, not queued yet) come first.
            switch state {
            case .waiting, .waitingPaused: state = .waitingEnded
            case .holding: state = .holdingEnded
            default: inputEnded()
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// The client sent its last byte: the answers to what it sent still go out (a reply may
    /// wait for the end of this loop turn's batch), then the connection closes.
    private func inputEnded() {
        state = .closed
        backlog.removeAll()
        partial = nil
        guard let context else { return }
        guard let outbox else { return context.close(promise: nil) }
        engine.endOfInput(outbox)
        // A peer that never reads what it is owed is not waited for long.
        let channel = context.channel
        context.eventLoop.scheduleTask(in: .seconds(10)) { channel.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
