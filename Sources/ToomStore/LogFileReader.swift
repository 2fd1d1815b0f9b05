#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a log file line by line through one fixed buffer, so memory stays the same
/// however long the file. Keeps its place, so a followed file can be read again as it grows.
public final class LogFileReader {
    public static let bufferSize = 64 * 1024

    public let path: String
    private var fd: Int32
    private var buffer: [UInt8]
    private var start = 0
    private var end = 0
    /// Skipping the rest of a line too long for the buffer.
    private var discarding = false
    private var atEnd = false
    public private(set) var lineNumber = 0
    /// Bytes read from the file so far.
    private var offset: Int64 = 0
    private var inode: UInt64

    public enum Line {
        case text(String, number: Int)
        case malformed(reason: String, number: Int)
    }

    /// Opens the file to read from byte `offset`, which must start a line.
    public init?(path: String, offset: Int64 = 0) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        if offset > 0, lseek(fd, off_t(offset), SEEK_SET) != off_t(offset) {
            close(fd)
            return nil
        }
        self.offset = offset
        var info = stat()
        fstat(fd, &info)
        self.path = path
        self.fd = fd
        self.inode = UInt64(info.st_ino)
        buffer = [UInt8](repeating: 0, count: Self.bufferSize)
    }

    deinit { close(fd) }

    /// The next line; nil when no whole line is available now. With `finalLine`, text after
    /// the last newline at the end of the file counts as a line.
    public func next(finalLine: Bool) -> Line? {
        while true {
            let found = buffer.withUnsafeBufferPointer { b in memchr(b.baseAddress! + start, 0x0A, end - start) }
            if let found {
                let newline = buffer.withUnsafeBufferPointer { b in UnsafeRawPointer(b.baseAddress!).distance(to: UnsafeRawPointer(found)) }
                let lineStart = start
                start = newline + 1
                if discarding {
                    discarding = false
                    continue
                }
                lineNumber += 1
                return decode(lineStart, newline)
            }
            if start > 0 {
                buffer.withUnsafeMutableBufferPointer { b in
                    _ = memmove(b.baseAddress!, b.baseAddress! + start, end - start)
                }
                end -= start
                start = 0
            }
            if end == buffer.count {
                // No newline in a full buffer: report the line once and skip to its end.
                end = 0
                if !discarding {
                    discarding = true
                    lineNumber += 1
                    return .malformed(reason: "the line is longer than \(Self.bufferSize) bytes", number: lineNumber)
                }
                continue
            }
            let n = buffer.withUnsafeMutableBufferPointer { b in read(fd, b.baseAddress! + end, b.count - end) }
            if n > 0 {
                end += n
                offset += Int64(n)
                atEnd = false
                continue
            }
            if n < 0 && errno == EINTR { continue }
            atEnd = true
            guard finalLine, end > start, !discarding else { return nil }
            let lineStart = start
            start = end
            lineNumber += 1
            return decode(lineStart, end)
        }
    }

    private func decode(_ from: Int, _ to: Int) -> Line {
        var to = to
        if to > from, buffer[to - 1] == 0x0D { to -= 1 }
        guard let text = String(validating: buffer[from..<to], as: UTF8.self) else {
            return .malformed(reason: "the line is not valid UTF-8", number: lineNumber)
        }
        return .text(text, number: lineNumber)
    }

    /// Whether the file at `path` is no longer the one being read (moved aside, replaced or
    /// cut short), after everything in the old one was read.
    public var wasReplaced: Bool {
        guard atEnd else { return false }
        var info = stat()
        guard stat(path, &info) == 0 else { return false }
        return UInt64(info.st_ino) != inode || Int64(info.st_size) < offset
    }
}
