import Testing
@testable import ToomCore

@Suite struct WireTests {
    @Test func constants() {
        #expect(Wire.protocolVersion == 1)
        #expect(Wire.maxFrameBytes == 16_384)
    }

    @Test(arguments: [
        (["BCM", "hello world"], "BCM\thello world\n"),
        (["OUT"], "OUT\n"),
        (["a", ""], "a\t\n"),
        (["", ""], "\t\n"),
        ([], "\n"),
        (["SRM", "1", "a; b"], "SRM\t1\ta; b\n"),
        (["BCM", "h\u{E9}llo \u{1F30D}"], "BCM\th\u{E9}llo \u{1F30D}\n"),
    ] as [([String], String)])
    func encode(_ fields: [String], _ frame: String) {
        #expect(Wire.encode(fields) == frame)
    }

    @Test(arguments: [
        ("BCM\thello world", ["BCM", "hello world"]),
        ("OUT", ["OUT"]),
        ("OUT\r", ["OUT"]),
        ("a\tb\r", ["a", "b"]),
        ("a\t\tb", ["a", "", "b"]),
        ("a\t", ["a", ""]),
        ("\ta", ["", "a"]),
        ("", [""]),
        ("\r", [""]),
        ("a\rb", ["a\rb"]),
        ("a b\tc d", ["a b", "c d"]),
    ] as [(String, [String])])
    func fields(_ line: String, _ expected: [String]) {
        #expect(Wire.fields(Substring(line)).map(String.init) == expected)
    }

    @Test(arguments: [
        ["BCM", "hello world"], ["OUT"], ["SRB", "hans", "obi"], ["SRM", "1", ""], ["PASS", "p w !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", "6000"],
        ["BCM", "\u{301}leading combining mark"], ["ITEM", "S", "1", "2", "1 Jun 2022 21:30:04", "yoda", "a; b"],
    ] as [[String]])
    func encodeThenFieldsRoundTrip(_ fields: [String]) {
        let frame = Wire.encode(fields)
        #expect(frame.hasSuffix("\n"))
        #expect(Wire.fields(frame.dropLast()).map(String.init) == fields)
    }

    @Test func loginFrames() {
        #expect(LoginFrame.hello() == ["HELLO", "1", "toom"])
        #expect(LoginFrame.hello(agent: "pytoom/0.1") == ["HELLO", "1", "pytoom/0.1"])
        #expect(LoginFrame.user("yoda") == ["USER", "yoda"])
        #expect(LoginFrame.password("do or do not", udpPort: 6000) == ["PASS", "do or do not", "6000"])
        #expect(Wire.encode(LoginFrame.hello()) == "HELLO\t1\ttoom\n")
        #expect(Wire.encode(LoginFrame.password("p w", udpPort: 65535)) == "PASS\tp w\t65535\n")
    }

    @Test func eventKinds() {
        #expect(EventKind.shutdown == "SHUTDOWN")
        #expect(EventKind.kicked == "KICKED")
    }
}

@Suite struct ErrorCodeTests {
    @Test(arguments: [
        (ErrorCode.unsupportedVersion, "unsupported_version", true),
        (.badFrame, "bad_frame", true),
        (.invalidUsername, "invalid_username", false),
        (.invalidPassword, "invalid_password", false),
        (.accountBlocked, "account_blocked", true),
        (.blocked, "blocked", true),
        (.alreadyLoggedIn, "already_logged_in", true),
        (.notLoggedIn, "not_logged_in", false),
        (.invalidCommand, "invalid_command", false),
        (.usage, "usage", false),
        (.invalidArgument, "invalid_argument", false),
        (.noSuchUser, "no_such_user", false),
        (.offline, "offline", false),
        (.selfReference, "self", false),
        (.roomExists, "room_exists", false),
        (.noSuchRoom, "no_such_room", false),
        (.notMember, "not_member", false),
        (.storage, "storage", false),
        (.limit, "limit", true),
        (.loginTimeout, "login_timeout", true),
        (.addressBlocked, "address_blocked", true),
        (.tlsRequired, "tls_required", true),
        (.unknown, "unknown", false),
    ])
    func rawValueAndSessionEnd(_ code: ErrorCode, _ raw: String, _ endsSession: Bool) {
        #expect(code.rawValue == raw)
        #expect(ErrorCode(rawValue: raw) == code)
        #expect(code.endsSession == endsSession)
    }

    @Test func everyCodeIsCovered() {
        #expect(ErrorCode.allCases.count == 23)
        #expect(Set(ErrorCode.allCases.map(\.rawValue)).count == 23)
    }
}

@Suite struct ServerFrameTests {
    private let ts = "1 Jun 2022 21:30:04"

