import Foundation
import ToomChat
import ToomCore

/// The embedded store: the files of spec §3 in a data directory, byte for byte as the
/// course's programs wrote them. A log line goes out in one `write(2)`; with `--sync` it is
/// made durable by a shared fsync (`GroupCommit`) before the reply that depends on it.
public final class FileChatStore: ChatStore, @unchecked Sendable {
    public let directory: String
    /// Guards the open files: writes come under the server's lock, flushes from elsewhere.
    private let lock = NSLock()
    private let commit: GroupCommit?
    private let broadcasts: MessageLog
    private var roomLogs: [Int: MessageLog] = [:]
    private let rooms: RoomsFile
    private let userLog: UserLog
    private let directoryHandle: DirectoryHandle?
    private let warn: (String) -> Void
    private var credentialsStamp: FileStamp?
    /// The logs with staged lines, in the order first staged, and the size of the batch.
    private var stagedLogs: [MessageLog] = []
    private var stagedCount = 0

    /// Opens the logs, repairing torn last lines, and empties `userlog.txt` (nobody is online).
    public init(directory: String, sync: Bool, warn: @escaping (String) -> Void) throws {
        self.directory = directory
        self.warn = warn
        func path(_ name: String) -> String { directory + "/" + name }
        commit = sync ? GroupCommit() : nil
        directoryHandle = sync ? try DirectoryHandle(path: directory) : nil
        broadcasts = try MessageLog(path: path(LogFiles.broadcasts), commit: commit, warn: warn)
        rooms = try RoomsFile(directory: directory, commit: commit, warn: warn)
        // The logs of restored rooms continue their numbering; a room's log is created on its first message.
        for room in rooms.restored {
            let logPath = path(LogKind.room(room.id).fileName)
            if access(logPath, F_OK) == 0 {
                roomLogs[room.id] = try MessageLog(path: logPath, commit: commit, warn: warn)
            }
        }
        userLog = try UserLog(path: path(LogFiles.users))
        // Files created just now are durable once their directory is.
        if let commit, let directoryHandle { commit.wrote(directoryHandle) }
    }

    private func path(_ name: String) -> String { directory + "/" + name }

    // MARK: Accounts

    public func loadAccounts(warn: (String) -> Void) throws -> [String: StoredPassword] {
        let file = path(LogFiles.credentials)
        let stamp = FileStamp(path: file)
        guard let bytes = try FileText.read(file) else {
            throw StorageError(path: file, operation: "open", code: ENOENT)
        }
        let credentials = Credentials(parsing: String(decoding: bytes, as: UTF8.self))
        for problem in credentials.problems {
            warn("\(LogFiles.credentials):\(problem.line): skipped: \(problem.reason)")
        }
        lock.withLock { credentialsStamp = stamp }
        return credentials.entries
    }

    public func accountsChanged() -> Bool {
        let now = FileStamp(path: path(LogFiles.credentials))
        return lock.withLock { now != nil && now != credentialsStamp }
    }

    // MARK: Writes

    public func snapshot() -> ChatSnapshot {
        lock.withLock {
            ChatSnapshot(lastBroadcast: broadcasts.lastNumber,
                         rooms: rooms.restored.map { ($0, roomLogs[$0.id]?.lastNumber ?? 0) })
        }
    }

    public func apply(_ write: StoreWrite) throws -> UInt64? {
        try lock.withLock {
            switch write {
            case .broadcast(let record, let time):
                return try broadcasts.append(record, time: time)
            case .roomMessage(let room, let record, let time):
                return try log(of: room).append(record, time: time)
            case .room(let record):
                return try rooms.append(record)
            case .login(let record):
                try userLog.add(record)
                return nil
            case .logout(let user):
                userLog.remove(user: user)
                return nil
            case .block, .unblock:
                return nil  // blocks live in the rules' memory when one server has the record
            }
        }
    }

    // MARK: Batches

