import DequeModule
import NIOConcurrencyHelpers
import NIOCore
import ToomChat
import ToomCore

/// Everything that goes out to one client, in order: replies, events, live deliveries and
/// RDM answers. The engine queues under its lock, so each queue holds the rules' order;
/// the connection's event loop writes, so fan-out never writes to a connection while the
/// engine's lock is held, and a slow reader slows no one but itself.
final class Outbox: @unchecked Sendable {
    enum Entry {
        /// Frames; with `--sync`, sent once the write `gate` is durable, or `notDurable` if it failed.
        case frames(ByteBuffer, gate: UInt64?, notDurable: ByteBuffer?)
        /// An RDM answer, read from the store while it is written.
        case history(HistoryRequest)
        /// Close once everything before it has gone out.
        case close
    }

    let id: SessionID
    let channel: Channel
    private unowned let engine: ChatEngine
    private let lock = NIOLock()
    private var queue = Deque<Entry>()
    /// A drain is scheduled on the event loop, or running.
    private var draining = false
    /// Waiting for a durable write or an RDM answer: the queue waits behind it.
    private var waiting = false
    /// Bytes queued or written but not yet taken by the socket.
    private var unread = 0
    /// Past the unread limit: nothing more is queued but the session's last event.
    private var cutOff = false
    private var durableThrough: UInt64 = 0
    /// The login timer, cancelled at login.
    private var loginTimer: Scheduled<Void>?
    /// Set by the connection: lets it read frames again after a password check.
    private var resume: (@Sendable () -> Void)?

    init(id: SessionID, channel: Channel, engine: ChatEngine) {
        self.id = id
        self.channel = channel
        self.engine = engine
    }

    /// Queues an entry (under the engine's lock). Returns the unread bytes when this took the
    /// client past `limit`; the engine then cuts it off.
    func enqueue(_ entry: Entry, size: Int, limit: Int, endsSession: Bool = false) -> Int? {
        lock.withLock {
            if cutOff {
                // Only the last word of a session cut off goes out, ahead of what it did not read.
                guard endsSession || { if case .close = entry { true } else { false } }() else { return nil }
                if endsSession { queue.removeAll() }
                queue.append(entry)
                return nil
            }
            queue.append(entry)
            unread += size
            if unread > limit {
                cutOff = true
                return unread
            }
            return nil
        }
    }

    /// Has the event loop write what is queued (after the engine's lock is released).
    func schedule() {
        let start: Bool = lock.withLock {
            guard !draining, !waiting, !queue.isEmpty else { return false }
            draining = true
            return true
        }
        guard start else { return }
        // On its own event loop (a reply to the frame just read) it goes out at once: a
        // client that sends its last frame and closes still gets the answer.
        if channel.eventLoop.inEventLoop { drain() } else { channel.eventLoop.execute { self.drain() } }
    }

    /// Writes queued entries in order until the queue is empty or an entry must wait.
    private func drain() {
        var wrote = false
        defer { if wrote { channel.flush() } }
        while true {
            let next: Entry? = lock.withLock {
                guard !waiting, let entry = queue.first else {
                    draining = false
                    return nil
                }
                if case .frames(_, let gate?, _) = entry, gate > durableThrough {
                    waiting = true
                    draining = false
                    return nil
                }
                return queue.removeFirst()
            }
            guard let next else {
                waitForDurability()
                return
            }
            switch next {
            case .frames(let bytes, _, _):
                write(bytes)
                wrote = true
            case .close:
                let channel = channel
                channel.writeAndFlush(ByteBuffer()).whenComplete { _ in channel.close(promise: nil) }
                wrote = false
                if lock.withLock({ cutOff }) {
                    // A client that does not read may never take its last frame: do not wait long.
                    channel.eventLoop.scheduleTask(in: .seconds(2)) { channel.close(promise: nil) }
                }
            case .history(let request):
                lock.withLock { waiting = true }
                if wrote { channel.flush() }
                wrote = false
                engine.answer(request, to: self) { [self] in
                    lock.withLock { waiting = false; draining = true }
                    drain()
                    resumeReading()
                }
                return
            }
        }
    }

    /// Waits for the head entry's write to be durable, then drains again.
    private func waitForDurability() {
        let head: (UInt64, ByteBuffer?)? = lock.withLock {
            guard waiting, case .frames(_, let gate?, let notDurable)? = queue.first else { return nil }
            return (gate, notDurable)
        }
        guard let (gate, notDurable) = head else { return }
        engine.store.whenDurable(gate) { [self] error in
            channel.eventLoop.execute { [self] in
                lock.withLock {
                    durableThrough = max(durableThrough, gate)
                    if let error, case .frames(let bytes, _, _) = queue.first {
                        engine.notDurable(error)
                        queue[0] = .frames(notDurable ?? bytes, gate: nil, notDurable: nil)
                    }
                    waiting = false
                    draining = true
                }
                drain()
            }
        }
    }

    /// Writes bytes and counts them unread until the socket takes them.
    @discardableResult
    func write(_ bytes: ByteBuffer) -> EventLoopFuture<Void> {
        let size = bytes.readableBytes
        let written = channel.write(bytes)
        written.whenComplete { [self] _ in lock.withLock { unread -= size } }
        return written
    }

    /// Adds bytes written outside the queue (an RDM answer) to the unread count.
    func counted(_ size: Int) { lock.withLock { unread += size } }

    func startLoginTimer(at deadline: Duration, _ fire: @escaping @Sendable () -> Void) {
        let nanoseconds = UInt64(max(0, deadline.components.seconds)) * 1_000_000_000
            + UInt64(deadline.components.attoseconds / 1_000_000_000)
        let timer = channel.eventLoop.scheduleTask(deadline: .uptimeNanoseconds(nanoseconds)) { fire() }
        lock.withLock { loginTimer = timer }
    }

    func cancelLoginTimer() {
        lock.withLock {
            loginTimer?.cancel()
            loginTimer = nil
        }
    }

    func onResume(_ body: (@Sendable () -> Void)?) { lock.withLock { resume = body } }

    /// The connection reads frames again, on its event loop.
    func resumeReading() {
        guard let resume = lock.withLock({ resume }) else { return }
        channel.eventLoop.execute(resume)
    }
}
