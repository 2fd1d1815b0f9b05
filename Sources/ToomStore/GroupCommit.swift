import Foundation

/// A file (or directory) that fsync makes durable.
public protocol Durable: AnyObject {
    func sync() throws
}

/// `--sync` as group commit. A writer appends its line under the state lock and marks the
/// file dirty here, which hands out a ticket; the reply waits, without the state lock,
/// until an fsync that started after the write has finished. One fsync covers every write
/// made before it started, so concurrent writers share it, and writes arriving during an
/// fsync share the next one. fsync runs on a thread of its own, never on an event loop.
public final class GroupCommit: @unchecked Sendable {
    public typealias Ticket = UInt64

    private let condition = NSCondition()
    private var dirty: [ObjectIdentifier: Durable] = [:]
    /// The ticket of the latest write.
    private var written: Ticket = 0
    /// Every write with a ticket up to this one has been through fsync.
    private var completed: Ticket = 0
    /// Tickets whose fsync failed, with the error; rare, and each one reported.
    private var failures: [(tickets: ClosedRange<Ticket>, error: Error)] = []
    private var waiters: [(ticket: Ticket, done: @Sendable (Error?) -> Void)] = []
    private var stopping = false
    private var thread: Thread?
    private var batches = 0

    public init() {}

    /// The ticket of the latest write, which covers every earlier write.
    public var latest: Ticket { condition.withLock { written } }

    /// Records a write to `file` made just now; returns its ticket.
    @discardableResult
    public func wrote(_ file: Durable) -> Ticket {
        condition.withLock {
            if thread == nil {
                let thread = Thread { [self] in run() }
                thread.name = "toom-fsync"
                thread.start()
                self.thread = thread
            }
            dirty[ObjectIdentifier(file)] = file
            written += 1
            condition.broadcast()
            return written
        }
    }

    /// Calls `done` (on the fsync thread, or at once) when every write up to `ticket` is
    /// durable, with the error when an fsync failed.
    public func whenDurable(_ ticket: Ticket, _ done: @escaping @Sendable (Error?) -> Void) {
        condition.lock()
        guard ticket > completed else {
            let error = failures.last(where: { $0.tickets.contains(ticket) })?.error
            condition.unlock()
            done(error)
            return
        }
        waiters.append((ticket, done))
        condition.unlock()
    }

    /// Writes so far, and the fsync batches that made them durable.
    public var statistics: (writes: Ticket, batches: Int) { condition.withLock { (written, batches) } }

    /// Finishes the writes already made (their waiters are called), then ends the fsync
    /// thread; returns when it has ended.
    public func stop() {
        condition.withLock {
            stopping = true
            condition.broadcast()
            while thread != nil { condition.wait() }
        }
    }

    private func run() {
        condition.lock()
        while true {
            while dirty.isEmpty && !stopping { condition.wait() }
            if dirty.isEmpty { break }
            let files = Array(dirty.values)
            dirty.removeAll(keepingCapacity: true)
            let through = written
            condition.unlock()

            var failure: Error?
            for file in files {
                do { try file.sync() } catch { failure = failure ?? error }
            }

            condition.lock()
            let first = completed + 1
            completed = through
            batches += 1
            if let failure { failures.append((first...through, failure)) }
            let ready = waiters.filter { $0.ticket <= through }
            waiters.removeAll { $0.ticket <= through }
            condition.unlock()
            for waiter in ready { waiter.done(failure) }
            condition.lock()
        }
        thread = nil
        condition.broadcast()
        condition.unlock()
    }
}

/// A directory, so that a file created in it survives power loss too.
public final class DirectoryHandle: Durable {
    public let path: String
    private let fd: Int32

    public init(path: String) throws {
        self.path = path
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw StorageError(path: path, operation: "open", code: errno) }
    }

    deinit { close(fd) }

    public func sync() throws {
        guard fsync(fd) == 0 else { throw StorageError(path: path, operation: "fsync", code: errno) }
    }
}
