import ToomCore
import NIOConcurrencyHelpers
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// How an endpoint sends and receives. The defaults suit loopback and LANs.
public struct TransferConfiguration: Sendable {
    /// Where incoming files are written.
    public var directory: String = "."
    /// Largest incoming file accepted, in bytes; nil for no limit.
    public var maxIncomingSize: UInt64?
    /// How long a transfer waits for a word from its peer before it fails.
    public var timeout: TimeAmount = .seconds(10)
    /// How long an announced transfer waits for the sender's START.
    public var offerLifetime: TimeAmount = .seconds(60)
    /// Bytes per block (whole segments, at least one): the unit of file reads and writes
    /// and of the receive window.
    public var blockBytes = 768 << 10
    /// Blocks a receiver holds per transfer while it reassembles and writes them.
    public var receiveBufferBlocks = 8
    /// Blocks a sender reads ahead of the oldest unacknowledged segment.
    public var sendBufferBlocks = 10
    /// SO_RCVBUF and SO_SNDBUF asked for (the kernel may cap them).
    public var socketBufferBytes = 4 << 20
    /// Use GSO and GRO where the kernel supports them.
    public var segmentationOffload = true
    /// False only to measure what encryption costs (toom-bench): both ends must agree, and
    /// nothing is then private or authenticated.
    public var encryption = true

    public init() {}

    /// Bytes a receiver lets a sender have in flight before it writes anything: the
    /// flow-control window of a fresh transfer on a 1,500-byte path.
    public var receiveWindowBytes: Int {
        segmentsPerBlock(payload: TransferPacket.ethernetSegmentPayload) * receiveBufferBlocks
            * TransferPacket.ethernetSegmentPayload
    }
    /// Largest datagram tried on any path; the route's MTU and probing decide below it
    /// (docs/TRANSFER.md §4).
    public var maxDatagram = TransferPacket.maxDatagram

    /// Segments of `payload` bytes in a block.
    func segmentsPerBlock(payload: Int) -> Int { max(blockBytes / payload, 1) }
}

/// A transfer the receiving side was told to expect (by whoever handed out the token).
public struct IncomingOffer: Sendable, Equatable {
    public var token: TransferToken
    /// The transfer's AEAD key, from whoever handed out the token.
    public var key: TransferKey
    /// The name the sender will announce in START.
    public var fileName: String
    /// The name the file gets in the endpoint's directory once verified.
    public var saveAs: String
    /// Who sends it, for the caller's own messages.
    public var sender: String
    /// The sender's addresses (spec §12): the receiver sends PUNCH to each, so that its
    /// NAT lets the sender's START in. Empty when the sender comes straight in.
    public var punchTargets: [SocketAddress]

    public init(token: TransferToken, key: TransferKey, fileName: String, saveAs: String, sender: String,
                punchTargets: [SocketAddress] = []) {
        self.token = token
        self.key = key
        self.fileName = fileName
        self.saveAs = saveAs
        self.sender = sender
        self.punchTargets = punchTargets
    }
}

/// What happened to an incoming transfer.
public enum IncomingEvent: Sendable, Equatable {
    /// The file is complete, every datagram authenticated, on disk and in place under `saveAs`.
    case received(IncomingOffer, bytes: UInt64)
    /// The receiver turned the transfer down before any byte was written.
    case refused(IncomingOffer, reason: String)
    /// The transfer broke off; nothing was left under `saveAs` (the partial file stays,
    /// hidden, for a resume).
    case failed(IncomingOffer, reason: String)
}

/// Why an upload failed, in words for the user.
public struct TransferFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String

    public init(_ reason: String) { self.reason = reason }

    public var description: String { reason }
}

public struct TransferSummary: Sendable, Equatable {
    /// File bytes this transfer carried: the size less what a resume found in place.
    public var bytes: UInt64
    /// Where this transfer picked up: bytes the receiver already had.
    public var resumedFrom: UInt64
    /// From the first datagram to the receiver's confirmation, in nanoseconds.
    public var nanoseconds: Int64
    public var datagrams: UInt64
    public var retransmissions: Int
    /// Payload bytes per datagram the path was found to carry.
    public var datagramSize: Int

    public var bytesPerSecond: Double { nanoseconds > 0 ? Double(bytes) * 1e9 / Double(nanoseconds) : 0 }
}

/// A file opened for sending: its size is fixed when it is opened.
public struct SourceFile: Sendable {
    let descriptor: FileDescriptor
    public let size: UInt64
    public let identity: FileIdentity
    private let modified: timespec

    /// Opens a regular file for reading, or explains in one line why it cannot.
    public init(path: String) throws(TransferFailure) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT { throw TransferFailure("\(path) does not exist") }
            throw TransferFailure("Cannot read \(path): \(String(cString: strerror(code)))")
        }
        let descriptor = FileDescriptor(fd)
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw TransferFailure("Cannot read \(path): \(String(cString: strerror(errno)))")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw TransferFailure("Cannot send \(path): it is not a regular file") }
        self.descriptor = descriptor
        size = UInt64(info.st_size)
        modified = info.st_mtim
        do {
            identity = try FileIdentity(descriptor: fd, status: info)
        } catch {
            throw TransferFailure("Cannot read \(path): \(error)")
        }
    }

    /// Whether the file was written to since it was opened (size or modification time).
    var hasChanged: Bool {
        var info = stat()
        guard fstat(descriptor.fd, &info) == 0 else { return true }
        return UInt64(info.st_size) != size || info.st_mtim.tv_sec != modified.tv_sec
            || info.st_mtim.tv_nsec != modified.tv_nsec
    }
}

/// An upload in progress, as its caller sees it.
public final class OutgoingTransfer: Sendable {
    public let name: String
    public let size: UInt64
    private let acknowledged = NIOLockedValueBox<UInt64>(0)
    private let outcome: EventLoopFuture<TransferSummary>
    let resuming: @Sendable (UInt64) -> Void

    init(name: String, size: UInt64, outcome: EventLoopFuture<TransferSummary>,
         resuming: @escaping @Sendable (UInt64) -> Void) {
        self.name = name
        self.size = size
        self.outcome = outcome
        self.resuming = resuming
    }

    /// File bytes the receiver has acknowledged so far.
    public var bytesAcknowledged: UInt64 { acknowledged.withLockedValue { $0 } }

    private let chosenPath = NIOLockedValueBox<TransferPath?>(nil)

    /// How the transfer reaches the receiver, once it answered.
    public var path: TransferPath? { chosenPath.withLockedValue { $0 } }

    func setPath(_ path: TransferPath) { chosenPath.withLockedValue { $0 = path } }

    func setAcknowledged(_ bytes: UInt64) { acknowledged.withLockedValue { $0 = bytes } }

    /// Completes when the receiver confirmed the file, or the transfer failed.
    public func result() async -> Result<TransferSummary, TransferFailure> {
        do {
            return .success(try await outcome.get())
        } catch let failure as TransferFailure {
            return .failure(failure)
        } catch {
            return .failure(TransferFailure("\(error)"))
        }
    }
}

/// Monotonic nanoseconds, and the 32-bit microsecond timestamps datagrams carry.
enum Clock {
    static func now() -> Int64 { Int64(NIODeadline.now().uptimeNanoseconds) }

    static func stamp(_ nanoseconds: Int64) -> UInt32 { UInt32(truncatingIfNeeded: nanoseconds / 1000) }

    /// Nanoseconds since `stamp` was taken, modulo the 71-minute wrap of the stamps.
    static func elapsed(since stamp: UInt32, now: Int64) -> Int64 {
        Int64(Clock.stamp(now) &- stamp) * 1000
    }
}
