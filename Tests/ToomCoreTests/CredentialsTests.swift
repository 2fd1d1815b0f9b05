import Testing
@testable import ToomCore

@Suite struct CredentialsTests {
    @Test func plainFile() {
        let c = Credentials(parsing: "yoda wise@!jedi\nhans falcon*solo\n")
        #expect(c.usernames == ["hans", "yoda"])
        #expect(c.password(for: "yoda") == .plain("wise@!jedi"))
        #expect(c.password(for: "hans") == .plain("falcon*solo"))
        #expect(c.contains("yoda"))
        #expect(!c.contains("obi"))
        #expect(c.password(for: "obi") == nil)
        #expect(c.problems.isEmpty)
    }

    @Test func emptyTextAndDefault() {
        let parsed = Credentials(parsing: "")
        #expect(parsed.usernames.isEmpty)
        #expect(parsed.problems.isEmpty)
        #expect(Credentials().usernames.isEmpty)
        #expect(Credentials().problems.isEmpty)
    }

    @Test func lastLineWithoutNewline() {
        let c = Credentials(parsing: "yoda one\nhans two")
        #expect(c.password(for: "hans") == .plain("two"))
        #expect(c.problems.isEmpty)
    }

    @Test func splitsAtTheFirstSpaceOnly() {
        let c = Credentials(parsing: "yoda do or do not  there is no try \n")
        #expect(c.password(for: "yoda") == .plain("do or do not  there is no try "))
        #expect(c.problems.isEmpty)
    }

    @Test func passwordOfLeadingSpaces() {
        let c = Credentials(parsing: "yoda   x\n")
        #expect(c.password(for: "yoda") == .plain("  x"))
    }

    @Test func passwordWithEveryPrintableASCIICharacter() {
        let printable = String(String.UnicodeScalarView((0x20...0x7E).map { Unicode.Scalar(UInt8($0)) }))
        #expect(printable.count == 95)
        let c = Credentials(parsing: "yoda \(printable)\n")
        #expect(c.password(for: "yoda") == .plain(printable))
        #expect(c.problems.isEmpty)
    }

    @Test func unicodePassword() {
        let c = Credentials(parsing: "yoda \u{43F}\u{430}\u{440}\u{43E}\u{43B}\u{44C} \u{FC}n\u{EF}c\u{F6}d\u{E9} \u{1F511}\n")
        #expect(c.password(for: "yoda") == .plain("\u{43F}\u{430}\u{440}\u{43E}\u{43B}\u{44C} \u{FC}n\u{EF}c\u{F6}d\u{E9} \u{1F511}"))
    }

    @Test func blankLinesAreIgnoredAndStillCounted() {
        let c = Credentials(parsing: "\n\nyoda one\n   \n\t\n \t \nhans two\n\nnospace\n")
        #expect(c.usernames == ["hans", "yoda"])
        #expect(c.problems.count == 1)
        #expect(c.problems.first?.line == 9)
    }

    @Test func invalidLinesAreReportedWithTheirLineNumbers() throws {
        let text = [
            "yoda first",            // 1
            "nospace",               // 2
            "",                      // 3
            "bad/name pw",           // 4
            "carol ",                // 5
            "yoda second",           // 6
            "dave pw\u{1B}[0m",      // 7
            " lead pw",              // 8
            "a;b pw",                // 9
            "eve\tpw",               // 10
            "frank p\tw",            // 11
            "hans ok",               // 12
        ].joined(separator: "\n")
        let c = Credentials(parsing: text)
        #expect(c.usernames == ["hans", "yoda"])
        #expect(c.password(for: "yoda") == .plain("first"))
        #expect(c.problems.map(\.line) == [2, 4, 5, 6, 7, 8, 9, 10, 11])
        let reasons = c.problems.map(\.reason)
        try #require(reasons.count == 9)
        #expect(reasons[0] == "no space between username and password")
        #expect(reasons[1].hasPrefix("username 'bad/name' is not allowed"))
        #expect(reasons[2] == "password for 'carol' is empty or has a control character")
        #expect(reasons[3] == "duplicate username 'yoda'; the first entry is used")
        #expect(reasons[4] == "password for 'dave' is empty or has a control character")
        #expect(reasons[5].hasPrefix("username '' is not allowed"))
        #expect(reasons[6].hasPrefix("username 'a;b' is not allowed"))
        #expect(reasons[7] == "no space between username and password")
        #expect(reasons[8] == "password for 'frank' is empty or has a control character")
    }

