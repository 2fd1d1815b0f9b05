import Crypto
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What a file is, independent of any key, in 32 bytes the presenter computes in a few
/// reads whatever the size: SHA-256 of the size, the modification time, device and
/// inode, and 16 samples of 4 KiB spread over the file (the first and the last among
/// them). A resumed transfer must announce the same identity as the one that left the
/// partial file, or the partial is discarded (docs/TRANSFER.md §6).
public struct FileIdentity: Equatable, Sendable {
    static let size = 32
    static let samples = 16
    static let sampleBytes = 4096

    let bytes: [UInt8]

    init(bytes: [UInt8]) { self.bytes = bytes }

    init(descriptor fd: Int32, status info: stat) throws {
        var hasher = SHA256()
        let fileSize = UInt64(info.st_size)
        Self.feed(&hasher, fileSize, UInt64(bitPattern: Int64(info.st_mtim.tv_sec)), UInt64(info.st_mtim.tv_nsec),
                  UInt64(info.st_dev), UInt64(info.st_ino))
        if fileSize > 0 {
            let sample = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.sampleBytes, alignment: 64)
            defer { sample.deallocate() }
            let last = fileSize > UInt64(Self.sampleBytes) ? fileSize - UInt64(Self.sampleBytes) : 0
            for index in 0..<UInt64(Self.samples) {
                let offset = last * index / UInt64(Self.samples - 1)
                let count = Int(min(UInt64(Self.sampleBytes), fileSize - offset))
                try FileDescriptor.read(fd, into: sample, count: count, at: offset)
                hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: sample[..<count]))
            }
        }
        bytes = Array(hasher.finalize())
    }

    private static func feed(_ hasher: inout SHA256, _ values: UInt64...) {
        for value in values { withUnsafeBytes(of: value.bigEndian) { hasher.update(bufferPointer: $0) } }
    }

    func write(into buffer: inout ByteBuffer) { buffer.writeBytes(bytes) }
}

/// What the record of a partial file says: which file (size and identity), how much of it
/// is durably on disk, and the generation of the saying. Encoded in a slot of
/// `PartialRecord.size` bytes: magic `TFR2`, generation u64, size u64, identity, durable
/// prefix u64, the first 16 bytes of SHA-256 of all that (a torn or damaged slot is none).
struct PartialRecord: Equatable {
    static let magic: [UInt8] = Array("TFR2".utf8)
    static let size = 4 + 8 + 8 + FileIdentity.size + 8 + 16
    /// Two slots a sector apart, written in turn: a write torn by a crash (even a torn
    /// sector) damages only the slot being written, and the other still holds the record
    /// before it. Once any record was written the file is `fileSize` bytes long.
    static let slotOffsets: [UInt64] = [0, 512]
    static let fileSize = Int(slotOffsets[1]) + size

    let generation: UInt64
    let fileBytes: UInt64
    let identity: FileIdentity
    let durable: UInt64

    /// Where this generation goes: the slot the previous one did not use.
    var slotOffset: UInt64 { Self.slotOffsets[Int(generation % 2)] }

    var encoded: [UInt8] {
        var bytes = Self.magic
        for value in [generation, fileBytes] { Self.append(value, to: &bytes) }
        bytes += identity.bytes
        Self.append(durable, to: &bytes)
        bytes += SHA256.hash(data: bytes).prefix(16)
        return bytes
    }

    /// A slot's record, or nil when it is not one whole and intact.
    init?(slot bytes: some Collection<UInt8>) {
        let bytes = Array(bytes)
        guard bytes.count == Self.size, Array(bytes[0..<4]) == Self.magic,
              Array(SHA256.hash(data: bytes[0..<(Self.size - 16)]).prefix(16)) == Array(bytes[(Self.size - 16)...])
        else { return nil }
        func number(at offset: Int) -> UInt64 { bytes[offset..<(offset + 8)].reduce(0) { $0 << 8 | UInt64($1) } }
        generation = number(at: 4)
        fileBytes = number(at: 12)
        identity = FileIdentity(bytes: Array(bytes[20..<(20 + FileIdentity.size)]))
        durable = number(at: 20 + FileIdentity.size)
    }

    init(generation: UInt64, fileBytes: UInt64, identity: FileIdentity, durable: UInt64) {
        self.generation = generation
        self.fileBytes = fileBytes
        self.identity = identity
        self.durable = durable
    }

    /// The newest intact record among the slots of a record file's bytes.
    static func latest(in file: [UInt8]) -> PartialRecord? {
        slotOffsets.compactMap { offset -> PartialRecord? in
            let start = Int(offset)
            guard file.count >= start + size else { return nil }
            return PartialRecord(slot: file[start..<(start + size)])
        }.max { $0.generation < $1.generation }
    }

    private static func append(_ value: UInt64, to bytes: inout [UInt8]) {
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }
}

/// The audience's partial file of one incoming transfer and the record of how much of it
/// is on disk: `.<saved name>.part` and `.<saved name>.part-record` in the receiving
/// directory. Blocks are written in file order, so what arrived is a prefix; the record
/// names the file (size and identity) and that prefix, and is rewritten only after the
/// prefix was fsynced, so it never claims bytes that are not on disk.
struct PartialFile {
    static let dataSuffix = ".part"
    static let recordSuffix = ".part-record"

