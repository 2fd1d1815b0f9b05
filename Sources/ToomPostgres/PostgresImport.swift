import Foundation
import Logging
import PostgresNIO
import ToomChat
import ToomCore
import ToomStore

/// `toom import <dir> --store URL`: a data directory's accounts, rooms and logs moved into
/// the database in one transaction, keeping every number and timestamp.
public enum PostgresImport {
    public struct Summary: Sendable, CustomStringConvertible {
        public var accounts = 0
        public var rooms = 0
        public var broadcasts = 0
        public var roomMessages = 0
        public var skipped: [String] = []

        public var description: String {
            "imported \(accounts) accounts, \(rooms) rooms, \(broadcasts) broadcasts and \(roomMessages) room messages"
        }
    }

    /// Imports `directory`; refuses a database that already holds accounts, rooms or
    /// messages unless `replace`, which empties it first.
    public static func run(directory: String, into location: PostgresLocation, replace: Bool) async throws -> Summary {
        let data = try read(directory)
        return try await Schema.withClient(location, label: "toom.import") { client, logger in
            try await Schema.unwrapped { try await client.withTransaction(logger: logger) { connection in
                var held = 0
                for try await count in try await connection.query("""
                    select (select count(*) from toom_accounts) + (select count(*) from toom_rooms) + (select count(*) from toom_messages)
                    """, logger: logger).decode(Int.self) {
                    held = count
                }
                if held > 0 {
                    guard replace else {
                        throw PostgresChatStore.Refused(description: "the database at \(location) is not empty; --replace empties it first")
                    }
                    for statement: PostgresQuery in ["delete from toom_messages", "delete from toom_rooms", "delete from toom_accounts",
                                                     "delete from toom_online", "update toom_feed set last = 0"] {
                        _ = try await connection.query(statement, logger: logger)
                    }
                }
                var summary = data.summary
                for (position, (user, password)) in data.accounts.enumerated() {
                    _ = try await connection.query("""
                        insert into toom_accounts (username, password, position) values (\(user), \(password), \(position + 1))
                        """, logger: logger)
                }
                var feed: Int64 = 0
                for room in data.rooms {
                    feed += 1
                    let set = Set(room.members).sorted().joined(separator: ",")
                    _ = try await connection.query("""
                        insert into toom_rooms (id, members, member_set, feed) values (\(room.id), \(room.members), \(set), \(feed))
                        """, logger: logger)
                }
                // Messages in batches of bound arrays: one round trip per thousand rows.
                for (room, records) in data.logs {
                    for start in stride(from: 0, to: records.count, by: 1000) {
                        let batch = records[start..<min(records.count, start + 1000)]
                        let feeds = batch.indices.map { feed + Int64($0 - start + 1) }
                        feed += Int64(batch.count)
                        let rooms = Array(repeating: room, count: batch.count)
                        let numbers = batch.map(\.number)
                        let times = batch.map { Timestamp.parse($0.timestamp) ?? 0 }
                        let stamps = batch.map(\.timestamp)
                        let users = batch.map(\.user)
                        let messages = batch.map(\.message)
                        _ = try await connection.query("""
                            insert into toom_messages (feed, room, n, time, ts, username, message)
                            select * from unnest(\(feeds)::bigint[], \(rooms)::bigint[], \(numbers)::bigint[], \(times)::bigint[],
                                                 \(stamps)::text[], \(users)::text[], \(messages)::text[])
                            """, logger: logger)
                    }
                    if room == 0 { summary.broadcasts += records.count } else { summary.roomMessages += records.count }
                }
                _ = try await connection.query("update toom_feed set last = \(feed)", logger: logger)
                return summary
            } }
        }
    }

    struct DirectoryData: Sendable {
        /// In the order of `credentials.txt`.
        var accounts: [(String, String)] = []
        var rooms: [RoomRecord] = []
        /// Room 0 is the broadcast log.
        var logs: [(Int, [MessageRecord])] = []
        var summary = Summary()
    }

    /// Reads the §3 files of a data directory; lines that do not parse are reported and left out.
    static func read(_ directory: String) throws -> DirectoryData {
        var data = DirectoryData()
        let credentials = directory + "/" + LogFiles.credentials
        guard let text = try? String(contentsOfFile: credentials, encoding: .utf8) else {
            throw PostgresChatStore.Refused(description: "cannot read \(credentials)")
        }
        let parsed = Credentials(parsing: text)
        var seen = Set<String>()
        for line in text.split(separator: "\n") {
            let user = String(line.prefix { $0 != " " })
            if let password = parsed.entries[user]?.field, seen.insert(user).inserted { data.accounts.append((user, password)) }
        }
        data.summary.accounts = parsed.entries.count
        data.summary.skipped += parsed.problems.map { "\(LogFiles.credentials):\($0.line): \($0.reason)" }
        func lines(_ name: String, _ body: (String, Int) -> Void) {
            guard let reader = LogFileReader(path: directory + "/" + name) else { return }
            while let line = reader.next(finalLine: true) {
                switch line {
                case .text(let text, let number): body(text, number)
                case .malformed(let reason, let number): data.summary.skipped.append("\(name):\(number): \(reason)")
                }
            }
        }
        lines(LogFiles.rooms) { text, number in
            if let room = RoomRecord.parse(text) { data.rooms.append(room) } else { data.summary.skipped.append("\(LogFiles.rooms):\(number): not a room") }
        }
        data.summary.rooms = data.rooms.count
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let kinds = names.compactMap(LogKind.init(fileName:)).sorted()
        for kind in kinds {
            var records: [MessageRecord] = []
            lines(kind.fileName) { text, number in
                switch MessageRecord.parse(text) {
                case .success(let record): records.append(record)
                case .failure(let error): data.summary.skipped.append("\(kind.fileName):\(number): \(error)")
                }
            }
            switch kind {
            case .broadcast: data.logs.append((0, records))
            case .room(let id):
                guard data.rooms.contains(where: { $0.id == id }) else {
                    data.summary.skipped.append("\(kind.fileName): room \(id) is not in \(LogFiles.rooms)")
                    continue
                }
                data.logs.append((id, records))
            }
        }
        return data
    }
}
