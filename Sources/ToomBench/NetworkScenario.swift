import ArgumentParser
import Foundation
import NIOCore
import ToomCore
import ToomTestSupport
import ToomTransfer

/// Transfers on a shared bottleneck (docs/TRANSFER.md §5): a sender and a receiver, each in
/// a network namespace, and a router between them whose way out to the receiver is shaped
/// by `tbf` (a rate and a queue, as at a Wi-Fi access point). Across it: a transfer alone
/// with TCP round trips through the same queue, a transfer beside a TCP flow, two
/// transfers, and the same path through a 1,280-byte tunnel. Each figure against the
/// configured rate; then the unshaped loopback against plain TCP.
struct NetworkScenario {
    let context: BenchContext

    static let rateBitsPerSecond = 100_000_000
    static let queueSeconds = 0.2

    func run() async throws -> ResultTable {
        let megabits = Self.rateBitsPerSecond / 1_000_000
        var table = ResultTable("network: transfers on a \(megabits) Mbit/s bottleneck with a \(Int(Self.queueSeconds * 1000)) ms queue")
        let bottleneck = Double(Self.rateBitsPerSecond) / 8 / 1e6
        if let reason = NetworkNamespace.unavailableReason {
            table.notes = ["Not measured: network namespaces cannot be made here (\(reason)); run as root with iproute2 and nftables."]
            return table
        }
        // About 8 seconds alone on the bottleneck (3 with --quick).
        let bytes = UInt64(Double(Self.rateBitsPerSecond) / 8 * (context.quick ? 3 : 8))
        let (work, base) = try UploadScenario.scratchDirectory("network")
        defer { try? FileManager.default.removeItem(at: work) }
        let source = work.appendingPathComponent("payload.bin").path
        try UploadScenario.writeRandomFile(source, bytes: bytes)

        func across(bottleneckMTU: Int = 1500, _ experiment: (PathEnds) async throws -> [Double]) async throws -> [Double] {
            let path = try RoutedPath(mtu: 1500, bottleneckMTU: bottleneckMTU, rateBitsPerSecond: Self.rateBitsPerSecond,
                                      queue: Self.queueSeconds)
            defer { path.remove() }
            let ends = try await PathEnds(path)
            do {
                let figures = try await experiment(ends)
                await ends.shutDown()
                return figures
            } catch {
                await ends.shutDown()
                throw error
            }
        }

        let directory = work.path
        let alone = try await across { try await Self.alone(route: $0, source: source, directory: directory) }
        // TCP as most hosts send it (CUBIC, Linux's built-in default, and Windows' and
        // macOS's), then BBR beside the transfer and, for reference, beside a second BBR flow.
        var seconds = 0.0
        let besideCubic = try await across {
            let (rates, elapsed) = try await Self.besideTCP(route: $0, algorithm: "cubic", source: source, directory: directory)
            seconds = elapsed
            return rates
        }
        let besideBBR = try await across {
            try await Self.besideTCP(route: $0, algorithm: "bbr", source: source, directory: directory).rates
        }
        let bbrBesideBBR = try await across { try await Self.tcpBesideTCP(route: $0, algorithm: "bbr", seconds: seconds) }
        // A CUBIC flow that keeps the queue full before the transfer comes, and one that
        // comes to a transfer that has the link to itself: rates over a fixed time.
        let contest = context.quick ? 6.0 : 20.0
        let longSource = work.appendingPathComponent("long.bin").path
        try UploadScenario.writeRandomFile(longSource, bytes: UInt64(Double(Self.rateBitsPerSecond) / 8 * (contest + 4)))
        let tcpFirst = try await across {
            try await Self.tcpFirst(route: $0, source: longSource, directory: directory, seconds: contest)
        }
        let transferFirst = try await across {
            try await Self.transferFirst(route: $0, source: longSource, directory: directory, seconds: contest)
        }
        let two = try await across { try await Self.two(route: $0, source: source, directory: directory) }
        let small = try await across(bottleneckMTU: 1280) { try await Self.alone(route: $0, source: source, directory: directory) }
        // Unshaped loopback, where no controller may hold the transfer back (item 5): the
        // upload scenario's file size and runs, since a 95 MiB transfer is over in a tenth
        // of a second, too short for its fixed costs not to count.
        let loopbackSource = work.appendingPathComponent("loopback.bin").path
        try UploadScenario.writeRandomFile(loopbackSource, bytes: context.quick ? 256 << 20 : 1 << 30)
        // The first transfer of the process's benchmark threads fills their memory: unmeasured.
        _ = try await UploadScenario.udpTransfer(source: loopbackSource, directory: work.path, receiverPort: 0)
        var loopbackTCP: [Double] = []
        var loopbackUDP: [Double] = []
        for _ in 0..<(context.quick ? 1 : 3) {
            loopbackTCP.append(try await UploadScenario.tcpTransfer(source: loopbackSource,
                                                                    destination: work.appendingPathComponent("tcp.bin").path).rate)
            loopbackUDP.append(try await UploadScenario.udpTransfer(source: loopbackSource, directory: work.path,
                                                                    receiverPort: 0).rate)
        }

        let mb = ResultTable.Unit.rate("MB")
        table.add("transfer alone (vs the bottleneck)", value: alone[0], reference: bottleneck, unit: mb, target: .ratioAtLeast(0.7))
        table.add("datagrams retransmitted (vs datagrams sent)", value: alone[2], reference: alone[1], unit: .count,
                  target: .ratioAtMost(0.05))
        table.add("TCP round trip across it, median during the transfer (vs idle)", value: alone[5], reference: alone[4],
                  unit: .seconds, target: .valueAtMost(0.1, "≤ 100 ms"))
        table.add("  the same, p99", value: alone[6], reference: alone[4], unit: .seconds, target: .valueAtMost(0.1, "≤ 100 ms"))
        table.add("  queueing delay the transfer adds (median − idle)", value: alone[5] - alone[4], reference: nil,
                  unit: .seconds, target: .valueAtMost(0.05, "≤ 50 ms"))
        table.add("transfer beside a TCP (CUBIC) flow (vs the bottleneck)", value: besideCubic[0], reference: bottleneck, unit: mb,
                  target: .ratioAtLeast(0.3))
        table.add("  the TCP flow (vs the bottleneck)", value: besideCubic[1], reference: bottleneck, unit: mb,
                  target: .ratioAtLeast(0.3))
        table.add("transfer joining a TCP (CUBIC) flow that filled the queue (vs the bottleneck)", value: tcpFirst[0],
                  reference: bottleneck, unit: mb, target: .ratioAtLeast(0.3))
        table.add("  the TCP flow (vs the bottleneck)", value: tcpFirst[1], reference: bottleneck, unit: mb,
                  target: .ratioAtLeast(0.3))
        table.add("TCP (CUBIC) joining a transfer: the transfer (vs the bottleneck)", value: transferFirst[0],
                  reference: bottleneck, unit: mb, target: .ratioAtLeast(0.3))
        table.add("  the TCP flow (vs the bottleneck)", value: transferFirst[1], reference: bottleneck, unit: mb,
                  target: .ratioAtLeast(0.3))
        table.add("transfer beside a TCP (BBR) flow (vs the bottleneck)", value: besideBBR[0], reference: bottleneck, unit: mb,
                  target: nil)
        table.add("  the TCP flow (vs the same beside a second BBR flow)", value: besideBBR[1], reference: bbrBesideBBR[0],
                  unit: mb, target: nil)
        table.add("two transfers: the first (vs the bottleneck)", value: two[0], reference: bottleneck, unit: mb, target: .ratioAtLeast(0.35))
        table.add("  the second (vs the bottleneck)", value: two[1], reference: bottleneck, unit: mb, target: .ratioAtLeast(0.35))
        table.add("1,280-byte tunnel at the router (vs the same path without)", value: small[0], reference: alone[0], unit: mb,
                  target: .ratioAtLeast(0.5))
        table.add("unshaped loopback (vs plain TCP)", value: median(loopbackUDP) / 1e6, reference: median(loopbackTCP) / 1e6, unit: mb,
                  target: .ratioAtLeast(0.8))
        table.notes = [
            "Path: sender ↔ router ↔ receiver, three network namespaces joined by veth pairs (MTU 1,500), made for each line; the "
                + "router's way out to the receiver is the bottleneck: tbf rate \(megabits)mbit, limit \(Int(Self.queueSeconds * 1000)) ms "
                + "of it (data and round trips share it; acknowledgements come back unshaped). Files of \(ByteCount.describe(bytes)) in "
                + "\(base); the unshaped loopback moves \(context.quick ? "256 MiB once" : "1 GiB, median of 3").",
            "Round trips: a 1-byte TCP echo (TCP_NODELAY) every 50 ms, idle first, then while the transfer runs; a sender that "
                + "filled the queue would add \(Int(Self.queueSeconds * 1000)) ms to each.",
            "Fairness: rates over the time both flows ran (until the first transfer completed); \"beside\" starts the TCP flow "
                + "a second ahead. \"Joining\": the transfer starts once a round trip across the queue takes "
                + "\(Int(Self.queueSeconds * 750)) ms (the TCP flow filled it), and the TCP flow once the transfer moved "
                + "\(Int(Self.settleSeconds)) s of the link's bytes; both rates over the next \(Int(contest)) s. TCP with BBR, on a path of no "
                + "propagation delay, keeps a window of twice a 0.2 ms path, so any standing queue starves it: beside a second BBR flow it kept "
                + "\(String(format: "%.2f", bbrBesideBBR[0] / bottleneck)) of the link, the newcomer \(String(format: "%.2f", bbrBesideBBR[1] / bottleneck)). "
                + "Datagrams settled at \(Int(alone[3])) bytes on the "
                + "1,500-byte path, \(Int(small[3])) through the 1,280-byte tunnel (its MTU only at the router: the sender finds it by probing).",
        ]
        return table
    }

