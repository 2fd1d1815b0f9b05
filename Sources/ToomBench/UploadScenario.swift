import ToomCore
import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import ToomTestSupport
import ToomTransfer

/// UPD's data path: a file moved between two transfer endpoints on loopback, encrypted,
/// against a plain TCP copy of the same bytes and the same transfer with encryption off,
/// in the same run; then again with datagrams lost; then cut off halfway and resumed.
struct UploadScenario {
    let context: BenchContext
    /// Drop datagrams in-process even where a lossy network namespace could be made.
    var inProcessLoss = false

    static let lossPercent = 10
    /// The receiver's port inside the namespace, which the drop rule names.
    static let namespacePort = 40000

    func run() async throws -> ResultTable {
        let bytes: UInt64 = context.quick ? 256 << 20 : 1 << 30
        let runs = context.quick ? 1 : 3
        let (work, base) = try Self.scratchDirectory("upload")
        defer { try? FileManager.default.removeItem(at: work) }
        let source = work.appendingPathComponent("payload.bin").path
        try Self.writeRandomFile(source, bytes: bytes)

        var tcp: [Measurement] = []
        var udp: [Measurement] = []
        var plain: [Measurement] = []
        for _ in 0..<runs {
            tcp.append(try await Self.tcpTransfer(source: source, destination: work.appendingPathComponent("tcp.bin").path))
            udp.append(try await Self.udpTransfer(source: source, directory: work.path, receiverPort: 0))
            plain.append(try await Self.udpTransfer(source: source, directory: work.path, receiverPort: 0, encryption: false))
        }
        // Cut off once half the file arrived (both sides time out), then the same UPD again.
        _ = try await Self.udpTransfer(source: source, directory: work.path, receiverPort: 0, cutAfter: bytes / 2)
        let resumed = try await Self.udpTransfer(source: source, directory: work.path, receiverPort: 0)

        // Each lossy run is compared with a loss-free one of the same process and path,
        // alternating: a child process in a namespace runs slower than this warmed-up one.
        var lossy: [Measurement] = []
        var lossFree: [Measurement] = []
        let lossMethod: String
        if let reason = inProcessLoss ? "asked for" : NetworkNamespace.unavailableReason {
            lossMethod = "in-process: whole reads dropped before the transfer handler (no namespace: \(reason))"
            for _ in 0..<runs {
                lossFree.append(try await Self.udpTransfer(source: source, directory: work.path, receiverPort: 0))
                lossy.append(try await Self.udpTransfer(source: source, directory: work.path, receiverPort: 0,
                                                        dropping: Self.lossPercent))
            }
        } else {
            lossMethod = "nftables in a network namespace, on the receiver's UDP port; the loss-free runs in the same "
                + "namespace and process, to another port"
            let namespace = try NetworkNamespace.lossy(dropping: Self.lossPercent, ofUDPTo: Self.namespacePort)
            defer { namespace.remove() }
            let output = try namespace.run([context.benchPath, "upload-child", "--runs", String(runs),
                                            "--source", source, "--directory", work.path])
            for line in output.split(separator: "\n") {
                guard let (port, measurement) = Measurement.parse(line) else { continue }
                if port == Self.namespacePort { lossy.append(measurement) } else { lossFree.append(measurement) }
            }
            guard lossy.count == runs, lossFree.count == runs else { throw BenchError("the lossy runs printed: \(output)") }
        }

        let size = ByteCount.describe(bytes)
        var table = ResultTable("upload: \(size) peer to peer over loopback, median of \(runs)")
        let clean = median(udp.map(\.rate)) / 1e6
        table.add("UDP transfer, encrypted, no loss (vs plain TCP)", value: clean,
                  reference: median(tcp.map(\.rate)) / 1e6, unit: .rate("MB"), target: .ratioAtLeast(0.8))
        table.add("UDP transfer, encrypted (vs encryption off)", value: clean, reference: median(plain.map(\.rate)) / 1e6,
                  unit: .rate("MB"), target: nil)
        table.add("UDP transfer, \(Self.lossPercent)% loss (vs no loss)", value: median(lossy.map(\.rate)) / 1e6,
                  reference: median(lossFree.map(\.rate)) / 1e6, unit: .rate("MB"), target: .ratioAtLeast(0.8))
        let full = median(udp.map(\.seconds))
        table.add("resume at 50%: bytes sent (vs the file)", value: Double(resumed.bytes), reference: Double(bytes),
                  unit: .bytes, target: .ratioAtMost(0.55))
        table.add("resume at 50%: time (vs a full transfer)", value: resumed.seconds, reference: full,
                  unit: .seconds, target: .ratioAtMost(0.6))
        func perGiB(_ runs: [Measurement], _ seconds: (Measurement) -> Double?) -> String {
            String(format: "%.2f", median(runs.map { (seconds($0) ?? 0) / (Double($0.bytes) / Double(1 << 30)) }))
        }
        func cpu(_ runs: [Measurement]) -> String {
            "\(perGiB(runs, \.sender)) sender, \(perGiB(runs, \.receiver)) receiver"
        }
        table.notes = [
            "CPU seconds per GiB at each end (its own threads): UDP encrypted \(cpu(udp)); encryption off \(cpu(plain)); "
                + "TCP \(cpu(tcp)) (read and send; receive and write). Whole process: \(perGiB(udp, \.cpuSeconds)), "
                + "\(perGiB(plain, \.cpuSeconds)), \(perGiB(tcp, \.cpuSeconds)).",
            "Loss: \(lossMethod); datagrams retransmitted: \(lossy.map { String($0.retransmissions) }.joined(separator: ", ")).",
            "Resumed from \(resumed.resumedFrom) bytes of \(bytes); datagrams of \(udp[0].datagramSize) bytes "
                + "(\(TransferPacket.segmentPayload(datagram: udp[0].datagramSize)) of file), AES-256-GCM; "
                + "GSO \(System.supportsUDPSegmentationOffload ? "on" : "off"), GRO \(System.supportsUDPReceiveOffload ? "on" : "off"). "
                + "Files in \(base).",
        ]
        return table
    }

