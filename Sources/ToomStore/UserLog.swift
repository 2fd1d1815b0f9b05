import ToomCore

/// `userlog.txt`: exactly the users online, numbered 1…n in login order.
/// A login appends a line; a logout rewrites the file (atomically) renumbered.
final class UserLog {
    let path: String
    private var entries: [UserLogRecord] = []
    private var file: AppendFile

    /// Starts empty: nobody is online when the server starts.
    init(path: String) throws {
        self.path = path
        try FileText.replace(path, with: "")
        file = try AppendFile(path: path)
    }

    /// True while the file still lists someone who left; `flush` rewrites it.
    private(set) var needsRewrite = false

    /// Appends a login line; the rules numbered it.
    func add(_ record: UserLogRecord) throws {
        var record = record
        record.sequence = entries.count + 1
        entries.append(record)
        do {
            if needsRewrite { try flush() } else { try file.append(record.line + "\n") }
        } catch {
            entries.removeLast()
            throw error
        }
    }

    /// Forgets a user now; the file follows at the next `flush`, so that many users leaving at
    /// once (a network outage, a shutdown) cost one rewrite rather than one each.
    func remove(user: String) {
        guard let index = entries.firstIndex(where: { $0.user == user }) else { return }
        entries.remove(at: index)
        for i in index..<entries.count { entries[i].sequence = i + 1 }
        needsRewrite = true
    }

    /// Rewrites the file, renumbered, if anyone left since the last rewrite.
    func flush() throws {
        guard needsRewrite else { return }
        try FileText.replace(path, with: entries.map { $0.line + "\n" }.joined())
        file = try AppendFile(path: path)
        needsRewrite = false
    }
}
