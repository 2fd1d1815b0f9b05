import Foundation
import Logging
import PostgresNIO
import ToomChat
import ToomCore
import ToomStore

/// `toom export --store URL <dir>`: the files of spec §3 written from the database, byte
/// for byte as the file store would have written them for a stopped server: `messagelog.txt`
/// and `rooms.txt` (even when empty), `SR_<id>_messageLog.txt` for each room with messages,
/// an empty `userlog.txt` (nobody is online in a directory), and `credentials.txt` with one
/// `username password` line per account, in the order they were imported or created.
public enum PostgresExport {
    public struct Summary: Sendable, CustomStringConvertible {
        public var accounts = 0
        public var rooms = 0
        public var broadcasts = 0
        public var roomMessages = 0
        /// The snapshot's place in the store's feed: what `follow` picks up after.
        public var feed: Int64 = 0

        public var description: String {
            "exported \(accounts) accounts, \(rooms) rooms, \(broadcasts) broadcasts and \(roomMessages) room messages"
        }
    }

    /// Writes into `directory` (created if needed); refuses one that already holds any of
    /// the files unless `replace`. Reads one consistent snapshot of the database.
    public static func run(from location: PostgresLocation, to directory: String, replace: Bool) async throws -> Summary {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let existing = names.filter { $0 == LogFiles.credentials || $0 == LogFiles.users || $0 == LogFiles.rooms || LogKind(fileName: $0) != nil }
        if !existing.isEmpty && !replace {
            throw PostgresChatStore.Refused(description: "\(directory) already holds \(existing.sorted().joined(separator: ", ")); --replace overwrites them")
        }
        let logger = Logger(label: "toom.export") { _ in SwiftLogNoOpLogHandler() }
        let client = PostgresClient(configuration: location.configuration, backgroundLogger: logger)
        let runTask = Task { await client.run() }
        defer { runTask.cancel() }
        var version = 0
        for try await exists in try await client.query("select to_regclass('toom_schema') is not null", logger: logger).decode(Bool.self)
            where exists {
            for try await found in try await client.query("select coalesce(max(version), 0) from toom_schema", logger: logger)
                .decode(Int.self) { version = found }
        }
        if version == 0 { throw PostgresChatStore.Refused(description: "the database at \(location) holds no toom store") }
        if version > Schema.version { throw PostgresChatStore.Refused(description: Schema.TooNew(found: version).description) }
        let path = { (name: String) in directory + "/" + name }
        let summary = try await Schema.unwrapped { try await client.withTransaction(logger: logger) { connection in
            _ = try await connection.query("set transaction isolation level repeatable read, read only", logger: logger)
            var summary = Summary()
            for try await last in try await connection.query("select last from toom_feed", logger: logger).decode(Int64.self) {
                summary.feed = last
            }
            var credentials = ""
            for try await (user, password) in try await connection.query(
                "select username, password from toom_accounts order by position, username", logger: logger).decode((String, String).self) {
                credentials += "\(user) \(password)\n"
                summary.accounts += 1
            }
            var rooms = ""
            var roomIDs: [Int] = []
            for try await (id, members) in try await connection.query("select id, members from toom_rooms order by id", logger: logger)
                .decode((Int, [String]).self) {
                rooms += RoomRecord(id: id, members: members).line + "\n"
                roomIDs.append(id)
            }
            summary.rooms = roomIDs.count
            try FileText.replace(path(LogFiles.credentials), with: credentials)
            try FileText.replace(path(LogFiles.rooms), with: rooms)
            try FileText.replace(path(LogFiles.users), with: "")
            for room in [0] + roomIDs {
                let name = room == 0 ? LogFiles.broadcasts : LogKind.room(room).fileName
                let file = path(name)
                let temporary = file + ".export.tmp"
                let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, FileText.mode)
                guard fd >= 0 else { throw StorageError(path: temporary, operation: "open", code: errno) }
                var count = 0
                var buffer = ""
                do {
                    defer { close(fd) }
                    let rows = try await connection.query("""
                        select n, ts, username, message from toom_messages where room = \(room) order by n
                        """, logger: logger)
                    for try await (n, ts, user, message) in rows.decode((Int, String, String, String).self) {
                        buffer += MessageRecord(number: n, timestamp: ts, user: user, message: message).line + "\n"
                        count += 1
                        if buffer.utf8.count >= 64 * 1024 {
                            guard RawOutput.writeChecked(fd, buffer) else { throw StorageError(path: temporary, operation: "write", code: errno) }
                            buffer = ""
                        }
                    }
                    guard RawOutput.writeChecked(fd, buffer) else { throw StorageError(path: temporary, operation: "write", code: errno) }
                }
                if room == 0 || count > 0 {
                    guard rename(temporary, file) == 0 else { throw StorageError(path: file, operation: "rename", code: errno) }
                } else {
                    unlink(temporary)  // the file store creates a room's log on its first message
                }
                if room == 0 { summary.broadcasts = count } else { summary.roomMessages += count }
            }
            return summary
        } }
        // What the snapshot saw may have been committed without its flush; wait for it.
        try await Schema.waitDurable(client, logger: logger)
        return summary
    }

    /// Appends the messages the store gets after `feed` to the files `run` wrote, as a
    /// server appends to its logs (a room's file appears with its first message), every
    /// `interval` until cancelled. A database that cannot be read is reported once and
    /// tried again.
    public static func follow(from location: PostgresLocation, in directory: String, after feed: Int64,
                              every interval: Duration = .milliseconds(500), report: @escaping @Sendable (String) -> Void) async throws {
        let logger = Logger(label: "toom.export") { _ in SwiftLogNoOpLogHandler() }
        let client = PostgresClient(configuration: location.configuration, backgroundLogger: logger)
        let runTask = Task { await client.run() }
        defer { runTask.cancel() }
        var last = feed
        var failing = false
        while true {
            do {
                var lines: [Int: String] = [:]
                let after = last
                let rows = try await withDeadline(PostgresChatStore.queryTimeout) {
                    var rows: [(Int64, Int, Int, String, String, String)] = []
                    for try await row in try await client.query("""
                        select feed, room, n, ts, username, message from toom_messages where feed > \(after) order by feed limit 10000
                        """, logger: logger).decode((Int64, Int, Int, String, String, String).self) {
                        rows.append(row)
                    }
                    if !rows.isEmpty {
                        try await Schema.waitDurable(client, logger: logger)
                    }
                    return rows
                }
                for (feed, room, n, ts, user, message) in rows {
                    lines[room, default: ""] += MessageRecord(number: n, timestamp: ts, user: user, message: message).line + "\n"
                    last = feed
                }
                for (room, text) in lines.sorted(by: { $0.key < $1.key }) {
                    let file = directory + "/" + (room == 0 ? LogFiles.broadcasts : LogKind.room(room).fileName)
                    let fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, FileText.mode)
                    guard fd >= 0 else { throw StorageError(path: file, operation: "open", code: errno) }
                    defer { close(fd) }
                    guard RawOutput.writeChecked(fd, text) else { throw StorageError(path: file, operation: "write", code: errno) }
                }
                if failing { report("the database at \(location) is reachable again") }
                failing = false
                if rows.count == 10000 { continue }
            } catch let error as StorageError {
                throw error
            } catch {
                if Task.isCancelled { throw CancellationError() }
                if !failing { report("cannot read the database at \(location): \(PostgresChatStore.describe(error)); trying again") }
                failing = true
            }
            try await Task.sleep(for: interval)
        }
    }
}
