import DequeModule
import NIOCore
import Synchronization
import ToomChat
import ToomCore

/// Everything that goes out to one client, in order: replies, events, live deliveries and
/// RDM answers. The engine queues under its lock, so each queue holds the rules' order;
/// the connection's event loop writes, so fan-out never writes to a connection while the
/// engine's lock is held, and a slow reader slows no one but itself.
final class Outbox: @unchecked Sendable {
    enum Entry: Sendable {
        /// Frames; with `--sync`, sent once the write `gate` is durable, or `notDurable` if it failed.
        case frames(ByteBuffer, gate: UInt64?, notDurable: ByteBuffer?)
        /// An RDM answer, read from the store while it is written.
        case history(HistoryRequest)
        /// Close once everything before it has gone out.
        case close
    }

    /// One value for where the outbox stands.
    struct State: Equatable {
        enum Drain: Equatable {
            /// Nothing scheduled: the next `schedule` starts a drain.
            case idle
            /// A drain is scheduled on the event loop, or running.
            case draining
            /// The queue waits behind its head: a write not yet durable, or an RDM answer being sent.
            case waiting(Wait)
        }
        enum Wait: Equatable { case durability, history }

        var drain: Drain
        /// Past the unread limit: nothing more is queued but the session's last event.
        var cutOff: Bool
    }

    let id: SessionID
    let channel: Channel
    private unowned let engine: ChatEngine

    /// What the lock guards. Kept in the mutex's own value, inline in the outbox (a `NIOLock`
    /// was a heap object of its own per session), and reached through `inout`, so no access
    /// needs a dynamic exclusivity check.
    private struct Guarded {
        var queue = Deque<Entry>()
        /// Where the queue's drain stands, and whether the client was cut off.
        var state = State(drain: .idle, cutOff: false)
        /// Bytes queued or written but not yet taken by the socket.
        var unread = 0
        var durableThrough: UInt64 = 0
        /// The login timer, cancelled at login.
        var loginTimer: Scheduled<Void>?
        /// The connection, which reads frames again after a password check or an RDM answer.
        var connection: NIOLoopBound<Connection>?
    }

    private let guarded = Mutex(Guarded())
    /// The engine's mark: which of its steps last queued here (under the engine's lock).
    var touched = 0

    init(id: SessionID, channel: Channel, engine: ChatEngine) {
        self.id = id
        self.channel = channel
        self.engine = engine
    }

    /// Queues an entry (under the engine's lock). Returns the unread bytes when this took the
    /// client past `limit`; the engine then cuts it off.
    func enqueue(_ entry: __owned Entry, size: Int, limit: Int, endsSession: Bool = false) -> Int? {
        // Moved into the queue, not copied: one retain per recipient of a shared delivery, not two.
        var entry: Entry? = entry
        return guarded.withLock { g in
            if g.state.cutOff {
                // Only the last word of a session cut off goes out, ahead of what it did not read.
                guard endsSession || { if case .close? = entry { true } else { false } }() else { return nil }
                if endsSession { g.queue.removeAll() }
                g.queue.append(entry.take()!)
                return nil
            }
            g.queue.append(entry.take()!)
            g.unread += size
            if g.unread > limit {
                g.state.cutOff = true
                return g.unread
            }
            return nil
        }
    }

    /// Has the event loop write what is queued (after the engine's lock is released).
    func schedule() {
        let start: Bool = guarded.withLock { g in
            guard g.state.drain == .idle, !g.queue.isEmpty else { return false }
            g.state.drain = .draining
            return true
        }
        guard start else { return }
        // On its own event loop (a reply to the frame just read) it goes out at once: a
        // client that sends its last frame and closes still gets the answer.
        if channel.eventLoop.inEventLoop { drain() } else { channel.eventLoop.execute { self.drain() } }
    }

    /// Writes queued entries in order until the queue is empty or an entry must wait. The
    /// frames of one drain leave in one buffer, one write and one flush.
    private func drain() {
        var pending: ByteBuffer?
        func send() {
            guard let bytes = pending else { return }
            pending = nil
            write(bytes)
            channel.flush()
        }
        while true {
            // Every frame entry that may go now is taken under one lock, up to the next other entry.
            let next: Entry? = guarded.withLock { g in
                var taken = 0
                while g.state.drain == .draining, !g.queue.isEmpty {
                    guard case .frames(_, let gate, _) = g.queue[0] else { return g.queue.removeFirst() }
                    if let gate, gate > g.durableThrough {
                        g.state.drain = .waiting(.durability)
                        return nil
                    }
                    guard case .frames(var bytes, _, _) = g.queue.removeFirst() else { continue }
                    taken += 1
                    if pending == nil {
                        pending = bytes
                    } else {
                        if taken == 2 {
                            // A fresh buffer for several frames (the first may be shared by many recipients).
                            var combined = channel.allocator.buffer(capacity: max(1024, 2 * (pending!.readableBytes + bytes.readableBytes)))
                            combined.writeBuffer(&pending!)
                            pending = combined
                        }
                        pending!.writeBuffer(&bytes)
                    }
                }
                if g.state.drain == .draining {
                    g.state.drain = .idle
                    // A session that had a reply or two keeps no queue storage while idle; a busy
                    // one (many deliveries a turn) keeps it rather than grow it again each turn.
                    if taken <= 2 { g.queue = Deque() }
                }
                return nil
            }
            guard let next else {
                send()
                waitForDurability()
                return
            }
            switch next {
            case .frames:
                break  // taken above
            case .close:
                send()
                let channel = channel
                channel.writeAndFlush(ByteBuffer()).whenComplete { _ in channel.close(promise: nil) }
                if guarded.withLock({ $0.state.cutOff }) {
                    // A client that does not read may never take its last frame: do not wait long.
                    channel.eventLoop.scheduleTask(in: .seconds(2)) { channel.close(promise: nil) }
                }
            case .history(let request):
                guarded.withLock { $0.state.drain = .waiting(.history) }
                send()
                engine.answer(request, to: self) { [self] in
                    guarded.withLock { $0.state.drain = .draining }
                    drain()
                    resumeReading()
                }
                return
            }
        }
    }

