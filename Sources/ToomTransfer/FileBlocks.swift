import NIOConcurrencyHelpers
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A block of file bytes: `segmentsPerBlock` segments, read or written in one system
/// call. Owned by one side at a time: the event loop while it fills or sends from it,
/// the worker thread while it reads, hashes or writes it.
final class Block: @unchecked Sendable {
    let index: UInt64
    let memory: UnsafeMutableRawBufferPointer
    /// Bytes of the file this block holds (the last block of a file is shorter).
    let length: Int
    private let pool: BlockPool

    init(index: UInt64, length: Int, pool: BlockPool) {
        self.index = index
        self.length = length
        self.pool = pool
        precondition(length <= pool.blockBytes, "a block larger than the pool's")
        memory = pool.take()
    }

    deinit { pool.give(memory) }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: memory[0..<length]) }
}

/// Block memory kept for reuse while an endpoint has transfers: memory of a block's size
/// freshly allocated is mapped anew and costs a page fault for every 4 KiB at its first
/// touch, which was a fifth of a loopback transfer's CPU. Given back to the system once the
/// endpoint is idle. Blocks come and go on the event loop and on worker threads.
final class BlockPool: @unchecked Sendable {
    /// Bytes of every block's memory.
    let blockBytes: Int
    private let state = NIOLockedValueBox<(free: [UnsafeMutableRawBufferPointer], keeping: Bool)>(([], false))
    /// Most blocks kept unused.
    private let limit: Int

    init(blockBytes: Int, limit: Int) {
        self.blockBytes = max(blockBytes, 1)
        self.limit = limit
    }

    deinit { release() }

    func take() -> UnsafeMutableRawBufferPointer {
        state.withLockedValue { $0.free.popLast() }
            ?? UnsafeMutableRawBufferPointer.allocate(byteCount: blockBytes, alignment: 64)
    }

    func give(_ memory: UnsafeMutableRawBufferPointer) {
        let kept = state.withLockedValue { state in
            guard state.keeping, state.free.count < limit else { return false }
            state.free.append(memory)
            return true
        }
        if !kept { memory.deallocate() }
    }

    /// Whether blocks given back are kept: while transfers run.
    func keep(_ keeping: Bool) {
        state.withLockedValue { $0.keeping = keeping }
        if !keeping { release() }
    }

    private func release() {
        for memory in state.withLockedValue({ state in defer { state.free = [] }; return state.free }) {
            memory.deallocate()
        }
    }
}

/// An open file descriptor, closed when the last reference goes.
final class FileDescriptor: @unchecked Sendable {
    let fd: Int32

    init(_ fd: Int32) { self.fd = fd }

    deinit { _ = close(fd) }

    /// Reads exactly `count` bytes at `offset`; throws on error or a short file.
    func read(into memory: UnsafeMutableRawBufferPointer, count: Int, at offset: UInt64) throws {
        try Self.read(fd, into: memory, count: count, at: offset)
    }

    static func read(_ fd: Int32, into memory: UnsafeMutableRawBufferPointer, count: Int, at offset: UInt64) throws {
        var done = 0
        while done < count {
            let n = pread(fd, memory.baseAddress! + done, count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw TransferFileError(errno: errno)
            }
            if n == 0 { throw TransferFileError(message: "the file became shorter while it was being sent") }
            done += n
        }
    }

    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws {
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw TransferFileError(errno: errno)
            }
            done += n
        }
    }

    /// Starts writing `count` bytes from `offset` back to the disk without waiting: the
    /// next fdatasync then finds most of them already there.
    func startWriteback(at offset: UInt64, count: Int) {
        _ = Self.syncFileRange?(fd, Int64(offset), Int64(count), Self.syncFileRangeWrite)
    }

    /// Linux's sync_file_range(2), which Glibc's Swift module leaves out (a GNU extension):
    /// looked up once; nil where the system has none, and then nothing is started early.
    private static let syncFileRange: (@convention(c) (Int32, Int64, Int64, UInt32) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "sync_file_range") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int32, Int64, Int64, UInt32) -> Int32).self)
    }()
    private static let syncFileRangeWrite: UInt32 = 2
}

struct TransferFileError: Error, CustomStringConvertible {
    let description: String

    init(message: String) { description = message }

    init(errno code: Int32) { description = String(cString: strerror(code)) }
}

/// Where the segments and blocks of what a transfer carries start and end: the file's
/// bytes from `base` (where a resumed transfer picks up) to its end.
struct FileLayout {
    /// Bytes carried: the file's size less `base`.
    let size: UInt64
    let base: UInt64
    let segmentPayload: Int
    let segmentsPerBlock: Int

    var segments: UInt64 { (size + UInt64(segmentPayload) - 1) / UInt64(segmentPayload) }
    var blocks: UInt64 { (segments + UInt64(segmentsPerBlock) - 1) / UInt64(segmentsPerBlock) }
    var blockBytes: Int { segmentPayload * segmentsPerBlock }

    func block(of segment: UInt64) -> UInt64 { segment / UInt64(segmentsPerBlock) }
    func firstSegment(of block: UInt64) -> UInt64 { block * UInt64(segmentsPerBlock) }
    /// Where the block starts in the file.
    func offset(of block: UInt64) -> UInt64 { base + block * UInt64(blockBytes) }

    func length(of block: UInt64) -> Int {
        let start = block * UInt64(blockBytes)
        return start >= size ? 0 : Int(min(UInt64(blockBytes), size - start))
    }

    func segmentCount(of block: UInt64) -> Int {
        let first = firstSegment(of: block)
        return first >= segments ? 0 : Int(min(UInt64(segmentsPerBlock), segments - first))
    }

    func length(ofSegment segment: UInt64) -> Int {
        let start = segment * UInt64(segmentPayload)
        return start >= size ? 0 : Int(min(UInt64(segmentPayload), size - start))
    }
}
