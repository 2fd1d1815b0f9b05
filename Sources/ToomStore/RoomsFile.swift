import Foundation
import ToomCore

/// `rooms.txt`: one line per separate room, `id; member, member, ...`, so rooms outlive
/// their members' sessions and a restart (spec §3). The rules keep the rooms; this keeps
/// the file.
final class RoomsFile {
    private let file: AppendFile
    private let commit: GroupCommit?
    /// Rooms read at start-up, in id order.
    let restored: [RoomRecord]

    init(directory: String, commit: GroupCommit?, warn: (String) -> Void) throws {
        self.commit = commit
        let path = directory + "/" + LogFiles.rooms
        var rooms: [RoomRecord] = []
        if let bytes = try FileText.read(path) {
            let (lines, partial) = FileText.lines(bytes)
            var lineNumber = 0
            for line in lines {
                lineNumber += 1
                if line.isEmpty { continue }
                guard let record = RoomRecord.parse(line), record.id > (rooms.last?.id ?? 0) else {
                    warn("\(LogFiles.rooms):\(lineNumber): skipped: expected 'id; member, member, ...' with a new id")
                    continue
                }
                rooms.append(record)
            }
            if let partial {
                warn("\(LogFiles.rooms):\(lineNumber + 1): removed a torn last line")
                _ = truncate(path, off_t(bytes.count - partial.utf8.count))
            }
        }
        restored = rooms
        file = try AppendFile(path: path)
    }

    /// Records a new room; it is in the file when this returns.
    func append(_ record: RoomRecord) throws -> GroupCommit.Ticket? {
        try file.append(record.line + "\n")
        return commit?.wrote(file)
    }
}