    /// One timed transfer.
    struct Measurement {
        var seconds: Double
        var bytes: UInt64
        var cpuSeconds: Double
        var retransmissions = 0
        var resumedFrom: UInt64 = 0
        var datagramSize = 0
        /// CPU seconds of each end's own threads, where they were measured apart.
        var sender: Double?
        var receiver: Double?

        var rate: Double { Double(bytes) / seconds }

        /// The line the namespace child prints for each run to `port`.
        func line(port: Int) -> String { "RESULT \(port) \(seconds) \(bytes) \(cpuSeconds) \(retransmissions)" }

        init(seconds: Double, bytes: UInt64, cpuSeconds: Double, retransmissions: Int = 0) {
            self.seconds = seconds
            self.bytes = bytes
            self.cpuSeconds = cpuSeconds
            self.retransmissions = retransmissions
        }

        static func parse(_ line: Substring) -> (port: Int, Measurement)? {
            let fields = line.split(separator: " ")
            guard fields.count == 6, fields[0] == "RESULT", let port = Int(fields[1]), let seconds = Double(fields[2]),
                  let bytes = UInt64(fields[3]), let cpu = Double(fields[4]), let retransmissions = Int(fields[5])
            else { return nil }
            return (port, Measurement(seconds: seconds, bytes: bytes, cpuSeconds: cpu, retransmissions: retransmissions))
        }
    }

    // MARK: Measurements