    /// Message lines wait in their log's buffer until `writeStaged`, which writes each log's
    /// lines of the batch with one `write(2)`. Only messages are staged: a room or a login
    /// changes what later commands may do, so those go through `apply` at once.
    public func stage(_ write: StoreWrite) throws -> Int? {
        try lock.withLock {
            let log: MessageLog
            let record: MessageRecord
            let time: Int64
            switch write {
            case .broadcast(let r, let t):
                (log, record, time) = (broadcasts, r, t)
            case .roomMessage(let room, let r, let t):
                (log, record, time) = (try self.log(of: room), r, t)
            case .room, .login, .logout, .block, .unblock:
                return nil
            }
            let position = stagedCount
            stagedCount += 1
            if !log.hasStaged { stagedLogs.append(log) }
            log.stage(record, time: time, position: position)
            return position
        }
    }

    public func writeStaged() -> StagedWrites {
        lock.withLock {
            var result = StagedWrites()
            for log in stagedLogs {
                switch log.writeStaged() {
                case .success(let ticket):
                    if let ticket { result.ticket = max(result.ticket ?? 0, ticket) }
                case .failure(let failure):
                    for position in failure.positions { result.failed[position] = failure.error }
                }
            }
            stagedLogs.removeAll(keepingCapacity: true)
            stagedCount = 0
            return result
        }
    }

    /// The room's log, created on its first message.
    private func log(of room: Int) throws -> MessageLog {
        if let log = roomLogs[room] { return log }
        let log = try MessageLog(path: path(LogKind.room(room).fileName), commit: commit, warn: warn)
        if let commit, let directoryHandle { commit.wrote(directoryHandle) }
        roomLogs[room] = log
        return log
    }

    public func whenDurable(_ ticket: UInt64, _ done: @escaping @Sendable (Error?) -> Void) {
        guard let commit else { return done(nil) }
        commit.whenDurable(ticket, done)
    }

    public func flush() throws {
        try lock.withLock { try userLog.flush() }
    }

    public func close() -> String? {
        let problem: String? = lock.withLock {
            do { try userLog.flush(); return nil } catch { return "error: \(error)" }
        }
        guard let commit else { return problem }
        commit.stop()
        let done = commit.statistics
        return [problem, "--sync: \(done.writes) writes made durable by \(done.batches) fsync batches"]
            .compactMap { $0 }.joined(separator: "\n")
    }

    // MARK: Reads

    public func history(_ request: HistoryRequest) -> HistoryCursor {
        let logs: [(Int?, MessageLog)] = lock.withLock {
            request.sources.compactMap { source in
                if let room = source.room { return roomLogs[room].map { (room, $0) } }
                return (nil, broadcasts)
            }
        }
        let through = Dictionary(request.sources.map { ($0.room ?? 0, $0.through) }, uniquingKeysWith: max)
        return FileHistory(logs.map { room, log in
            (room, log.messages(after: request.after, through: through[room ?? 0] ?? 0))
        })
    }

    public func verify(warn: @escaping @Sendable (String) -> Void) {
        let logs: [(MessageLog, Int64)] = lock.withLock {
            [(broadcasts, broadcasts.size)] + roomLogs.keys.sorted().map { (roomLogs[$0]!, roomLogs[$0]!.size) }
        }
        // Start-up read only the tails of the logs; the rest is checked once the server serves.
        Thread.detachNewThread {
            // Lowest priority: checking old lines must not slow down serving new ones.
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 19)  // 0: this thread, on Linux
            for (log, end) in logs {
                do {
                    try log.verify(end: end) { warn($0) }
                } catch {
                    warn("\(error)")
                }
            }
        }
    }
}

/// An RDM answer from the files: each source's messages in turn.
private final class FileHistory: HistoryCursor {
    private var sources: [(room: Int?, cursor: MessageCursor)]

    init(_ sources: [(Int?, MessageCursor)]) { self.sources = sources.map { ($0.0, $0.1) } }

    func next() throws -> HistoryItem? {
        while let (room, cursor) = sources.first {
            if let record = try cursor.next() { return HistoryItem(room: room, record: record) }
            sources.removeFirst()
        }
        return nil
    }
}

/// Enough of a file's identity to notice that it was replaced or edited.
struct FileStamp: Equatable {
    let inode: UInt64
    let size: Int64
    let modified: Int64

    init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        modified = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
    }
}
