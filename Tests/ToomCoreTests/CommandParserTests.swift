import Testing
@testable import ToomCore

private let ts = "1 Jun 2022 21:30:04"
private let controlError = "Error. Control characters (tabs, escapes, line breaks) are not allowed"
private let tooLong = "Error. Message is too long (at most 4096 bytes)"
private let usageBCM = "Usage: BCM <message>"
private let usageATU = "Usage: ATU"
private let usageSRB = "Usage: SRB <username1> [username2 ...]"
private let usageSRM = "Usage: SRM <roomID> <message>"
private let usageRDM = "Usage: RDM <b|s> <timestamp>, e.g. RDM b 1 Jun 2022 21:30:04"
private let usageOUT = "Usage: OUT"
private let usageUPD = "Usage: UPD <username> <filename>"

private func badType(_ type: String) -> String {
    "Error. RDM message type must be 'b' (broadcast) or 's' (separate room), not '\(type)'. \(usageRDM)"
}

private func badTimestamp(_ text: String) -> String {
    "Error. Invalid timestamp '\(text)': expected D Mon YYYY HH:MM:SS (e.g. 1 Jun 2022 21:30:04)"
}

@Suite struct CommandTests {
    @Test func promptAndConstants() {
        #expect(Command.prompt == "Enter one of the following commands (BCM, ATU, SRB, SRM, RDM, OUT, UPD): ")
        #expect(Command.invalidCommand == "Error. Invalid command!")
        #expect(Command.words == ["BCM", "ATU", "SRB", "SRM", "RDM", "OUT", "UPD"])
    }

    @Test(arguments: [
        ("BCM", usageBCM), ("ATU", usageATU), ("SRB", usageSRB), ("SRM", usageSRM), ("RDM", usageRDM),
        ("OUT", usageOUT), ("UPD", usageUPD), ("UDP", usageUPD), ("XYZ", "Error. Invalid command!"),
        ("bcm", "Error. Invalid command!"), ("", "Error. Invalid command!"),
    ])
    func usage(_ word: String, _ expected: String) {
        #expect(Command.usage(word) == expected)
    }

    @Test(arguments: [
        (Command.broadcast(message: "hi there"), "BCM", ["hi there"]),
        (.activeUsers, "ATU", []),
        (.buildRoom(users: ["hans", "obi"]), "SRB", ["hans", "obi"]),
        (.roomMessage(room: "2", message: "hi; there"), "SRM", ["2", "hi; there"]),
        (.readMessages(.broadcasts, since: ts), "RDM", ["b", ts]),
        (.readMessages(.rooms, since: ts), "RDM", ["s", ts]),
        (.logout, "OUT", []),
        (.upload(user: "hans", file: "my video.mp4"), "UPD", ["hans", "my video.mp4"]),
    ])
    func wordAndArguments(_ command: Command, _ word: String, _ arguments: [String]) {
        #expect(command.word == word)
        #expect(command.arguments == arguments)
        // What the client sends, the server decodes back to the same command.
        let frame = Wire.encode([command.word] + command.arguments)
        #expect(CommandParser.decode(Wire.fields(frame.dropLast())) == .command(command))
    }

    @Test func readScopeRawValues() {
        #expect(Command.ReadScope(rawValue: "b") == .broadcasts)
        #expect(Command.ReadScope(rawValue: "s") == .rooms)
        #expect(Command.ReadScope(rawValue: "B") == nil)
    }
}