    // MARK: Across the path

    /// alone: rate (MB/s), datagrams, retransmissions, datagram size, idle median, busy
    /// median and busy p99 round trip (seconds).
    static func alone(route: PathEnds, source: String, directory: String) async throws -> [Double] {
        let echo = try EchoProbe(Loopback.connectedPair(across: route.path))
        defer { echo.close() }
        let idle = try echo.roundTrips(count: 20)
        echo.startSampling()
        let started = ContinuousClock.now
        let summary = try await BenchTransfer.start(source, directory: directory, saveAs: "alone.bin", ends: route.ends, path: route.path).finish()
        let elapsed = (ContinuousClock.now - started).seconds
        let busy = echo.stopSampling().sorted()
        guard !busy.isEmpty else { throw BenchError("no round trip completed during the transfer") }
        return [Double(summary.bytes) / elapsed / 1e6, Double(summary.datagrams), Double(summary.retransmissions),
                Double(summary.datagramSize), median(idle), median(busy), busy[min(busy.count - 1, busy.count * 99 / 100)]]
    }

    /// The transfer's and a TCP flow's rates (MB/s) while both ran, the TCP flow first so
    /// that it holds its share when the transfer arrives; and how long that was.
    static func besideTCP(route: PathEnds, algorithm: String, source: String,
                          directory: String) async throws -> (rates: [Double], seconds: Double) {
        let tcp = try BulkTCPFlow(Loopback.connectedPair(across: route.path), algorithm: algorithm)
        defer { tcp.stop() }
        try await Task.sleep(for: .seconds(1))
        let tcpBefore = tcp.received
        let started = ContinuousClock.now
        let summary = try await BenchTransfer.start(source, directory: directory, saveAs: "beside.bin", ends: route.ends, path: route.path).finish()
        let elapsed = (ContinuousClock.now - started).seconds
        let tcpBytes = tcp.received - tcpBefore
        return ([Double(summary.bytes) / elapsed / 1e6, Double(tcpBytes) / elapsed / 1e6], elapsed)
    }