    @Test func duplicateKeepsTheFirstEntry() {
        let c = Credentials(parsing: "yoda one\nyoda two\nyoda three\n")
        #expect(c.password(for: "yoda") == .plain("one"))
        #expect(c.problems.map(\.line) == [2, 3])
    }

    @Test func usernamesAreCaseSensitive() {
        let c = Credentials(parsing: "yoda one\nYoda two\n")
        #expect(c.password(for: "yoda") == .plain("one"))
        #expect(c.password(for: "Yoda") == .plain("two"))
        #expect(c.problems.isEmpty)
    }

    @Test func loneCarriageReturnAtTheEndOfTheFileIsDropped() {
        let c = Credentials(parsing: "yoda one\nhans two\r")
        #expect(c.password(for: "hans") == .plain("two"))
        #expect(c.problems.isEmpty)
    }

    /// Credentials.swift splits with `text.split(separator: "\n")`, which compares Characters;
    /// "\r\n" is one Character (one grapheme cluster), so a CRLF file is never split and the
    /// whole file becomes line 1.
    @Test
    func crlfLineEndings() {
        let c = Credentials(parsing: "yoda one\r\nhans two words\r\n\r\nobi three\r\n")
        #expect(c.usernames == ["hans", "obi", "yoda"])
        #expect(c.password(for: "yoda") == .plain("one"))
        #expect(c.password(for: "hans") == .plain("two words"))
        #expect(c.password(for: "obi") == .plain("three"))
        #expect(c.problems.isEmpty)
    }

    /// The separating space and a combining mark after it form one Character, so
    /// `line.firstIndex(of: " ")` does not find the space.
    @Test
    func passwordStartingWithACombiningMark() {
        let c = Credentials(parsing: "yoda \u{301}accent\n")
        #expect(c.password(for: "yoda") == .plain("\u{301}accent"))
        #expect(c.problems.isEmpty)
    }

    @Test func hashedAndPlainLinesSideBySide() throws {
        let hash = "$scrypt$ln=15,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"
        let c = Credentials(parsing: "hans \(hash)\nyoda wise@!man\nleia $blasterpistol$\n")
        #expect(c.problems.isEmpty)
        #expect(c.password(for: "yoda") == .plain("wise@!man"))
        #expect(c.password(for: "leia") == .plain("$blasterpistol$"))
        guard case .scrypt(let parsed)? = c.password(for: "hans") else { Issue.record("not a hash"); return }
        #expect(parsed.log2Rounds == 15 && parsed.blockSize == 8 && parsed.parallelism == 1)
        #expect(parsed.salt == Array("saltsaltsaltsalt".utf8))
        #expect(parsed.hash == Array("0123456789abcdef0123456789abcdef".utf8))
        #expect(parsed.text == hash)
    }

