import Foundation

/// An error writing one of toom's own files, with its path for the user.
public struct FileError: Error, CustomStringConvertible {
    public let path: String
    public let operation: String
    public let code: Int32

    public var description: String { "\(operation) \(path): \(String(cString: strerror(code)))" }
}

/// Files that must never be seen half-written or lost on a crash (keys, `known_servers`,
/// `credentials.txt`): a new file beside the old, written, fsynced, renamed over it, and
/// the directory fsynced so the rename itself survives.
public enum AtomicFile {
    /// `owner` (uid, gid) is kept when replacing a file of someone else's (as root).
    public static func write(_ path: String, _ bytes: [UInt8], mode: mode_t, owner: (uid_t, gid_t)? = nil) throws {
        let directory = (path as NSString).deletingLastPathComponent
        var template = Array(((directory.isEmpty ? "." : directory) + "/.toom-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw FileError(path: path, operation: "create a temporary file for", code: errno) }
        let temporary = String(cString: template)
        do {
            defer { close(fd) }
            guard fchmod(fd, mode) == 0 else { throw FileError(path: temporary, operation: "chmod", code: errno) }
            if let owner, owner != (getuid(), getgid()) {
                guard fchown(fd, owner.0, owner.1) == 0 else { throw FileError(path: temporary, operation: "chown", code: errno) }
            }
            var written = 0
            while written < bytes.count {
                let n = bytes.withUnsafeBytes { Foundation.write(fd, $0.baseAddress! + written, bytes.count - written) }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw FileError(path: temporary, operation: "write", code: errno)
                }
                written += n
            }
            guard fsync(fd) == 0 else { throw FileError(path: temporary, operation: "fsync", code: errno) }
        } catch {
            unlink(temporary)
            throw error
        }
        guard rename(temporary, path) == 0 else {
            let code = errno
            unlink(temporary)
            throw FileError(path: path, operation: "rename", code: code)
        }
        let dirfd = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirfd >= 0 {
            _ = fsync(dirfd)
            close(dirfd)
        }
    }

    /// The file's bytes, or nil when it does not exist.
    public static func read(_ path: String) throws -> [UInt8]? {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            if access(path, F_OK) != 0, errno == ENOENT { return nil }
            throw FileError(path: path, operation: "open", code: errno)
        }
        defer { try? handle.close() }
        do {
            return Array(try handle.readToEnd() ?? Data())
        } catch {
            throw FileError(path: path, operation: "read", code: EIO)
        }
    }
}
