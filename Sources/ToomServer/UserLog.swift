import ToomCore

/// `userlog.txt`: exactly the users online, numbered 1…n in login order.
/// A login appends a line; a logout rewrites the file (atomically) renumbered.
final class UserLog {
    let path: String
    private(set) var entries: [UserLogRecord] = []
    private var file: AppendFile

    /// Starts empty: nobody is online when the server starts.
    init(path: String) throws {
        self.path = path
        try FileText.replace(path, with: "")
        file = try AppendFile(path: path)
    }

    func add(user: String, timestamp: String, address: String, udpPort: Int) throws -> UserLogRecord {
        let record = UserLogRecord(sequence: entries.count + 1, timestamp: timestamp, user: user,
                                   address: address, udpPort: udpPort)
        try file.append(record.line + "\n")
        entries.append(record)
        return record
    }

    func remove(user: String) throws {
        guard let index = entries.firstIndex(where: { $0.user == user }) else { return }
        var remaining = entries
        remaining.remove(at: index)
        for i in remaining.indices { remaining[i].sequence = i + 1 }
        try FileText.replace(path, with: remaining.map { $0.line + "\n" }.joined())
        entries = remaining
        file = try AppendFile(path: path)
    }

    func record(for user: String) -> UserLogRecord? { entries.first { $0.user == user } }
}