@Suite struct CommandParserParseTests {
    @Test(arguments: [
        ("BCM Hello world", Command.broadcast(message: "Hello world")),
        ("BCM  two  spaces ", .broadcast(message: " two  spaces ")),
        ("BCM a; b; c", .broadcast(message: "a; b; c")),
        ("BCM h\u{E9}llo \u{1F30D} \"quoted\"", .broadcast(message: "h\u{E9}llo \u{1F30D} \"quoted\"")),
        ("BCM x", .broadcast(message: "x")),
        ("ATU", .activeUsers),
        ("SRB hans", .buildRoom(users: ["hans"])),
        ("SRB hans obi", .buildRoom(users: ["hans", "obi"])),
        ("SRB hans  obi ", .buildRoom(users: ["hans", "obi"])),
        ("SRB hans hans", .buildRoom(users: ["hans", "hans"])),
        ("SRM 1 hello there", .roomMessage(room: "1", message: "hello there")),
        ("SRM 12  spaced", .roomMessage(room: "12", message: " spaced")),
        ("SRM abc hi", .roomMessage(room: "abc", message: "hi")),
        ("RDM b 1 Jun 2022 21:30:04", .readMessages(.broadcasts, since: ts)),
        ("RDM s 1 Jun 2022 21:30:04", .readMessages(.rooms, since: ts)),
        ("RDM b 01 Jun 2022 21:30:04", .readMessages(.broadcasts, since: "01 Jun 2022 21:30:04")),
        ("OUT", .logout),
        ("UPD hans video.mp4", .upload(user: "hans", file: "video.mp4")),
        ("UDP hans video.mp4", .upload(user: "hans", file: "video.mp4")),
        ("UPD hans my video.mp4", .upload(user: "hans", file: "my video.mp4")),
    ])
    func validCommands(_ line: String, _ command: Command) {
        #expect(CommandParser.parse(line) == .command(command))
    }

    @Test(arguments: ["", " ", "     "])
    func emptyLines(_ line: String) {
        #expect(CommandParser.parse(line) == .empty)
    }

    @Test(arguments: [
        "bcm hi", "Bcm hi", "atu", "out", "upd hans f", "udp hans f", "XYZ", "HELLO 1 toom", "USER yoda",
        " BCM hi", "BCMhello", "ATUX", "B", "\u{FF22}CM hi", "BCM\u{A0}hi",
    ])
    func invalidCommandWords(_ line: String) {
        #expect(CommandParser.parse(line) == .error("Error. Invalid command!"))
    }

    @Test(arguments: [
        ("BCM", usageBCM), ("BCM ", usageBCM), ("BCM    ", usageBCM),
        ("ATU x", usageATU), ("ATU  ", usageATU),
        ("SRB", usageSRB), ("SRB ", usageSRB), ("SRB    ", usageSRB),
        ("SRM", usageSRM), ("SRM ", usageSRM), ("SRM 1", usageSRM), ("SRM 1 ", usageSRM), ("SRM 1    ", usageSRM),
        ("SRM  hello", usageSRM),
        ("RDM", usageRDM), ("RDM ", usageRDM), ("RDM b", usageRDM), ("RDM b ", usageRDM), ("RDM  b \(ts)", usageRDM),
        ("OUT now", usageOUT), ("OUT  ", usageOUT),
        ("UPD", usageUPD), ("UPD ", usageUPD), ("UPD hans", usageUPD), ("UPD hans ", usageUPD), ("UPD  f", usageUPD),
        ("UDP", usageUPD), ("UDP hans", usageUPD),
    ])
    func usageErrors(_ line: String, _ message: String) {
        #expect(CommandParser.parse(line) == .error(message))
    }

    @Test func atuAndOutTolerateOneTrailingSpace() {
        #expect(CommandParser.parse("ATU ") == .command(.activeUsers))
        #expect(CommandParser.parse("OUT ") == .command(.logout))
    }

    @Test(arguments: [
        ("RDM x \(ts)", badType("x")),
        ("RDM B \(ts)", badType("B")),
        ("RDM bs \(ts)", badType("bs")),
        ("RDM broadcast \(ts)", badType("broadcast")),
        ("RDM b yesterday", badTimestamp("yesterday")),
        ("RDM s 31 Feb 2022 25:61:61", badTimestamp("31 Feb 2022 25:61:61")),
        ("RDM s 29 Feb 2023 12:00:00", badTimestamp("29 Feb 2023 12:00:00")),
        ("RDM b \(ts) ", badTimestamp("\(ts) ")),
        ("RDM b  \(ts)", badTimestamp(" \(ts)")),
        ("RDM b 2022-06-01 21:30:04", badTimestamp("2022-06-01 21:30:04")),
    ])
    func rdmErrors(_ line: String, _ message: String) {
        #expect(CommandParser.parse(line) == .error(message))
    }