    /// One file sent between two endpoints of this process; timed from the first datagram
    /// to the receiver's confirmation that the file is on disk. `cutAfter`: the network
    /// goes once that many bytes reached the receiver, and the partial file stays for the
    /// next run to resume.
    static func udpTransfer(source: String, directory: String, receiverPort: Int, encryption: Bool = true,
                            dropping percent: Int = 0, cutAfter: UInt64? = nil) async throws -> Measurement {
        var configuration = TransferConfiguration()
        configuration.encryption = encryption
        if cutAfter != nil { configuration.timeout = .seconds(1) }
        @Sendable func addHandlers(_ channel: any Channel) throws {
            if percent > 0 { try channel.pipeline.syncOperations.addHandler(DroppingHandler(percent: percent)) }
            if let cutAfter { try channel.pipeline.syncOperations.addHandler(CuttingHandler(after: cutAfter)) }
        }
        defer { unlink(directory + "/received.bin") }
        let ends = BenchEnd.pair
        let senderBefore = try await ends.sender.cpuSeconds()
        let receiverBefore = try await ends.receiver.cpuSeconds()
        let cpuBefore = processCPUSeconds()
        let started = ContinuousClock.now
        let transfer = try await BenchTransfer.start(source, directory: directory, saveAs: "received.bin",
                                                     configuration: configuration, receiverPort: receiverPort,
                                                     ends: ends, addHandlers: addHandlers)
        let outcome = await transfer.upload.result()
        let elapsed = ContinuousClock.now - started
        let cpu = processCPUSeconds() - cpuBefore
        await transfer.close()
        let senderCPU = try await ends.sender.cpuSeconds() - senderBefore
        let receiverCPU = try await ends.receiver.cpuSeconds() - receiverBefore
        switch outcome {
        case .success(let summary):
            var measurement = Measurement(seconds: elapsed.seconds, bytes: summary.bytes, cpuSeconds: cpu,
                                          retransmissions: summary.retransmissions)
            measurement.resumedFrom = summary.resumedFrom
            measurement.datagramSize = summary.datagramSize
            measurement.sender = senderCPU
            measurement.receiver = receiverCPU
            return measurement
        case .failure where cutAfter != nil:
            // The record of what arrived is written on a worker thread as the transfer fails.
            let record = directory + "/.received.bin.part-record"
            let deadline = ContinuousClock.now + .seconds(10)
            while (try? FileManager.default.attributesOfItem(atPath: record)[.size] as? Int) ?? 0 == 0,
                  ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
            return Measurement(seconds: elapsed.seconds, bytes: 0, cpuSeconds: cpu)
        case .failure(let failure):
            throw BenchError("the UDP transfer failed: \(failure)")
        }
    }

    /// The same bytes through a plain TCP connection on loopback: read, send, receive, write.
    static func tcpTransfer(source: String, destination: String) async throws -> Measurement {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { try PlainTCPCopy.run(source: source, destination: destination) })
            }
        }
    }

    /// A directory for a scenario's files, in memory where possible so that the disk is not
    /// what is measured; the caller removes it. Also where it is, for the notes.
    static func scratchDirectory(_ scenario: String) throws -> (URL, String) {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let work = URL(fileURLWithPath: base).appendingPathComponent("toom-bench-\(scenario)-\(getpid())")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        return (work, base)
    }

    static func writeRandomFile(_ path: String, bytes: UInt64) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw BenchError("cannot create \(path)") }
        defer { close(fd) }
        let chunk = 4 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 8)
        defer { buffer.deallocate() }
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(getpid())
        var written: UInt64 = 0
        while written < bytes {
            for i in 0..<(chunk / 8) {
                // splitmix64: fast, and incompressible enough for a transfer.
                state &+= 0x9E37_79B9_7F4A_7C15
                var z = state
                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                buffer.storeBytes(of: z ^ (z >> 31), toByteOffset: i * 8, as: UInt64.self)
            }
            let count = Int(min(UInt64(chunk), bytes - written))
            guard write(fd, buffer.baseAddress!, count) == count else { throw BenchError("cannot write \(path)") }
            written += UInt64(count)
        }
    }
}

/// One file sent between two transfer endpoints of this process, started now: what the
/// `upload` and `network` scenarios time.
struct BenchTransfer {
    let sender: TransferEndpoint
    let receiver: TransferEndpoint
    let upload: OutgoingTransfer

