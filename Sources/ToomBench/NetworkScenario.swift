import ArgumentParser
import Foundation
import NIOCore
import ToomCore
import ToomTestSupport
import ToomTransfer

/// Transfers on a shared bottleneck (docs/TRANSFER.md §5): a network namespace whose
/// loopback is shaped by `tbf` (a rate and a queue, both directions sharing it, as on
/// Wi-Fi). In it: a transfer alone with TCP round trips across the same queue, a transfer
/// beside a TCP flow, two transfers, and the same path with a 1,280-byte MTU. Each figure
/// against the configured rate; then the unshaped loopback against plain TCP.
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

        func inside(mtu: Int, _ experiment: String) throws -> [Double] {
            let namespace = try NetworkNamespace.loopback(mtu: mtu, rateBitsPerSecond: Self.rateBitsPerSecond,
                                                          queue: Self.queueSeconds)
            defer { namespace.remove() }
            let output = try namespace.run([context.benchPath, "network-child", experiment,
                                            "--source", source, "--directory", work.path])
            guard let line = output.split(separator: "\n").last(where: { $0.hasPrefix("RESULT ") }) else {
                throw BenchError("network-child \(experiment) printed: \(output)")
            }
            return line.split(separator: " ").dropFirst().compactMap { Double($0) }
        }

        let alone = try inside(mtu: 1500, "alone")
        let besideTCP = try inside(mtu: 1500, "tcp")
        let two = try inside(mtu: 1500, "two")
        let small = try inside(mtu: 1280, "alone")
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
        table.add("transfer beside a TCP flow (vs the bottleneck)", value: besideTCP[0], reference: bottleneck, unit: mb,
                  target: .ratioAtLeast(0.3))
        table.add("  the TCP flow (vs the bottleneck)", value: besideTCP[1], reference: bottleneck, unit: mb, target: .ratioAtLeast(0.3))
        table.add("two transfers: the first (vs the bottleneck)", value: two[0], reference: bottleneck, unit: mb, target: .ratioAtLeast(0.35))
        table.add("  the second (vs the bottleneck)", value: two[1], reference: bottleneck, unit: mb, target: .ratioAtLeast(0.35))
        table.add("1,280-byte MTU (vs the same path at 1,500)", value: small[0], reference: alone[0], unit: mb, target: .ratioAtLeast(0.5))
        table.add("unshaped loopback (vs plain TCP)", value: median(loopbackUDP) / 1e6, reference: median(loopbackTCP) / 1e6, unit: mb,
                  target: .ratioAtLeast(0.8))
        table.notes = [
            "Bottleneck: tbf rate \(megabits)mbit, limit \(Int(Self.queueSeconds * 1000)) ms of it, on the loopback of a network namespace "
                + "made for each line (data, acknowledgements and round trips share the queue). Files of \(ByteCount.describe(bytes)) in \(base); "
                + "the unshaped loopback moves \(context.quick ? "256 MiB once" : "1 GiB, median of 3").",
            "Round trips: a 1-byte TCP echo (TCP_NODELAY) every 50 ms, idle first, then while the transfer runs; a sender that "
                + "filled the queue would add \(Int(Self.queueSeconds * 1000)) ms to each.",
            "Fairness: rates over the time both flows ran (until the first transfer completed). Datagrams settled at "
                + "\(Int(alone[3])) bytes on the 1,500-byte path, \(Int(small[3])) on the 1,280-byte one.",
        ]
        return table
    }

    // MARK: Inside the namespace

    /// alone: rate (MB/s), datagrams, retransmissions, datagram size, idle median, busy
    /// median and busy p99 round trip (seconds).
    static func alone(source: String, directory: String) async throws -> [Double] {
        let echo = try EchoProbe()
        defer { echo.close() }
        let idle = try echo.roundTrips(count: 20)
        echo.startSampling()
        let started = ContinuousClock.now
        let summary = try await BenchTransfer.start(source, directory: directory, saveAs: "alone.bin").finish()
        let elapsed = (ContinuousClock.now - started).seconds
        let busy = echo.stopSampling().sorted()
        guard !busy.isEmpty else { throw BenchError("no round trip completed during the transfer") }
        return [Double(summary.bytes) / elapsed / 1e6, Double(summary.datagrams), Double(summary.retransmissions),
                Double(summary.datagramSize), median(idle), median(busy), busy[min(busy.count - 1, busy.count * 99 / 100)]]
    }

    /// tcp: the transfer's and the TCP flow's rates (MB/s) while both ran.
    static func besideTCP(source: String, directory: String) async throws -> [Double] {
        let tcp = try BulkTCPFlow()
        defer { tcp.stop() }
        // TCP first, so that it holds its share when the transfer arrives.
        try await Task.sleep(for: .seconds(1))
        let tcpBefore = tcp.received
        let started = ContinuousClock.now
        let summary = try await BenchTransfer.start(source, directory: directory, saveAs: "beside.bin").finish()
        let elapsed = (ContinuousClock.now - started).seconds
        let tcpBytes = tcp.received - tcpBefore
        return [Double(summary.bytes) / elapsed / 1e6, Double(tcpBytes) / elapsed / 1e6]
    }

    /// two: each transfer's rate (MB/s) until the first one completed.
    static func two(source: String, directory: String) async throws -> [Double] {
        let started = ContinuousClock.now
        let flows = [try await BenchTransfer.start(source, directory: directory, saveAs: "first.bin"),
                     try await BenchTransfer.start(source, directory: directory, saveAs: "second.bin")]
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

/// One side of the network scenario, inside its namespace: prints `RESULT` and the figures.
struct NetworkChildCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "network-child", abstract: "One experiment of the network scenario (used by the benchmarks).",
                                                    shouldDisplay: false)

    @Argument var experiment: String
    @Option var source: String
    @Option var directory: String

    func run() async throws {
        let figures: [Double]
        switch experiment {
        case "alone": figures = try await NetworkScenario.alone(source: source, directory: directory)
        case "tcp": figures = try await NetworkScenario.besideTCP(source: source, directory: directory)
        case "two": figures = try await NetworkScenario.two(source: source, directory: directory)
        default: throw ValidationError("Unknown experiment: \(experiment)")
        }
        print("RESULT " + figures.map { String($0) }.joined(separator: " "))
    }
}

/// A 1-byte TCP echo on loopback, to time round trips across whatever queue loopback has.
final class EchoProbe: @unchecked Sendable {
    private let client: Int32
    private let server: Int32
    private let samples = LockedBox<[Double]?>(nil)
    private let sampler = DispatchSemaphore(value: 0)

    init() throws {
        (client, server) = try Loopback.connectedPair()
        var one: Int32 = 1
        for fd in [client, server] { setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size)) }
        let server = self.server
        Thread.detachNewThread {
            var byte: UInt8 = 0
            while read(server, &byte, 1) == 1, write(server, &byte, 1) == 1 {}
        }
    }

    /// One round trip, in seconds.
    private func roundTrip() throws -> Double {
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

/// A TCP flow as fast as the path lets it, on loopback, counting what arrives.
final class BulkTCPFlow: @unchecked Sendable {
    private let sender: Int32
    private let count = LockedBox<UInt64>(0)
    private let stopped = LockedBox(false)
    private let done = DispatchSemaphore(value: 0)

    var received: UInt64 { count.get() }

    init() throws {
        let receiver: Int32
        (sender, receiver) = try Loopback.connectedPair()
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
