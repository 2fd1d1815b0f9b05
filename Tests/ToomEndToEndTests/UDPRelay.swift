import ToomCore
import Foundation
import ToomTransfer

/// A UDP relay on loopback between a presenter and an audience, misbehaving on purpose:
/// it reorders and duplicates what the presenter sends, can alter and replay it
/// (`tamper`), can hold it back (`paused`, or by itself once it forwarded `pauseAfter`
/// bytes: datagram sizes depend on the path),
/// and records the transfers it saw start. Replies from the audience go back unchanged.
final class UDPRelay: @unchecked Sendable {
    struct Counters {
        var forwarded = 0
        var forwardedBytes = 0
        var reordered = 0
        var duplicated = 0
        var tampered = 0
        /// Transfer ids of the STARTs seen.
        var starts: [UInt64] = []
    }

    /// Where the presenter sends (the audience's advertised port).
    let port: Int
    /// Where the relay forwards to (the audience's real port).
    let targetPort: Int
    private let front: Int32
    private let back: Int32
    private let target: sockaddr_in
    private let reorder: Bool
    private let duplicate: Bool
    private let tamper: Bool
    private var replayable: [UInt8]?
    private let pauseAfter: Int?
    private let lock = NSLock()
    private var counters = Counters()
    private var isPaused = false
    private var pausedOnce = false
    private var presenter: sockaddr_in?
    private var held: [[UInt8]] = []
    private var generator = SystemRandomNumberGenerator()
    private var buffer = [UInt8](repeating: 0, count: 65536)
    /// Datagrams waiting for partners to be shuffled with.
    private var pending: [[UInt8]] = []

    init(to targetPort: Int, reorder: Bool = false, duplicate: Bool = false, tamper: Bool = false, paused: Bool = false,
         pauseAfter: Int? = nil) throws {
        front = try Self.socket(port: 0)
        back = try Self.socket(port: 0)
        port = Self.localPort(front)
        target = Self.address(port: targetPort)
        self.targetPort = targetPort
        self.reorder = reorder
        self.duplicate = duplicate
        self.tamper = tamper
        self.pauseAfter = pauseAfter
        isPaused = paused
        // The thread holds the relay only while it works, so that dropping the relay ends it.
        Thread.detachNewThread { [weak self] in
            while let relay = self, relay.step() {}
        }
    }

    deinit {
        close(front)
        close(back)
    }

    var snapshot: Counters { lock.withLock { counters } }

    /// While paused, the presenter's datagrams are held back (not lost); resuming sends them.
    var paused: Bool {
        get { lock.withLock { isPaused } }
        set { lock.withLock { isPaused = newValue } }
    }

    /// Waits a few milliseconds for datagrams and relays them.
    private func step() -> Bool {
        var fds = [pollfd(fd: front, events: Int16(POLLIN), revents: 0), pollfd(fd: back, events: Int16(POLLIN), revents: 0)]
        if poll(&fds, 2, 5) <= 0 {
            // Quiet: whatever waits for a partner to swap with goes out in order.
            for datagram in pending { forward(datagram) }
            pending.removeAll()
        }
        if fds[0].revents & Int16(POLLIN) != 0 {
            var from = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let n = withUnsafeMutablePointer(to: &from) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(front, &buffer, buffer.count, 0, $0, &length) }
            }
            if n > 0 {
                let datagram = Array(buffer[0..<n])
                lock.withLock { presenter = from }
                if let header = datagram.withUnsafeBytes({ TransferPacket.header($0) }), header.kind == .start {
                    lock.withLock { counters.starts.append(header.id) }
                }
                lock.withLock { held.append(datagram) }
            }
        }
        if !paused {
            let waiting = lock.withLock { () -> [[UInt8]] in
                defer { held = [] }
                return held
            }
            for datagram in waiting { relay(datagram) }
        }
        if fds[1].revents & Int16(POLLIN) != 0 {
            let n = recv(back, &buffer, buffer.count, 0)
            if n > 0, var destination = lock.withLock({ presenter }) {
                _ = withUnsafePointer(to: &destination) { pointer in
                    pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(front, buffer, n, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            }
        }
        return true
    }

    /// Sends a datagram from the presenter on, shuffled with its neighbours if reordering.
    private func relay(_ datagram: [UInt8]) {
        guard reorder else { return forward(datagram) }
        pending.append(datagram)
        guard pending.count == 4 else { return }
        let shuffled = pending.shuffled(using: &generator)
        if shuffled != pending { lock.withLock { counters.reordered += 1 } }
        for datagram in shuffled { forward(datagram) }
        pending.removeAll()
    }

    private func forward(_ datagram: [UInt8]) {
        let copies = duplicate && Int.random(in: 0..<20, using: &generator) == 0 ? 2 : 1
        if tamper {
            // One bit flipped somewhere, then the genuine datagram, then an earlier one again.
            var altered = datagram
            altered[Int.random(in: 0..<altered.count, using: &generator)] ^= 1 << UInt8.random(in: 0..<8, using: &generator)
            send(altered)
        }
        for _ in 0..<copies { send(datagram) }
        if tamper, let replayable { send(replayable) }
        if tamper { replayable = datagram }
        lock.withLock {
            counters.forwarded += 1
            counters.forwardedBytes += datagram.count
            if copies == 2 { counters.duplicated += 1 }
            if tamper { counters.tampered += 1 }
            if let pauseAfter, counters.forwardedBytes >= pauseAfter, !pausedOnce {
                pausedOnce = true
                isPaused = true
            }
        }
    }

    private func send(_ datagram: [UInt8]) {
        var destination = target
        _ = withUnsafePointer(to: &destination) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(back, datagram, datagram.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
    }

    // MARK: Sockets

    static func address(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    /// A UDP socket bound on loopback with a large receive buffer.
    static func socket(port: Int) throws -> Int32 {
        let fd = Foundation.socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError(description: "socket: \(errno)") }
        var size: Int32 = 4 << 20
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        var address = address(port: port)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else { close(fd); throw HarnessError(description: "bind: \(errno)") }
        return fd
    }

    static func localPort(_ fd: Int32) -> Int {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// A UDP port that was free a moment ago, for a client that must be told its port first.
    static func freePort() throws -> Int {
        let fd = try socket(port: 0)
        defer { close(fd) }
        return localPort(fd)
    }

    /// Runs `body` with a port that was free a moment ago; another test may bind it before
    /// `body`'s client does (which then exits with "Address already in use"), so up to two
    /// more ports are tried.
    static func withFreePort<T>(_ body: (Int) async throws -> T) async throws -> T {
        var attempt = 1
        while true {
            let port = try freePort()
            do {
                return try await body(port)
            } catch let error as HarnessError where attempt < 3 && error.description.contains("Address already in use") {
                attempt += 1
            }
        }
    }

    /// Sends one datagram from a fresh socket (a forger's).
    static func send(_ bytes: [UInt8], toPort port: Int) throws {
        let fd = try socket(port: 0)
        defer { close(fd) }
        var destination = address(port: port)
        _ = withUnsafePointer(to: &destination) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(fd, bytes, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
    }
}