    /// `ends`: each endpoint on threads of its own, as each client has them; else the
    /// process's shared ones.
    /// `path`: the sender in its sender's namespace, the receiver in its receiver's.
    static func start(_ source: String, directory: String, saveAs: String,
                      configuration: TransferConfiguration? = nil, receiverPort: Int = 0,
                      ends: (sender: BenchEnd, receiver: BenchEnd)? = nil, path: RoutedPath? = nil,
                      addHandlers: (@Sendable (any Channel) throws -> Void)? = nil) async throws -> BenchTransfer {
        var configuration = configuration ?? TransferConfiguration()
        configuration.directory = directory
        let receiverGroup = ends?.receiver.group ?? MultiThreadedEventLoopGroup.singleton
        let receiverPool = ends?.receiver.pool ?? .singleton
        let senderGroup = ends?.sender.group ?? MultiThreadedEventLoopGroup.singleton
        let senderPool = ends?.sender.pool ?? .singleton
        let receiver: TransferEndpoint
        let sender: TransferEndpoint
        if let path {
            let (senderHost, receiverHost) = (path.senderAddress, path.receiverAddress)
            let udp = Int32(SOCK_DGRAM.rawValue)
            receiver = try await TransferEndpoint.adopt(
                socket: path.receiver.enter { try Loopback.boundSocket(listening: false, host: receiverHost, type: udp).fd },
                configuration: configuration, group: receiverGroup, threadPool: receiverPool, addHandlers: addHandlers)
            sender = try await TransferEndpoint.adopt(
                socket: path.sender.enter { try Loopback.boundSocket(listening: false, host: senderHost, type: udp).fd },
                configuration: configuration, group: senderGroup, threadPool: senderPool)
        } else {
            receiver = try await TransferEndpoint.bind(host: "127.0.0.1", port: receiverPort, configuration: configuration,
                                                       group: receiverGroup, threadPool: receiverPool, addHandlers: addHandlers)
            sender = try await TransferEndpoint.bind(host: "127.0.0.1", port: 0, configuration: configuration,
                                                     group: senderGroup, threadPool: senderPool)
        }
        let token = TransferToken.random()
        let key = TransferKey.random()
        if let problem = receiver.expect(IncomingOffer(token: token, key: key, fileName: "payload.bin", saveAs: saveAs,
                                                       sender: "bench")) {
            throw BenchError(problem)
        }
        let upload = sender.send(try SourceFile(path: source), name: "payload.bin", token: token, key: key,
                                 to: receiver.localAddress)
        return BenchTransfer(sender: sender, receiver: receiver, upload: upload)
    }

    /// Both endpoints closed, the receiver's last write done.
    func close() async {
        await sender.close()
        await receiver.waitUntilIdle()
        await receiver.close()
    }

    /// Waits for the outcome, then closes.
    func finish() async throws -> TransferSummary {
        let outcome = await upload.result()
        await close()
        return try outcome.get()
    }
}

/// One end of a timed transfer: an event loop and a worker thread of its own, as each
/// client has, so that the end's CPU time can be read apart from the other's.
final class BenchEnd: Sendable {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let pool = NIOThreadPool(numberOfThreads: 1)

    /// The two ends every timed transfer of the process uses, kept (as the process's
    /// shared threads would be) so that no run pays for new threads and their memory.
    static let pair = (sender: BenchEnd(), receiver: BenchEnd())

    init() { pool.start() }

    /// CPU seconds its two threads used so far.
    func cpuSeconds() async throws -> Double {
        let loop = try await group.next().submit { threadCPUSeconds() }.get()
        return try await loop + pool.runIfActive { threadCPUSeconds() }
    }
}

/// Drops a share of what the channel reads, before the transfer handler sees it: whole
/// reads, as nftables drops whole GSO trains on loopback.
final class DroppingHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    private let percent: Int
    private var generator = SystemRandomNumberGenerator()

    init(percent: Int) { self.percent = percent }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if Int.random(in: 0..<100, using: &generator) < percent { return }
        context.fireChannelRead(data)
    }
}

/// Lets `after` bytes through, then nothing: the network gone mid-transfer.
final class CuttingHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    private let after: UInt64
    private var seen: UInt64 = 0

    init(after: UInt64) { self.after = after }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard seen < after else { return }
        seen += UInt64(unwrapInboundIn(data).data.readableBytes)
        context.fireChannelRead(data)
    }
}

/// A blocking TCP copy between two threads of this process.
enum PlainTCPCopy {
    static let chunk = 4 << 20

