import ToomCore

/// `userlog.txt`: exactly the users online, numbered 1…n in login order.
/// A login appends a line; a logout rewrites the file (atomically) renumbered. The file is
/// the store's only copy of the list (the rules keep their own): holding it in memory too
/// cost some 100 bytes per idle session.
final class UserLog {
    let path: String
    private var file: AppendFile
    /// Lines in the file.
    private var lines = 0
    /// Who left since the last rewrite; their lines go at the next `flush`.
    private var departed: Set<String> = []

    /// Starts empty: nobody is online when the server starts.
    init(path: String) throws {
        self.path = path
        try FileText.replace(path, with: "")
        file = try AppendFile(path: path)
    }

    /// True while the file still lists someone who left; `flush` rewrites it.
    var needsRewrite: Bool { !departed.isEmpty }

    /// Appends a login line, numbered after the lines already there.
    func add(_ record: UserLogRecord) throws {
        // A user who left and comes back is on the file once, after the rewrite.
        try flush()
        var record = record
        record.sequence = lines + 1
        try file.append(record.line + "\n")
        lines += 1
    }

    /// Forgets a user now; the file follows at the next `flush`, so that many users leaving at
    /// once (a network outage, a shutdown) cost one rewrite rather than one each.
    func remove(user: String) {
        departed.insert(user)
    }

    /// Rewrites the file, renumbered, without those who left since the last rewrite.
    func flush() throws {
        guard needsRewrite else { return }
        let text = String(decoding: try FileText.read(path) ?? [], as: UTF8.self)
        var kept = ""
        var count = 0
        for line in text.split(separator: "\n") {
            guard var record = UserLogRecord.parse(line), !departed.contains(record.user) else { continue }
            count += 1
            record.sequence = count
            kept += record.line + "\n"
        }
        try FileText.replace(path, with: kept)
        file = try AppendFile(path: path)
        lines = count
        departed = []
    }
}