    /// Seconds of the link's rate a transfer moves before a TCP flow joins it.
    static let settleSeconds = 3.0

    /// The transfer and a TCP (CUBIC) flow's rates (MB/s) over `seconds`, the transfer
    /// starting once the TCP flow keeps the queue full: a loss-based flow's standing queue.
    static func tcpFirst(route: PathEnds, source: String, directory: String, seconds: Double) async throws -> [Double] {
        let echo = try EchoProbe(Loopback.connectedPair(across: route.path))
        defer { echo.close() }
        let tcp = try BulkTCPFlow(Loopback.connectedPair(across: route.path), algorithm: "cubic")
        defer { tcp.stop() }
        try await eventually("the TCP flow to fill the queue", every: .milliseconds(50)) {
            try await offThePool { try echo.roundTrip() } >= queueSeconds * 0.75
        }
        let transfer = try await BenchTransfer.start(source, directory: directory, saveAs: "joining.bin", ends: route.ends,
                                                     path: route.path)
        return try await contest(transfer, tcp, seconds: seconds, transferBefore: 0)
    }

    /// The same with the transfer first: the TCP flow starts once the transfer moved
    /// `settleSeconds` of the link's bytes.
    static func transferFirst(route: PathEnds, source: String, directory: String, seconds: Double) async throws -> [Double] {
        let transfer = try await BenchTransfer.start(source, directory: directory, saveAs: "first.bin", ends: route.ends,
                                                     path: route.path)
        let settled = UInt64(Double(rateBitsPerSecond) / 8 * settleSeconds)
        do {
            try await eventually("the transfer to move \(settled) bytes") { transfer.upload.bytesAcknowledged >= settled }
        } catch {
            await transfer.close()
            throw error
        }
        let tcp = try BulkTCPFlow(Loopback.connectedPair(across: route.path), algorithm: "cubic")
        defer { tcp.stop() }
        return try await contest(transfer, tcp, seconds: seconds, transferBefore: transfer.upload.bytesAcknowledged)
    }

