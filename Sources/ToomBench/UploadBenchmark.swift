import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import ToomTransfer

/// UPD's data path: a file moved between two transfer endpoints on loopback, against a
/// plain TCP copy of the same bytes in the same run; then again with datagrams lost.
struct UploadBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upload",
        abstract: "Peer-to-peer file transfer over UDP against plain TCP, with and without loss."
    )

    @Option(help: "Bytes to move (suffixes K, M, G).")
    var size = "1G"

    @Option(help: "Percentage of the receiver's datagrams to drop in the lossy run.")
    var loss = 10

    @Option(help: "Runs of each measurement; the median is reported.")
    var runs = 3

    @Flag(help: "Drop datagrams in-process even where a lossy network namespace could be made.")
    var inProcessLoss = false

    /// Set when this process is the lossy run inside the namespace: the source file.
    @Option(help: .hidden)
    var namespaceChild: String?

    @Option(help: "Where the files go (default: /dev/shm if it exists, so that the disk is not what is measured).")
    var directory: String?

    /// The receiver's port inside the namespace, which the drop rule names.
    static let namespacePort = 40000

    func validate() throws {
        guard let bytes = ByteCount.parse(size), bytes > 0 else { throw ValidationError("Invalid size: \(size)") }
        _ = bytes
        guard (0...99).contains(loss) else { throw ValidationError("Invalid loss: \(loss). It must be from 0 to 99") }
        guard runs >= 1 else { throw ValidationError("Invalid runs: \(runs)") }
    }

    func run() async throws {
        let bytes = ByteCount.parse(size)!
        if let source = namespaceChild {
            // Inside the namespace: the UDP runs only; the parent prints the table.
            for _ in 0..<runs {
                let result = try await Self.udpTransfer(source: source, directory: directory ?? ".",
                                                        receiverPort: Self.namespacePort, dropping: 0)
                print("RESULT \(result.seconds) \(result.retransmissions)")
            }
            return
        }

        let base = directory ?? (FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory())
        let work = URL(fileURLWithPath: base).appendingPathComponent("toom-bench-\(getpid())")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        let source = work.appendingPathComponent("payload.bin").path
        try Self.writeRandomFile(source, bytes: bytes)

        var tcp: [Double] = []
        var udp: [Double] = []
        var lossy: [Double] = []
        var retransmitted: [Int] = []
        for _ in 0..<runs {
            tcp.append(try await Self.tcpTransfer(source: source, destination: work.appendingPathComponent("tcp.bin").path))
            let clean = try await Self.udpTransfer(source: source, directory: work.path, receiverPort: 0, dropping: 0)
            udp.append(clean.seconds)
        }

        var lossMethod: String
        if let reason = inProcessLoss ? "asked for" : LossyNamespace.unavailableReason {
            lossMethod = "in-process, whole reads dropped (\(reason))"
            for _ in 0..<runs {
                let result = try await Self.udpTransfer(source: source, directory: work.path, receiverPort: 0, dropping: loss)
                lossy.append(result.seconds)
                retransmitted.append(result.retransmissions)
            }
        } else {
            lossMethod = "nftables in a network namespace"
            let namespace = try LossyNamespace(dropping: loss, ofUDPTo: Self.namespacePort)
            defer { namespace.remove() }
            let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
            let output = try namespace.run([executable, "upload", "--size", size, "--runs", String(runs),
                                            "--namespace-child", source, "--directory", work.path])
            for line in output.split(separator: "\n") where line.hasPrefix("RESULT ") {
                let fields = line.split(separator: " ")
                lossy.append(Double(fields[1]) ?? 0)
                retransmitted.append(Int(fields[2]) ?? 0)
            }
            guard lossy.count == runs else { throw BenchError("the lossy run printed: \(output)") }
        }

        let rate = { (seconds: [Double]) in Double(bytes) / median(seconds) }
        var table = ResultTable(title: "toom-bench upload: \(ByteCount.describe(bytes)) over loopback, median of \(runs) runs, \(ProcessInfo.processInfo.activeProcessorCount) CPUs")
        table.add("UDP transfer, no loss", rate(udp), format: ByteCount.rate, reference: "plain TCP, same bytes", rate(tcp))
        table.add("UDP transfer, \(loss)% loss", rate(lossy), format: ByteCount.rate, reference: "UDP transfer, no loss", rate(udp))
        table.notes = [
            "loss: \(lossMethod); datagrams retransmitted per lossy run: \(retransmitted.map(String.init).joined(separator: ", "))",
            "datagrams: \(TransferPacket.maxDatagram) bytes (\(TransferPacket.segmentPayload) of file each); "
                + "GSO \(System.supportsUDPSegmentationOffload ? "on" : "off"), GRO \(System.supportsUDPReceiveOffload ? "on" : "off")",
            "UDP figures include SHA-256 on both sides and the receiver's write to disk; TCP is read, send, receive, write.",
        ]
        print(table.render())
    }

    // MARK: Measurements

    struct UDPResult {
        var seconds: Double
        var retransmissions: Int
    }

    /// One file sent between two endpoints of this process; timed from the first datagram
    /// to the receiver's confirmation that the SHA-256 matched.
    static func udpTransfer(source: String, directory: String, receiverPort: Int, dropping percent: Int) async throws -> UDPResult {
        var configuration = TransferConfiguration()
        configuration.directory = directory
        @Sendable func addDropper(_ channel: any Channel) throws {
            let handler = DroppingHandler(percent: percent)
            try channel.pipeline.syncOperations.addHandler(handler)
        }
        let dropper: (@Sendable (any Channel) throws -> Void)? = percent == 0 ? nil : addDropper
        let receiver = try await TransferEndpoint.bind(host: "127.0.0.1", port: receiverPort,
                                                       configuration: configuration, addHandlers: dropper)
        let sender = try await TransferEndpoint.bind(host: "127.0.0.1", port: 0, configuration: configuration)
        defer {
            unlink(directory + "/received.bin")
        }
        let token = TransferToken.random()
        if let problem = receiver.expect(IncomingOffer(token: token, fileName: "payload.bin", saveAs: "received.bin", sender: "bench")) {
            throw BenchError(problem)
        }
        let file = try SourceFile(path: source)
        let cpuBefore = processCPUSeconds()
        let started = ContinuousClock.now
        let upload = sender.send(file, name: "payload.bin", token: token, to: receiver.localAddress)
        let outcome = await upload.result()
        let elapsed = ContinuousClock.now - started
        if ProcessInfo.processInfo.environment["TOOM_BENCH_DEBUG"] != nil {
            FileHandle.standardError.write("udp: \(elapsed.seconds) s wall, \(processCPUSeconds() - cpuBefore) s CPU\n".data(using: .utf8)!)
        }
        await sender.close()
        await receiver.close()
        switch outcome {
        case .success(let summary):
            return UDPResult(seconds: elapsed.seconds, retransmissions: summary.retransmissions)
        case .failure(let failure):
            throw BenchError("the UDP transfer failed: \(failure)")
        }
    }

    /// The same bytes through a plain TCP connection on loopback: read, send, receive, write.
    static func tcpTransfer(source: String, destination: String) async throws -> Double {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { try PlainTCPCopy.run(source: source, destination: destination) })
            }
        }
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

/// A blocking TCP copy between two threads of this process.
enum PlainTCPCopy {
    static let chunk = 4 << 20

    static func run(source: String, destination: String) throws -> Double {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw BenchError("socket failed") }
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try withUnsafeMutablePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                guard bind(listener, raw, length) == 0, listen(listener, 1) == 0,
                      getsockname(listener, raw, &length) == 0 else { throw BenchError("bind failed") }
            }
        }
        let done = DispatchSemaphore(value: 0)
        let failure = LockedBox<String?>(nil)
        let started = ContinuousClock.now
        Thread.detachNewThread {
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
        let connection = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(connection, $0, length) }
        }
        guard connected == 0 else { throw BenchError("connect failed") }
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
        done.wait()
        let elapsed = ContinuousClock.now - started
        unlink(destination)
        if let problem = failure.get() { throw BenchError(problem) }
        return elapsed.seconds
    }
}

final class LockedBox<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func set(_ newValue: Value) { lock.withLock { value = newValue } }
    func get() -> Value { lock.withLock { value } }
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
}

extension Duration {
    var seconds: Double {
        let (whole, fraction) = components
        return Double(whole) + Double(fraction) / 1e18
    }
}

/// User plus system CPU time of this process so far.
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}