    @Test func rdmAcceptsALeapDay() {
        #expect(CommandParser.parse("RDM s 29 Feb 2024 12:00:00") == .command(.readMessages(.rooms, since: "29 Feb 2024 12:00:00")))
    }

    @Test(arguments: [
        "BCM a\tb", "BCM \u{1B}[31mred", "SRM 1 a\u{7F}", "ATU\t", "\t", "bcm\u{0}", "BCM line\u{2028}break",
        "BCM a\nb", "BCM a\r", "XYZ \u{85}", "SRB hans\u{7}", "UPD hans f\u{1}",
    ])
    func controlCharacters(_ line: String) {
        #expect(CommandParser.parse(line) == .error(controlError))
    }

    @Test func messageLengthIsCountedInUTF8Bytes() {
        let limit = String(repeating: "a", count: Text.maxMessageBytes)
        #expect(CommandParser.parse("BCM " + limit) == .command(.broadcast(message: limit)))
        #expect(CommandParser.parse("BCM " + limit + "a") == .error(tooLong))
        let accents = String(repeating: "\u{E9}", count: Text.maxMessageBytes / 2)
        #expect(CommandParser.parse("BCM " + accents) == .command(.broadcast(message: accents)))
        #expect(CommandParser.parse("BCM " + accents + "\u{E9}") == .error(tooLong))
        #expect(CommandParser.parse("SRM 1 " + limit) == .command(.roomMessage(room: "1", message: limit)))
        #expect(CommandParser.parse("SRM 1 " + limit + "x") == .error(tooLong))
    }

    /// `parse` finds separators with `firstIndex(of: " ")` on Characters; a space followed
    /// by a combining mark is one Character, so the space is not found.
    @Test
    func argumentStartingWithACombiningMark() {
        #expect(CommandParser.parse("BCM \u{301}bonjour") == .command(.broadcast(message: "\u{301}bonjour")))
        #expect(CommandParser.parse("SRM 1 \u{301}bonjour") == .command(.roomMessage(room: "1", message: "\u{301}bonjour")))
    }
}

@Suite struct CommandParserDecodeTests {
    private func decode(_ fields: [String]) -> CommandParseResult {
        CommandParser.decode(fields.map { Substring($0) })
    }

    @Test(arguments: [
        (["BCM", "hi there"], Command.broadcast(message: "hi there")),
        (["BCM", " padded "], .broadcast(message: " padded ")),
        (["ATU"], .activeUsers),
        (["SRB", "hans"], .buildRoom(users: ["hans"])),
        (["SRB", "hans", "obi", "hans"], .buildRoom(users: ["hans", "obi", "hans"])),
        (["SRB", "a b"], .buildRoom(users: ["a b"])),
        (["SRM", "1", "hi; there"], .roomMessage(room: "1", message: "hi; there")),
        (["SRM", "x", "hi"], .roomMessage(room: "x", message: "hi")),
        (["RDM", "b", ts], .readMessages(.broadcasts, since: ts)),
        (["RDM", "s", "01 Jun 2022 21:30:04"], .readMessages(.rooms, since: "01 Jun 2022 21:30:04")),
        (["OUT"], .logout),
        (["UPD", "hans", "a b.mp4"], .upload(user: "hans", file: "a b.mp4")),
        (["UDP", "hans", "f"], .upload(user: "hans", file: "f")),
    ])
    func validFrames(_ fields: [String], _ command: Command) {
        #expect(decode(fields) == .command(command))
    }