    static func run(source: String, destination: String) throws -> UploadScenario.Measurement {
        let (listener, port) = try Loopback.boundSocket(listening: true)
        defer { close(listener) }
        let done = DispatchSemaphore(value: 0)
        let failure = LockedBox<String?>(nil)
        let cpuBefore = processCPUSeconds()
        let started = ContinuousClock.now
        let receiverCPU = LockedBox(0.0)
        Thread.detachNewThread {
            let threadBefore = threadCPUSeconds()
            defer { receiverCPU.set(threadCPUSeconds() - threadBefore) }
            let connection = accept(listener, nil, nil)
            let out = open(destination, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 64)
            var offset: off_t = 0
            while true {
                let n = read(connection, buffer, chunk)
                if n <= 0 { break }
                if pwrite(out, buffer, n, offset) != n { failure.set("write failed") }
                offset += off_t(n)
            }
            buffer.deallocate()
            close(out)
            close(connection)
            done.signal()
        }
        let senderBefore = threadCPUSeconds()
        let connection = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard Loopback.connect(connection, port: port) else { throw BenchError("connect failed") }
        let input = open(source, O_RDONLY | O_CLOEXEC)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 64)
        var offset: off_t = 0
        while true {
            let n = pread(input, buffer, chunk, offset)
            if n <= 0 { break }
            var sent = 0
            while sent < n {
                let m = write(connection, buffer + sent, n - sent)
                if m <= 0 { break }
                sent += m
            }
            offset += off_t(n)
        }
        buffer.deallocate()
        close(input)
        close(connection)
        let senderCPU = threadCPUSeconds() - senderBefore
        done.wait()
        let elapsed = ContinuousClock.now - started
        let cpu = processCPUSeconds() - cpuBefore
        unlink(destination)
        if let problem = failure.get() { throw BenchError(problem) }
        var measurement = UploadScenario.Measurement(seconds: elapsed.seconds, bytes: UInt64(offset), cpuSeconds: cpu)
        measurement.sender = senderCPU
        measurement.receiver = receiverCPU.get()
        return measurement
    }
}

final class LockedBox<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func set(_ newValue: Value) { lock.withLock { value = newValue } }
    func get() -> Value { lock.withLock { value } }
    func update(_ change: (inout Value) -> Void) { lock.withLock { change(&value) } }
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
}

/// The item whose `key` is the median of theirs (of an even count, the upper one).
func median<Item>(_ items: [Item], by key: (Item) -> Double) -> Item {
    items.sorted { key($0) < key($1) }[items.count / 2]
}

extension Duration {
    var seconds: Double {
        let (whole, fraction) = components
        return Double(whole) + Double(fraction) / 1e18
    }
}

/// User plus system CPU time of the calling thread so far. (RUSAGE_THREAD, 1, needs
/// _GNU_SOURCE and so is not in Glibc's Swift module.)
func threadCPUSeconds() -> Double { cpuSeconds(of: 1) }

/// User plus system CPU time of this process so far.
func processCPUSeconds() -> Double { cpuSeconds(of: RUSAGE_SELF.rawValue) }

private func cpuSeconds(of who: Int32) -> Double {
    var usage = rusage()
    getrusage(who, &usage)
    func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// The lossy runs, inside the network namespace, each after a loss-free one to a port the
/// namespace does not drop: prints one result line per transfer.
struct UploadChildCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "upload-child", abstract: "One side of the upload scenario (used by the benchmarks).",
                                                    shouldDisplay: false)

    @Option var runs = 1
    @Option var source: String
    @Option var directory: String

    func run() async throws {
        // Unmeasured: a fresh process's first transfer pays for threads and memory once.
        _ = try await UploadScenario.udpTransfer(source: source, directory: directory,
                                                 receiverPort: UploadScenario.namespacePort + 1)
        for _ in 0..<runs {
            for port in [UploadScenario.namespacePort + 1, UploadScenario.namespacePort] {
                let result = try await UploadScenario.udpTransfer(source: source, directory: directory, receiverPort: port)
                print(result.line(port: port))
            }
        }
    }
}