    @Test func brokenHashesAreReportedAndTheRestLoad() {
        let lines = [
            "a $scrypt$ln=15,r=8,p=1$c2FsdHNhbHQ",                      // no hash field
            "b $scrypt$ln=99,r=8,p=1$c2FsdHNhbHQ$MDEyMzQ1Njc4OWFiY2RlZg", // N too large
            "c $scrypt$ln=20,r=32,p=16$c2FsdHNhbHQ$MDEyMzQ1Njc4OWFiY2RlZg", // too much memory
            "d $scrypt$ln=15,r=8,p=1$c2FsdA$MDEyMzQ1Njc4OWFiY2RlZg",      // salt of 4 bytes
            "e $scrypt$ln=15,r=8,p=1$c2FsdHNhbHQ=$MDEyMzQ1Njc4OWFiY2RlZg", // padding
            "f $scrypt$ln=15,r=8$c2FsdHNhbHQ$MDEyMzQ1Njc4OWFiY2RlZg",     // no p
            "g $scrypt$ln=15,r=8,p=1,p=1$c2FsdHNhbHQ$MDEyMzQ1Njc4OWFiY2RlZg",
            "h $scrypt$ln=-1,r=8,p=1$c2FsdHNhbHQ$MDEyMzQ1Njc4OWFiY2RlZg",
            "ok right",
        ]
        let c = Credentials(parsing: lines.joined(separator: "\n"))
        #expect(c.usernames == ["ok"])
        #expect(c.problems.map(\.line) == Array(1...8))
        #expect(c.problems.allSatisfy { $0.reason.contains("password hash for") })
    }

    @Test func base64RoundTripsAndRefusesNonCanonicalText() {
        for length in 0..<40 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            #expect(Base64.decode(Base64.encode(bytes)) == bytes)
        }
        #expect(Base64.encode(Array("any carnal pleas".utf8)) == "YW55IGNhcm5hbCBwbGVhcw")
        #expect(Base64.decode("YW55IGNhcm5hbCBwbGVhcw==") == nil)
        #expect(Base64.decode("YW55IGNhcm5hbCBwbGVhcx") == nil)  // low bits set
        #expect(Base64.decode("Y") == nil)
        #expect(Base64.decode("YW-5") == nil)
    }

    @Test func settingAPasswordRewritesOneLineOnly() {
        let file = Array("hans falcon\r\n# not an account\nyoda wise\n\u{FF}bad\nleia x".utf8) + [0xFF, 0x0A]
        let (edited, created) = CredentialsEdit.setting("$scrypt$new", for: "yoda", in: file)
        #expect(!created)
        #expect(edited == Array("hans falcon\r\n# not an account\nyoda $scrypt$new\n\u{FF}bad\nleia x".utf8) + [0xFF, 0x0A])
        let (appended, isNew) = CredentialsEdit.setting("p", for: "obi", in: Array("hans falcon".utf8))
        #expect(isNew)
        #expect(appended == Array("hans falcon\nobi p\n".utf8))
        #expect(CredentialsEdit.setting("p", for: "obi", in: []).file == Array("obi p\n".utf8))
    }

    @Test func hashingAllReplacesPlaintextOnly() {
        let file = Array("hans falcon\nyoda $scrypt$ln=1,r=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA\nbad\nleia two words\n".utf8)
        let (edited, count) = CredentialsEdit.hashingAll(in: file) { "H(\($0))" }
        #expect(count == 2)
        #expect(String(decoding: edited, as: UTF8.self)
                == "hans H(falcon)\nyoda $scrypt$ln=1,r=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA\nbad\nleia H(two words)\n")
    }

    @Test func firstBytesTellTLSFromPlaintext() {
        #expect(ConnectionStart.server([UInt8](), requireTLS: false) == .wait)
        #expect(ConnectionStart.server([0x16, 0x03, 0x01], requireTLS: false) == .tls)
        #expect(ConnectionStart.server(Array("HELLO\t1".utf8), requireTLS: false) == .plaintext)
        #expect(ConnectionStart.server(Array("HELLO\t1".utf8), requireTLS: true) == .refuse)
        #expect(ConnectionStart.client([0x16, 0x03, 0x03]) == .tls)
        #expect(ConnectionStart.client(Array("ERR\tlimit\tfull".utf8)) == .wait)
        #expect(ConnectionStart.client(Array("ERR\tlimit\tfull\n".utf8)) == .plaintext(.error(code: .limit, messages: ["full"])))
        #expect(ConnectionStart.client(Array("HELLO\t1\n".utf8)) == .plaintext(nil))
    }
}