    /// Both flows' rates (MB/s) over the next `seconds`; the transfer is then cancelled.
    private static func contest(_ transfer: BenchTransfer, _ tcp: BulkTCPFlow, seconds: Double,
                                transferBefore: UInt64) async throws -> [Double] {
        let tcpBefore = tcp.received
        let started = ContinuousClock.now
        // A measuring time, not a wait for an event.
        try? await Task.sleep(for: .seconds(seconds))
        let elapsed = (ContinuousClock.now - started).seconds
        let moved = transfer.upload.bytesAcknowledged - transferBefore
        let tcpBytes = tcp.received - tcpBefore
        let finished = transfer.upload.bytesAcknowledged >= transfer.upload.size
        await transfer.close()
        guard !finished else { throw BenchError("the transfer ended before the \(seconds) s were up: a larger file is needed") }
        return [Double(moved) / elapsed / 1e6, Double(tcpBytes) / elapsed / 1e6]
    }

    /// The reference for the above: two TCP flows of one congestion control, the second
    /// joining after a second and running `seconds`; both rates (MB/s) meanwhile.
    static func tcpBesideTCP(route: PathEnds, algorithm: String, seconds: Double) async throws -> [Double] {
        let first = try BulkTCPFlow(Loopback.connectedPair(across: route.path), algorithm: algorithm)
        defer { first.stop() }
        try await Task.sleep(for: .seconds(1))
        let second = try BulkTCPFlow(Loopback.connectedPair(across: route.path), algorithm: algorithm)
        let firstBefore = first.received
        try await Task.sleep(for: .seconds(seconds))
        let rates = [first.received - firstBefore, second.received].map { Double($0) / seconds / 1e6 }
        second.stop()
        return rates
    }

    /// two: each transfer's rate (MB/s) until the first one completed.
    static func two(route: PathEnds, source: String, directory: String) async throws -> [Double] {
        let started = ContinuousClock.now
        let flows = [try await BenchTransfer.start(source, directory: directory, saveAs: "first.bin", ends: route.ends, path: route.path),
                     try await BenchTransfer.start(source, directory: directory, saveAs: "second.bin", ends: route.ends, path: route.path)]
        // Polled: the rates count until one of them is done.
        while flows.allSatisfy({ $0.upload.bytesAcknowledged < $0.upload.size }) {
            try await Task.sleep(for: .milliseconds(20))
        }
        let elapsed = (ContinuousClock.now - started).seconds
        let rates = flows.map { Double($0.upload.bytesAcknowledged) / elapsed / 1e6 }
        for flow in flows { _ = try await flow.finish() }
        return rates
    }
}

/// A routed path and, for each host, an event loop and a worker thread inside its
/// namespace: the transfer asks the routing table there what the path carries.
struct PathEnds {
    let path: RoutedPath
    let ends: (sender: BenchEnd, receiver: BenchEnd)

