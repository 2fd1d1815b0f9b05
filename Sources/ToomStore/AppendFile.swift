import Foundation
import ToomCore

/// An error from the server's files, with the path for the operator.
public struct StorageError: Error, CustomStringConvertible {
    public let path: String
    public let operation: String
    public let code: Int32

    public init(path: String, operation: String, code: Int32) {
        self.path = path
        self.operation = operation
        self.code = code
    }

    public var description: String { "\(operation) \(path): \(String(cString: strerror(code)))" }
}

/// A file opened for appending whole lines. A line goes out in one write; if a write fails
/// part-way, the file is cut back to where it was, so it never holds a torn line.
public final class AppendFile: Durable {
    public let path: String
    private let fd: Int32
    public private(set) var size: Int64

    public init(path: String) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, FileText.mode)
        guard fd >= 0 else { throw StorageError(path: path, operation: "open", code: errno) }
        size = Int64(lseek(fd, 0, SEEK_END))
    }

    deinit { close(fd) }

    public func append(_ text: String) throws {
        let start = size
        guard RawOutput.writeChecked(fd, text) else {
            let code = errno
            _ = ftruncate(fd, off_t(start))
            throw StorageError(path: path, operation: "write", code: code)
        }
        size = start + Int64(text.utf8.count)
    }

    /// Cuts the file back to `length` bytes (repairing a torn last line).
    func truncate(to length: Int64) throws {
        guard ftruncate(fd, off_t(length)) == 0 else { throw StorageError(path: path, operation: "truncate", code: errno) }
        size = length
    }

    public func sync() throws {
        guard fsync(fd) == 0 else { throw StorageError(path: path, operation: "fsync", code: errno) }
    }
}

public enum FileText {
    /// The logs hold what users said to each other and who is online from where: only the
    /// server's owner may read them (spec §3 files, docs/SECURITY.md).
    public static let mode: mode_t = 0o600

    /// The whole file as bytes, or nil when it does not exist.
    public static func read(_ path: String) throws -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw StorageError(path: path, operation: "open", code: errno)
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        while true {
            let chunk = try read(fd, from: Int64(bytes.count), count: 1 << 20, path: path)
            if chunk.isEmpty { return bytes }
            bytes.append(contentsOf: chunk)
        }
    }

    /// Up to `count` bytes at `offset` (fewer at the end of the file).
    public static func read(_ fd: Int32, from offset: Int64, count: Int, path: String) throws -> [UInt8] {
        guard count > 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + filled, count - filled, off_t(offset) + off_t(filled)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw StorageError(path: path, operation: "read", code: errno)
            }
            if n == 0 { break }
            filled += n
        }
        bytes.removeLast(count - filled)
        return bytes
    }

    /// Replaces a file's contents atomically: a temporary file, then rename.
    public static func replace(_ path: String, with text: String) throws {
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw StorageError(path: temporary, operation: "open", code: errno) }
        let ok = RawOutput.writeChecked(fd, text)
        let code = errno
        close(fd)
        guard ok else { unlink(temporary); throw StorageError(path: temporary, operation: "write", code: code) }
        guard rename(temporary, path) == 0 else { throw StorageError(path: path, operation: "rename", code: errno) }
    }

    /// Splits into lines. A final line without its newline is returned separately:
    /// it was being written when the server stopped.
    public static func lines(_ bytes: [UInt8]) -> (complete: [Substring], partial: Substring?) {
        var lines = Text.lines(String(decoding: bytes, as: UTF8.self))
        let last = lines.removeLast()
        return (lines, last.isEmpty ? nil : last)
    }
}