    @Test(arguments: [
        (["BCM"], usageBCM), (["BCM", "a", "b"], usageBCM), (["BCM", ""], usageBCM), (["BCM", "   "], usageBCM),
        (["ATU", ""], usageATU), (["ATU", "x"], usageATU),
        (["SRB"], usageSRB), (["SRB", ""], usageSRB), (["SRB", "hans", ""], usageSRB),
        (["SRM"], usageSRM), (["SRM", "1"], usageSRM), (["SRM", "1", "hi", "x"], usageSRM),
        (["SRM", "", "hi"], usageSRM), (["SRM", "1", ""], usageSRM), (["SRM", "1", "  "], usageSRM),
        (["RDM"], usageRDM), (["RDM", "b"], usageRDM), (["RDM", "b", ts, "x"], usageRDM),
        (["RDM", "", ts], usageRDM), (["RDM", "b", ""], usageRDM),
        (["OUT", ""], usageOUT), (["OUT", "now"], usageOUT),
        (["UPD"], usageUPD), (["UPD", "hans"], usageUPD), (["UPD", "hans", "f", "g"], usageUPD),
        (["UPD", "", "f"], usageUPD), (["UPD", "hans", ""], usageUPD), (["UDP"], usageUPD),
    ])
    func wrongArity(_ fields: [String], _ message: String) {
        #expect(decode(fields) == .error(message))
    }

    @Test(arguments: [
        [], [""], ["bcm", "hi"], ["HELLO", "1", "toom"], ["USER", "yoda"], ["PASS", "pw", "6000"], ["BCM hi"], [" BCM", "hi"],
    ] as [[String]])
    func invalidWords(_ fields: [String]) {
        #expect(decode(fields) == .error("Error. Invalid command!"))
    }

    @Test(arguments: [
        ("RDM", "x", badType("x")),
        ("RDM", "b ", badType("b ")),
        ("RDM", "S", badType("S")),
    ])
    func rdmBadType(_ word: String, _ type: String, _ message: String) {
        #expect(decode([word, type, ts]) == .error(message))
    }

    @Test(arguments: ["yesterday", "\(ts) ", "31 Feb 2022 25:61:61", "1 Jun 2022"])
    func rdmBadTimestamp(_ since: String) {
        #expect(decode(["RDM", "b", since]) == .error(badTimestamp(since)))
    }

    @Test(arguments: [
        ["BCM", "a\u{1B}b"], ["SRM", "1", "a\nb"], ["SRB", "hans\u{7}"], ["UPD", "hans", "f\r"],
        ["BCM", "x\u{2029}"], ["RDM", "b", "1 Jun 2022\u{0}21:30:04"],
    ] as [[String]])
    func controlCharacters(_ fields: [String]) {
        #expect(decode(fields) == .error(controlError))
    }

    @Test func messageTooLong() {
        let limit = String(repeating: "m", count: Text.maxMessageBytes)
        #expect(decode(["BCM", limit]) == .command(.broadcast(message: limit)))
        #expect(decode(["BCM", limit + "m"]) == .error(tooLong))
        #expect(decode(["SRM", "1", limit + "m"]) == .error(tooLong))
    }

    /// Whatever the prompt accepts, the server accepts from the wire, unchanged.
    @Test(arguments: [
        "BCM Hello world", "BCM a; b", "ATU", "SRB hans obi", "SRM 3 hi there", "RDM b \(ts)", "RDM s 01 Jun 2022 21:30:04",
        "OUT", "UPD hans my video.mp4", "UDP hans f",
    ])
    func parseThenDecodeAgree(_ line: String) throws {
        guard case .command(let command) = CommandParser.parse(line) else {
            Issue.record("'\(line)' did not parse")
            return
        }
        let wire = Wire.encode([command.word] + command.arguments)
        #expect(decode(Wire.fields(wire.dropLast()).map(String.init)) == .command(command))
    }
}