    let dataPath: String
    let recordPath: String
    let data: FileDescriptor
    private let record: RecordFile
    let size: UInt64
    let identity: FileIdentity

    /// The record file, written by one commit at a time (a failing transfer's last commit
    /// can overlap a write job's): each commit takes the next generation, so only the slot
    /// being written is ever at risk.
    private final class RecordFile: Sendable {
        let descriptor: FileDescriptor
        /// The generation of the last record, from the one read at the start (0: none).
        let generation: Mutex<UInt64>

        init(_ descriptor: FileDescriptor, generation: UInt64) {
            self.descriptor = descriptor
            self.generation = Mutex(generation)
        }
    }

    /// Opens (or creates) the partial of `saveAs` in `directory`. Returns it with the bytes
    /// already on disk: the record's prefix if the record is intact and names this very
    /// file, else 0 after discarding what was there.
    static func openOrCreate(directory: String, saveAs: String, size: UInt64, identity: FileIdentity)
        throws(TransferFailure) -> (PartialFile, resumeFrom: UInt64) {
        let base = directory + "." + saveAs
        let dataPath = base + dataSuffix, recordPath = base + recordSuffix
        let recordFD = open(recordPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard recordFD >= 0 else { throw TransferFailure("cannot create the file: \(String(cString: strerror(errno)))") }
        let record = FileDescriptor(recordFD)
        let dataFD = open(dataPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard dataFD >= 0 else { throw TransferFailure("cannot create the file: \(String(cString: strerror(errno)))") }
        let data = FileDescriptor(dataFD)
        var resumeFrom: UInt64 = 0
        var generation: UInt64 = 0
        if let found = read(record), found.fileBytes == size, found.identity == identity, found.durable <= size {
            var info = stat()
            if fstat(dataFD, &info) == 0, UInt64(info.st_size) >= found.durable {
                resumeFrom = found.durable
                generation = found.generation
            }
        }
        if resumeFrom == 0 {
            // Forget the old record, both slots, before any new byte lands where it pointed.
            guard ftruncate(recordFD, 0) == 0, fdatasync(recordFD) == 0, ftruncate(dataFD, 0) == 0 else {
                throw TransferFailure("cannot create the file: \(String(cString: strerror(errno)))")
            }
        }
        return (PartialFile(dataPath: dataPath, recordPath: recordPath, data: data,
                            record: RecordFile(record, generation: generation), size: size, identity: identity),
                resumeFrom)
    }

    private static func read(_ record: FileDescriptor) -> PartialRecord? {
        var bytes = [UInt8](repeating: 0, count: PartialRecord.fileSize)
        let got = bytes.withUnsafeMutableBytes { pread(record.fd, $0.baseAddress!, PartialRecord.fileSize, 0) }
        guard got > 0 else { return nil }
        return PartialRecord.latest(in: Array(bytes[..<got]))
    }

    /// Makes the first `durable` bytes durable, then says so in the record (worker thread),
    /// in the slot the previous record does not use: that one stays whole until this one is.
    func commit(durable: UInt64) throws {
        guard fdatasync(data.fd) == 0 else { throw TransferFileError(errno: errno) }
        try record.generation.withLock { generation in
            let entry = PartialRecord(generation: generation + 1, fileBytes: size, identity: identity, durable: durable)
            try entry.encoded.withUnsafeBytes { try record.descriptor.write($0, at: entry.slotOffset) }
            guard fdatasync(record.descriptor.fd) == 0 else { throw TransferFileError(errno: errno) }
            generation += 1
        }
    }

    /// The whole file arrived: on disk first, then under its final name; the record goes.
    func complete(finalPath: String) throws {
        guard fsync(data.fd) == 0 else { throw TransferFileError(errno: errno) }
        guard rename(dataPath, finalPath) == 0 else { throw TransferFileError(errno: errno) }
        unlink(recordPath)
    }

    /// Nothing worth keeping arrived: removes both files.
    func discard() {
        unlink(dataPath)
        unlink(recordPath)
    }

    /// Removes partial files and records in `directory` last modified more than `age`
    /// ago (`--keep-partial`); returns how many went.
    @discardableResult
    static func removeExpired(in directory: String, olderThan age: Double) -> Int {
        guard let dir = opendir(directory) else { return 0 }
        defer { closedir(dir) }
        let prefix = directory.hasSuffix("/") ? directory : directory + "/"
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var removed = 0
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard name.hasPrefix("."), name.hasSuffix(dataSuffix) || name.hasSuffix(recordSuffix) else { continue }
            var info = stat()
            guard lstat(prefix + name, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG,
                  Double(now.tv_sec - info.st_mtim.tv_sec) > age
            else { continue }
            if unlink(prefix + name) == 0 { removed += 1 }
        }
        return removed
    }
}

extension TransferEndpoint {
    /// The length of a partial file's record once any record was written to it.
    public static let partialRecordFileSize = PartialRecord.fileSize

    /// Removes the partial files (and their records) of incoming transfers in `directory`
    /// that were last written more than `seconds` ago; returns how many files went.
    @discardableResult
    public static func removeExpiredPartials(in directory: String, olderThan seconds: Double) -> Int {
        PartialFile.removeExpired(in: directory, olderThan: seconds)
    }
}
