import Crypto
import NIOCore

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

/// The audience's partial file of one incoming transfer and the record of how much of it
/// is on disk: `.<saved name>.part` and `.<saved name>.part-record` in the receiving
/// directory. Blocks are written in file order, so what arrived is a prefix; the record
/// names the file (size and identity) and that prefix, and is rewritten only after the
/// prefix was fsynced, so it never claims bytes that are not on disk.
struct PartialFile {
    static let dataSuffix = ".part"
    static let recordSuffix = ".part-record"
    private static let magic: [UInt8] = Array("TFR1".utf8)
    /// magic, size u64, identity, durable prefix u64, the first 16 bytes of SHA-256 of all that.
    static let recordSize = 4 + 8 + FileIdentity.size + 8 + 16

    let dataPath: String
    let recordPath: String
    let data: FileDescriptor
    private let record: FileDescriptor
    let size: UInt64
    let identity: FileIdentity

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
        if let (recordedSize, recordedIdentity, durable) = read(record), recordedSize == size,
           recordedIdentity == identity, durable <= size {
            var info = stat()
            if fstat(dataFD, &info) == 0, UInt64(info.st_size) >= durable { resumeFrom = durable }
        }
        if resumeFrom == 0 {
            // Forget the old record before any new byte lands where it pointed.
            guard ftruncate(recordFD, 0) == 0, fdatasync(recordFD) == 0, ftruncate(dataFD, 0) == 0 else {
                throw TransferFailure("cannot create the file: \(String(cString: strerror(errno)))")
            }
        }
        return (PartialFile(dataPath: dataPath, recordPath: recordPath, data: data, record: record, size: size,
                            identity: identity), resumeFrom)
    }

    private static func read(_ record: FileDescriptor) -> (UInt64, FileIdentity, UInt64)? {
        var bytes = [UInt8](repeating: 0, count: recordSize)
        let got = bytes.withUnsafeMutableBytes { pread(record.fd, $0.baseAddress!, recordSize, 0) }
        guard got == recordSize, Array(bytes[0..<4]) == magic,
              Array(SHA256.hash(data: bytes[0..<(recordSize - 16)]).prefix(16)) == Array(bytes[(recordSize - 16)...])
        else { return nil }
        let size = bytes[4..<12].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let identity = FileIdentity(bytes: Array(bytes[12..<(12 + FileIdentity.size)]))
        let durable = bytes[(12 + FileIdentity.size)..<(20 + FileIdentity.size)].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return (size, identity, durable)
    }

    /// Makes the first `durable` bytes durable, then says so in the record (worker thread).
    func commit(durable: UInt64) throws {
        guard fdatasync(data.fd) == 0 else { throw TransferFileError(errno: errno) }
        var bytes = Self.magic
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: size >> UInt64(shift))) }
        bytes += identity.bytes
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: durable >> UInt64(shift))) }
        bytes += SHA256.hash(data: bytes).prefix(16)
        try bytes.withUnsafeBytes { try record.write($0, at: 0) }
        guard fdatasync(record.fd) == 0 else { throw TransferFileError(errno: errno) }
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
    /// Removes the partial files (and their records) of incoming transfers in `directory`
    /// that were last written more than `seconds` ago; returns how many files went.
    @discardableResult
    public static func removeExpiredPartials(in directory: String, olderThan seconds: Double) -> Int {
        PartialFile.removeExpired(in: directory, olderThan: seconds)
    }
}