    @Test func decodesEveryKind() {
        #expect(ServerFrame.decode("HELLO\t1") == .hello(version: 1))
        #expect(ServerFrame.decode("HELLO\t2\tlive") == .hello(version: 2, capabilities: ["live"]))
        #expect(ServerFrame.decode("OK\tUSER") == .ok(kind: "USER", fields: []))
        #expect(ServerFrame.decode("OK\tLOGIN\tyoda") == .ok(kind: "LOGIN", fields: ["yoda"]))
        #expect(ServerFrame.decode("OK\tBCM\t1\t\(ts)") == .ok(kind: "BCM", fields: ["1", ts]))
        #expect(ServerFrame.decode("OK\tATU\t0\r") == .ok(kind: "ATU", fields: ["0"]))
        #expect(ServerFrame.decode("ITEM\tUSER\thans\t127.0.0.1\t6000\t\(ts)")
            == .item(kind: "USER", fields: ["hans", "127.0.0.1", "6000", ts]))
        #expect(ServerFrame.decode("ITEM\tB\t1\t\(ts)\tyoda\t") == .item(kind: "B", fields: ["1", ts, "yoda", ""]))
        #expect(ServerFrame.decode("ERR\tinvalid_password\tInvalid Password. Please try again")
            == .error(code: .invalidPassword, messages: ["Invalid Password. Please try again"]))
        #expect(ServerFrame.decode("ERR\toffline\thans is offline\tobi is offline")
            == .error(code: .offline, messages: ["hans is offline", "obi is offline"]))
        #expect(ServerFrame.decode("ERR\tusage") == .error(code: .usage, messages: []))
        #expect(ServerFrame.decode("EVENT\tSHUTDOWN\tThe server is shutting down. Goodbye!")
            == .event(kind: "SHUTDOWN", fields: ["The server is shutting down. Goodbye!"]))
        #expect(ServerFrame.decode("EVENT\tKICKED") == .event(kind: "KICKED", fields: []))
    }

    @Test func unknownErrorCodesMapToUnknown() {
        #expect(ServerFrame.decode("ERR\tsomething_new\tmessage") == .error(code: .unknown, messages: ["message"]))
        #expect(ServerFrame.decode("ERR\tOFFLINE\tx") == .error(code: .unknown, messages: ["x"]))
    }

    @Test(arguments: [
        "", "\r", "HELLO", "HELLO\tone", "HELLO\t", "HELLO 1", "OK", "OK\r", "ITEM", "EVENT", "ERR",
        "ok\tBCM\t1", "Ok\tBCM", "BYE\tx", "\tOK\tBCM", " OK\tBCM", "OK BCM 1", "OUT", "BCM\thello",
    ])
    func malformedFramesDecodeToNil(_ line: String) {
        #expect(ServerFrame.decode(Substring(line)) == nil)
    }

    @Test(arguments: [
        (ServerFrame.hello(version: 1), "HELLO\t1\n"),
        (.ok(kind: "USER", fields: []), "OK\tUSER\n"),
        (.ok(kind: "BCM", fields: ["1", "1 Jun 2022 21:30:04"]), "OK\tBCM\t1\t1 Jun 2022 21:30:04\n"),
        (.ok(kind: "SRB", fields: ["1", "yoda", "hans"]), "OK\tSRB\t1\tyoda\thans\n"),
        (.item(kind: "S", fields: ["1", "2", "1 Jun 2022 21:30:04", "yoda", "a; b"]), "ITEM\tS\t1\t2\t1 Jun 2022 21:30:04\tyoda\ta; b\n"),
        (.error(code: .badFrame, messages: ["a", "b"]), "ERR\tbad_frame\ta\tb\n"),
        (.error(code: .selfReference, messages: ["You cannot build a separate room with yourself"]),
         "ERR\tself\tYou cannot build a separate room with yourself\n"),
        (.error(code: .unknown, messages: []), "ERR\tunknown\n"),
        (.event(kind: "KICKED", fields: ["You have been disconnected by the server operator"]),
         "EVENT\tKICKED\tYou have been disconnected by the server operator\n"),
    ])
    func encodeAndDecodeRoundTrip(_ frame: ServerFrame, _ text: String) {
        #expect(frame.encoded == text)
        #expect(frame.fields.joined(separator: "\t") + "\n" == text)
        #expect(ServerFrame.decode(text.dropLast()) == frame)
    }

    @Test func everyErrorCodeRoundTrips() {
        for code in ErrorCode.allCases {
            let frame = ServerFrame.error(code: code, messages: ["m"])
            #expect(ServerFrame.decode(frame.encoded.dropLast()) == frame, "\(code)")
        }
    }
}
