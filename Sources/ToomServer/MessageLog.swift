import Foundation
import ToomCore

/// A message kept in memory for RDM, with its time as epoch seconds for searching.
struct StoredMessage {
    let number: Int
    let time: Int64
    let timestamp: String
    let user: String
    let message: String
}

/// `messagelog.txt` or one room's `SR_<id>_messageLog.txt`: the file is the record; the
/// in-memory copy answers RDM. Numbering continues from the last line after a restart.
final class MessageLog {
    let name: String
    private var file: AppendFile! // opened once the existing lines are loaded
    /// With `--sync`: where each append is marked for the next shared fsync.
    private let commit: GroupCommit?
    private(set) var messages: [StoredMessage] = []
    /// False once a message is older than the one before it (the clock went back); then
    /// searches scan instead of bisecting.
    private var inTimeOrder = true

    var nextNumber: Int { (messages.last?.number ?? 0) + 1 }

    /// Opens (creating if needed) and loads the log, repairing a torn last line.
    /// Lines that do not parse are reported through `warn` and skipped.
    init(path: String, commit: GroupCommit?, warn: (String) -> Void) throws {
        name = (path as NSString).lastPathComponent
        self.commit = commit
        var completeLastLine = false
        if let bytes = try FileText.read(path) {
            let (lines, partial) = FileText.lines(bytes)
            var lineNumber = 0
            for line in lines {
                lineNumber += 1
                load(line, lineNumber: lineNumber, warn: warn)
            }
            if let partial {
                lineNumber += 1
                if case .success = MessageRecord.parse(partial) {
                    completeLastLine = true
                    load(partial, lineNumber: lineNumber, warn: warn)
                    warn("\(name):\(lineNumber): completed a last line that had no newline")
                } else {
                    let keep = bytes.count - partial.utf8.count
                    guard truncate(path, off_t(keep)) == 0 else {
                        throw StorageError(path: path, operation: "truncate", code: errno)
                    }
                    warn("\(name):\(lineNumber): removed a torn last line (\(partial.utf8.count) bytes)")
                }
            }
        }
        file = try AppendFile(path: path)
        if completeLastLine {
            try file.append("\n")
            commit?.wrote(file)
        }
    }

    private func load(_ line: Substring, lineNumber: Int, warn: (String) -> Void) {
        if line.isEmpty { return }
        switch MessageRecord.parse(line) {
        case .failure(let error):
            warn("\(name):\(lineNumber): skipped: \(error)")
        case .success(let record):
            guard record.number >= nextNumber else {
                warn("\(name):\(lineNumber): skipped: message number \(record.number) does not follow \(nextNumber - 1)")
                return
            }
            let time = Timestamp.parse(record.timestamp) ?? 0
            remember(StoredMessage(number: record.number, time: time, timestamp: record.timestamp,
                                   user: record.user, message: record.message))
        }
    }

    private func remember(_ message: StoredMessage) {
        if let last = messages.last, message.time < last.time { inTimeOrder = false }
        messages.append(message)
    }

    /// Appends a message; the line is in the file when this returns (and, with `--sync`,
    /// marked for the next fsync, which the reply waits for).
    func append(user: String, message: String, time: Int64, timestamp: String) throws -> MessageRecord {
        let record = MessageRecord(number: nextNumber, timestamp: timestamp, user: user, message: message)
        try file.append(record.line + "\n")
        commit?.wrote(file)
        remember(StoredMessage(number: record.number, time: time, timestamp: timestamp, user: user, message: message))
        return record
    }

    /// Messages strictly after `time`.
    func messages(after time: Int64) -> ArraySlice<StoredMessage> {
        guard inTimeOrder else {
            return ArraySlice(messages.filter { $0.time > time })
        }
        var low = 0
        var high = messages.count
        while low < high {
            let mid = (low + high) / 2
            if messages[mid].time > time { high = mid } else { low = mid + 1 }
        }
        return messages[low...]
    }
}