    init(_ path: RoutedPath) async throws {
        self.path = path
        ends = (BenchEnd(), BenchEnd())
        for (end, namespace) in [(ends.sender, path.sender), (ends.receiver, path.receiver)] {
            try await end.group.next().submit { try namespace.enterHere() }.get()
            try await end.pool.runIfActive { try namespace.enterHere() }
        }
    }

    func shutDown() async {
        for end in [ends.sender, ends.receiver] {
            try? await end.group.shutdownGracefully()
            try? await end.pool.shutdownGracefully()
        }
    }
}

/// A 1-byte TCP echo on a connection (client, server), to time round trips across the
/// queues between them.
final class EchoProbe: @unchecked Sendable {
    private let client: Int32
    private let server: Int32
    private let samples = LockedBox<[Double]?>(nil)
    private let sampler = DispatchSemaphore(value: 0)

    init(_ connection: (client: Int32, server: Int32)) {
        (client, server) = connection
        var one: Int32 = 1
        for fd in [client, server] { setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size)) }
        let server = self.server
        Thread.detachNewThread {
            var byte: UInt8 = 0
            while read(server, &byte, 1) == 1, write(server, &byte, 1) == 1 {}
        }
    }

    /// One round trip, in seconds.
    func roundTrip() throws -> Double {
        var byte: UInt8 = 42
        let start = ContinuousClock.now
        guard write(client, &byte, 1) == 1, read(client, &byte, 1) == 1 else { throw BenchError("echo: the connection broke") }
        return (ContinuousClock.now - start).seconds
    }

    func roundTrips(count: Int) throws -> [Double] {
        try (0..<count).map { _ in
            usleep(50_000)
            return try roundTrip()
        }
    }

    /// Round trips every 50 ms on a thread of their own until `stopSampling`.
    func startSampling() {
        samples.set([])
        Thread.detachNewThread { [self] in
            while samples.get() != nil, let time = try? roundTrip() {
                samples.update { $0?.append(time) }
                usleep(50_000)
            }
            sampler.signal()
        }
    }

    func stopSampling() -> [Double] {
        let taken = samples.get() ?? []
        samples.set(nil)
        sampler.wait()
        return taken
    }

    func close() {
        shutdown(client, Int32(SHUT_RDWR))
        Foundation.close(client)
        Foundation.close(server)
    }
}

/// A TCP flow as fast as the path lets it, from a connection's client to its server,
/// counting what arrives; `algorithm`: its congestion control (`cubic`, `bbr`).
final class BulkTCPFlow: @unchecked Sendable {
    private let sender: Int32
    private let count = LockedBox<UInt64>(0)
    private let stopped = LockedBox(false)
    private let done = DispatchSemaphore(value: 0)

    var received: UInt64 { count.get() }

    init(_ connection: (client: Int32, server: Int32), algorithm: String) throws {
        let set = algorithm.withCString {
            setsockopt(connection.client, Int32(IPPROTO_TCP), TCP_CONGESTION, $0, socklen_t(strlen($0)))
        }
        guard set == 0 else {
            for fd in [connection.client, connection.server] { Foundation.close(fd) }
            throw BenchError("TCP congestion control \(algorithm) is not available here: \(String(cString: strerror(errno)))")
        }
        let receiver: Int32
        (sender, receiver) = connection
        let count = self.count
        let done = self.done
        Thread.detachNewThread {
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: 1 << 16, alignment: 64)
            while true {
                let n = read(receiver, buffer, 1 << 16)
                if n <= 0 { break }
                count.update { $0 += UInt64(n) }
            }
            buffer.deallocate()
            Foundation.close(receiver)
            done.signal()
        }
        let sender = self.sender
        let stopped = self.stopped
        Thread.detachNewThread {
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: 1 << 16, alignment: 64)
            buffer.initializeMemory(as: UInt8.self, repeating: 0x5A, count: 1 << 16)
            while !stopped.get(), write(sender, buffer, 1 << 16) > 0 {}
            buffer.deallocate()
            shutdown(sender, Int32(SHUT_WR))
        }
    }

    func stop() {
        stopped.set(true)
        done.wait()
        Foundation.close(sender)
    }
}
