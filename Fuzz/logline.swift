/// The log-line parsers (`messagelog.txt`, `SR_<id>_messageLog.txt`, `userlog.txt`,
/// `rooms.txt`): any text is refused or parsed into a record whose line parses back into
/// the same record, and the splitter loses nothing.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    let text = String(decoding: input(data, size), as: UTF8.self)
    for maxSplits in [1, 3, 4] {
        let fields = LogLine.split(text, maxSplits: maxSplits)
        check(fields.count >= 1 && fields.count <= maxSplits + 1, "\(fields.count) fields for at most \(maxSplits) splits")
        check(fields.joined(separator: LogLine.separator) == text, "fields do not join back into \(text.debugDescription)")
        // Byte-wise: the format is bytes, and String.contains would also match U+037E
        // (Greek question mark), which is canonically equivalent to ";".
        check(fields.dropLast().allSatisfy { !Array($0.utf8).containsSeparator }, "a field before the last holds the separator")
    }
    if case .success(let record) = MessageRecord.parse(text) {
        check(record.number > 0, "message number \(record.number)")
        check(Text.isValidUsername(record.user), "username \(record.user.debugDescription)")
        check(MessageRecord.parse(record.line) == .success(record), "\(record) does not survive its line")
    }
    if let record = UserLogRecord.parse(text) {
        check(UserLogRecord.parse(record.line) == record, "\(record) does not survive its line")
    }
    if let record = RoomRecord.parse(text) {
        check(record.id > 0 && !record.members.isEmpty, "room \(record)")
        check(RoomRecord.parse(record.line) == record, "\(record) does not survive its line")
    }
    return 0
}

extension Array where Element == UInt8 {
    var containsSeparator: Bool {
        indices.dropLast().contains { self[$0] == UInt8(ascii: ";") && self[$0 + 1] == UInt8(ascii: " ") }
    }
}
