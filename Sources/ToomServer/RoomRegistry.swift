import Foundation
import ToomCore

/// Separate rooms: their members (kept in `rooms.txt`) and their message logs.
/// Ids are 1, 2, 3… and never reused; rooms outlive their members' sessions.
final class RoomRegistry {
    struct Room {
        let id: Int
        let members: [String]
        var log: MessageLog?
    }

    private let directory: String
    private let file: AppendFile
    private let warn: (String) -> Void
    private let commit: GroupCommit?
    /// The data directory, synced with `--sync` when a room's log file is created in it.
    private let directoryHandle: DirectoryHandle?
    private(set) var rooms: [Int: Room] = [:]
    private var byMembers: [Set<String>: Int] = [:]
    private var roomsOf: [String: [Int]] = [:]
    private(set) var nextId = 1

    init(directory: String, commit: GroupCommit?, warn: @escaping (String) -> Void) throws {
        self.directory = directory
        self.warn = warn
        self.commit = commit
        directoryHandle = commit == nil ? nil : try DirectoryHandle(path: directory)
        let path = directory + "/rooms.txt"
        if let bytes = try FileText.read(path) {
            let (lines, partial) = FileText.lines(bytes)
            var lineNumber = 0
            for line in lines {
                lineNumber += 1
                if line.isEmpty { continue }
                guard let record = RoomRecord.parse(line), record.id >= nextId else {
                    warn("rooms.txt:\(lineNumber): skipped: expected 'id; member, member, ...' with a new id")
                    continue
                }
                Self.restore(record, into: &self.rooms, &byMembers, &roomsOf, &nextId)
            }
            if let partial {
                warn("rooms.txt:\(lineNumber + 1): removed a torn last line")
                _ = truncate(path, off_t(bytes.count - partial.utf8.count))
            }
        }
        file = try AppendFile(path: path)
        // Open the logs of restored rooms so their numbering continues.
        for id in rooms.keys.sorted() {
            let logPath = Self.logPath(directory, id)
            if access(logPath, F_OK) == 0 {
                rooms[id]?.log = try MessageLog(path: logPath, commit: commit, warn: warn)
            }
        }
    }

    private static func restore(_ record: RoomRecord, into rooms: inout [Int: Room], _ byMembers: inout [Set<String>: Int],
                                _ roomsOf: inout [String: [Int]], _ nextId: inout Int) {
        var seen = Set<String>()
        let members = record.members.filter { seen.insert($0).inserted }
        rooms[record.id] = Room(id: record.id, members: members, log: nil)
        byMembers[seen] = record.id
        for member in members { roomsOf[member, default: []].append(record.id) }
        nextId = record.id + 1
    }

    static func logPath(_ directory: String, _ id: Int) -> String { "\(directory)/SR_\(id)_messageLog.txt" }

    func room(withMembers members: Set<String>) -> Int? { byMembers[members] }

    func rooms(of user: String) -> [Int] { roomsOf[user] ?? [] }

    /// Creates a room; it is in `rooms.txt` when this returns.
    func create(members: [String]) throws -> Room {
        let record = RoomRecord(id: nextId, members: members)
        try file.append(record.line + "\n")
        commit?.wrote(file)
        Self.restore(record, into: &rooms, &byMembers, &roomsOf, &nextId)
        return rooms[record.id]!
    }

    /// The room's log, created on its first message.
    func log(of id: Int) throws -> MessageLog {
        if let log = rooms[id]?.log { return log }
        let log = try MessageLog(path: Self.logPath(directory, id), commit: commit, warn: warn)
        if let directoryHandle { commit?.wrote(directoryHandle) }
        rooms[id]?.log = log
        return log
    }
}
