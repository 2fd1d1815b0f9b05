import Testing
@testable import ToomCore

private let ts = "1 Jun 2022 21:30:04"

@Suite struct LogLineSplitTests {
    @Test(arguments: [
        ("1; \(ts); yoda; hello", 3, ["1", ts, "yoda", "hello"]),
        ("1; \(ts); yoda; hello; world; again", 3, ["1", ts, "yoda", "hello; world; again"]),
        ("1; \(ts); yoda; ", 3, ["1", ts, "yoda", ""]),
        ("1; \(ts); yoda;  spaced ", 3, ["1", ts, "yoda", " spaced "]),
        ("a;b; c", 3, ["a;b", "c"]),
        ("a ;b", 3, ["a ;b"]),
        ("a;; b", 3, ["a;", "b"]),
        ("a; ; b", 3, ["a", "", "b"]),
        ("a; ", 3, ["a", ""]),
        ("a;", 3, ["a;"]),
        ("", 3, [""]),
        ("; ", 3, ["", ""]),
        ("a; b; c", 0, ["a; b; c"]),
        ("a; b; c", 1, ["a", "b; c"]),
        ("1; 2; 3; 4; 5", 4, ["1", "2", "3", "4", "5"]),
        ("\u{E9}; \u{FC}; \u{7528}", 3, ["\u{E9}", "\u{FC}", "\u{7528}"]),
        ("u; \u{301}x", 3, ["u", "\u{301}x"]),
    ] as [(String, Int, [String])])
    func split(_ line: String, _ maxSplits: Int, _ expected: [String]) {
        #expect(LogLine.split(line, maxSplits: maxSplits).map(String.init) == expected)
    }

    @Test func separator() {
        #expect(LogLine.separator == "; ")
    }
}

@Suite struct MessageRecordTests {
    @Test(arguments: [
        MessageRecord(number: 1, timestamp: ts, user: "yoda", message: "hello"),
        MessageRecord(number: 42, timestamp: "01 Jun 2022 21:30:04", user: "hans", message: "a; b; c"),
        MessageRecord(number: 7, timestamp: "29 Feb 2024 00:00:00", user: "obi", message: " leading and trailing "),
        MessageRecord(number: 3, timestamp: ts, user: "caf\u{E9}", message: ""),
        MessageRecord(number: 99999, timestamp: ts, user: "yoda", message: "\u{1F600} \"quoted\" \u{301}"),
    ])
    func roundTrip(_ record: MessageRecord) {
        #expect(MessageRecord.parse(record.line) == .success(record))
    }

    @Test func lineFormat() {
        let record = MessageRecord(number: 1, timestamp: ts, user: "yoda", message: "hello; world")
        #expect(record.line == "1; 1 Jun 2022 21:30:04; yoda; hello; world")
    }

    @Test func parseKeepsTheTextOfTheTimestamp() throws {
        let record = try MessageRecord.parse("2; 01 Jun 2022 21:30:04; yoda; hi").get()
        #expect(record == MessageRecord(number: 2, timestamp: "01 Jun 2022 21:30:04", user: "yoda", message: "hi"))
    }

    @Test(arguments: [
        ("", MessageRecord.ParseError.fieldCount),
        ("hello", .fieldCount),
        ("1; \(ts); yoda", .fieldCount),
        ("1;\(ts);yoda;hello", .fieldCount),
        ("0; \(ts); yoda; hi", .number),
        ("-1; \(ts); yoda; hi", .number),
        ("x; \(ts); yoda; hi", .number),
        ("; \(ts); yoda; hi", .number),
        (" 1; \(ts); yoda; hi", .number),
        ("1.5; \(ts); yoda; hi", .number),
        ("1; 31 Feb 2022 12:00:00; yoda; hi", .timestamp),
        ("1; \(ts) ; yoda; hi", .timestamp),
        ("1; yesterday; yoda; hi", .timestamp),
        ("1; ; yoda; hi", .timestamp),
        ("1; \(ts); ; hi", .user),
        ("1; \(ts); a/b; hi", .user),
        ("1; \(ts); a,b; hi", .user),
        ("1; \(ts); ..; hi", .user),
        ("1; \(ts); yoda hans; hi", .user),
    ])
    func parseFailures(_ line: String, _ error: MessageRecord.ParseError) {
        #expect(MessageRecord.parse(line) == .failure(error))
    }

    @Test func parseErrorDescriptions() {
        #expect(MessageRecord.ParseError.fieldCount.description == "expected 'n; timestamp; username; message'")
        #expect(MessageRecord.ParseError.number.description == "the message number is not a positive integer")
        #expect(MessageRecord.ParseError.timestamp.description == "the timestamp is not in the format \(Timestamp.expectedFormat)")
        #expect(MessageRecord.ParseError.user.description == "the username is not valid")
    }
}

@Suite struct UserLogRecordTests {
    @Test(arguments: [
        UserLogRecord(sequence: 1, timestamp: ts, user: "yoda", address: "127.0.0.1", udpPort: 6000),
        UserLogRecord(sequence: 12, timestamp: "29 Feb 2024 23:59:59", user: "hans", address: "::1", udpPort: 65535),
        UserLogRecord(sequence: 2, timestamp: "01 Jun 2022 21:30:04", user: "obi", address: "192.168.1.20", udpPort: 1),
    ])
    func roundTrip(_ record: UserLogRecord) {
        #expect(UserLogRecord.parse(record.line) == record)
    }

    @Test func lineFormat() {
        let record = UserLogRecord(sequence: 1, timestamp: ts, user: "yoda", address: "127.0.0.1", udpPort: 6000)
        #expect(record.line == "1; 1 Jun 2022 21:30:04; yoda; 127.0.0.1; 6000")
    }

    @Test(arguments: [
        "",
        "1; \(ts); yoda; 127.0.0.1",
        "1; \(ts); yoda; 127.0.0.1; 6000; extra",
        "x; \(ts); yoda; 127.0.0.1; 6000",
        "1; 31 Feb 2022 12:00:00; yoda; 127.0.0.1; 6000",
        "1; \(ts); yoda; 127.0.0.1; port",
        "1; \(ts); yoda; 127.0.0.1; ",
        "1;\(ts);yoda;127.0.0.1;6000",
    ])
    func parseFailures(_ line: String) {
        #expect(UserLogRecord.parse(line) == nil)
    }
}

@Suite struct RoomRecordTests {
    @Test(arguments: [
        RoomRecord(id: 1, members: ["yoda", "hans"]),
        RoomRecord(id: 2, members: ["solo"]),
        RoomRecord(id: 305, members: ["yoda", "hans", "obi", "caf\u{E9}"]),
    ])
    func roundTrip(_ record: RoomRecord) {
        #expect(RoomRecord.parse(record.line) == record)
    }

    @Test func lineFormat() {
        #expect(RoomRecord(id: 3, members: ["yoda", "hans", "obi"]).line == "3; yoda, hans, obi")
    }

    @Test func membersMayBeSeparatedByCommasWithOrWithoutSpaces() {
        #expect(RoomRecord.parse("2; a,b,  c ") == RoomRecord(id: 2, members: ["a", "b", "c"]))
    }

    @Test(arguments: [
        "", "1", "1;", "1; ", "1;a", "0; a", "-1; a", "x; a", " 1; a",
        "1; a b", "1; a, b/c", "1; a, , b", "1; ..", "1; a; b",
    ])
    func parseFailures(_ line: String) {
        #expect(RoomRecord.parse(line) == nil)
    }
}