    /// Waits for the head entry's write to be durable, then drains again.
    private func waitForDurability() {
        let head: (UInt64, ByteBuffer?)? = guarded.withLock { g in
            guard g.state.drain == .waiting(.durability), case .frames(_, let gate?, let notDurable)? = g.queue.first else { return nil }
            return (gate, notDurable)
        }
        guard let (gate, notDurable) = head else { return }
        engine.store.whenDurable(gate) { [self] error in
            channel.eventLoop.execute { [self] in
                let failed: Bool = guarded.withLock { g in
                    g.durableThrough = max(g.durableThrough, gate)
                    var failed = false
                    if error != nil, case .frames(let bytes, _, _) = g.queue.first {
                        failed = true
                        g.queue[0] = .frames(notDurable ?? bytes, gate: nil, notDurable: nil)
                    }
                    g.state.drain = .draining
                    return failed
                }
                if failed, let error { engine.notDurable(error) }
                drain()
            }
        }
    }

    /// Writes bytes and counts them unread until the socket takes them.
    @discardableResult
    func write(_ bytes: ByteBuffer) -> EventLoopFuture<Void> {
        let size = bytes.readableBytes
        let written = channel.write(bytes)
        written.whenComplete { [self] _ in guarded.withLock { $0.unread -= size } }
        return written
    }

    /// Adds bytes written outside the queue (an RDM answer) to the unread count.
    func counted(_ size: Int) { guarded.withLock { $0.unread += size } }

    func startLoginTimer(at deadline: Duration, _ fire: @escaping @Sendable () -> Void) {
        let nanoseconds = UInt64(max(0, deadline.components.seconds)) * 1_000_000_000
            + UInt64(deadline.components.attoseconds / 1_000_000_000)
        let timer = channel.eventLoop.scheduleTask(deadline: .uptimeNanoseconds(nanoseconds)) { fire() }
        guarded.withLock { $0.loginTimer = timer }
    }

    func cancelLoginTimer() {
        guarded.withLock { g in
            g.loginTimer?.cancel()
            g.loginTimer = nil
        }
    }

    /// Called on the event loop by the connection (nil when it closes).
    func attach(_ connection: Connection?) {
        let bound = connection.map { NIOLoopBound($0, eventLoop: channel.eventLoop) }
        guarded.withLock { $0.connection = bound }
    }

    /// The connection reads frames again, on its event loop, later: never inside the caller
    /// (a drain, a step of the rules), which the frames it reads would re-enter.
    func resumeReading() {
        engine.post([.resume(self)], to: channel.eventLoop)
    }

    fileprivate func resumeOnLoop() {
        guard let connection = guarded.withLock({ $0.connection }) else { return }
        connection.value.resumeWaiting()
    }
}

/// What other threads (commits of a shared store, password checks, RDM readers, the rules
/// run for another loop's session) ask of one event loop's connections, gathered: a loop
/// that has not yet got to earlier requests is not woken again. Under load that is one
/// `execute` (an eventfd write and a wake-up) for many requests instead of one each.
final class LoopMail: @unchecked Sendable {
    enum Item {
        /// Write what the outbox holds.
        case drain(Outbox)
        /// The connection reads frames again.
        case resume(Outbox)

        func carryOut() {
            switch self {
            case .drain(let outbox): outbox.schedule()
            case .resume(let outbox): outbox.resumeOnLoop()
            }
        }
    }

    private struct Box {
        var items: [Item] = []
        /// An `execute` is on its way to the loop.
        var woken = false
    }

    let loop: EventLoop
    private let box = Mutex(Box())

    init(loop: EventLoop) { self.loop = loop }

    func post(_ new: [Item]) {
        let wake: Bool = box.withLock { box in
            box.items.append(contentsOf: new)
            defer { box.woken = true }
            return !box.woken
        }
        if wake { loop.execute { self.deliver() } }
    }

    /// On the loop, in the order posted. What arrives meanwhile waits for a turn of its own,
    /// after the loop's I/O.
    private func deliver() {
        let batch: [Item] = box.withLock { box in
            defer { box.items = [] }
            return box.items
        }
        for item in batch { item.carryOut() }
        let again: Bool = box.withLock { box in
            if box.items.isEmpty { box.woken = false }
            return box.woken
        }
        if again { loop.execute { self.deliver() } }
    }
}
