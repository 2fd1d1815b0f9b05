import Foundation
import ToomCore

/// `credentials.txt`, read again when it has changed: the login path calls `refresh`, which
/// costs one stat, so an account added by `toom passwd` logs in without a restart. A line
/// that does not parse is reported and skipped; the others load.
struct CredentialsFile {
    let path: String
    private(set) var accounts: Credentials
    private let warn: (String) -> Void
    private let note: (String) -> Void
    /// Device, inode, size and modification time when last read: a rename (`toom passwd`) or
    /// an edit in place changes at least one.
    private var signature: [Int]

    /// `warn` gets problems, `note` the news that the file was read again.
    init(path: String, warn: @escaping (String) -> Void, note: @escaping (String) -> Void) throws {
        self.path = path
        self.warn = warn
        self.note = note
        signature = Self.signature(path) ?? []
        guard let bytes = try FileText.read(path) else {
            throw StorageError(path: path, operation: "open", code: ENOENT)
        }
        accounts = Credentials(parsing: String(decoding: bytes, as: UTF8.self))
        report(accounts)
    }

    mutating func refresh() {
        let now = Self.signature(path) ?? []
        guard now != signature else { return }
        signature = now
        do {
            guard let bytes = try FileText.read(path) else {
                warn("credentials.txt is gone; keeping the \(accounts.entries.count) accounts loaded")
                return
            }
            accounts = Credentials(parsing: String(decoding: bytes, as: UTF8.self))
            report(accounts)
            note("credentials.txt changed: \(accounts.entries.count) accounts loaded")
        } catch {
            warn("cannot read credentials.txt (\(error)); keeping the \(accounts.entries.count) accounts loaded")
        }
    }

    private func report(_ accounts: Credentials) {
        for problem in accounts.problems {
            warn("credentials.txt:\(problem.line): skipped: \(problem.reason)")
        }
    }

    private static func signature(_ path: String) -> [Int]? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return [Int(info.st_dev), Int(info.st_ino), Int(info.st_size), info.st_mtim.tv_sec, info.st_mtim.tv_nsec]
    }
}
