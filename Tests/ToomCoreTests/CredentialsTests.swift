import Testing
@testable import ToomCore

@Suite struct CredentialsTests {
    @Test func plainFile() {
        let c = Credentials(parsing: "yoda wise@!jedi\nhans falcon*solo\n")
        #expect(c.usernames == ["hans", "yoda"])
        #expect(c.password(for: "yoda") == "wise@!jedi")
        #expect(c.password(for: "hans") == "falcon*solo")
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
        #expect(c.password(for: "hans") == "two")
        #expect(c.problems.isEmpty)
    }

    @Test func splitsAtTheFirstSpaceOnly() {
        let c = Credentials(parsing: "yoda do or do not  there is no try \n")
        #expect(c.password(for: "yoda") == "do or do not  there is no try ")
        #expect(c.problems.isEmpty)
    }

    @Test func passwordOfLeadingSpaces() {
        let c = Credentials(parsing: "yoda   x\n")
        #expect(c.password(for: "yoda") == "  x")
    }

    @Test func passwordWithEveryPrintableASCIICharacter() {
        let printable = String(String.UnicodeScalarView((0x20...0x7E).map { Unicode.Scalar(UInt8($0)) }))
        #expect(printable.count == 95)
        let c = Credentials(parsing: "yoda \(printable)\n")
        #expect(c.password(for: "yoda") == printable)
        #expect(c.problems.isEmpty)
    }

    @Test func unicodePassword() {
        let c = Credentials(parsing: "yoda \u{43F}\u{430}\u{440}\u{43E}\u{43B}\u{44C} \u{FC}n\u{EF}c\u{F6}d\u{E9} \u{1F511}\n")
        #expect(c.password(for: "yoda") == "\u{43F}\u{430}\u{440}\u{43E}\u{43B}\u{44C} \u{FC}n\u{EF}c\u{F6}d\u{E9} \u{1F511}")
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
        #expect(c.password(for: "yoda") == "first")
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
        #expect(c.password(for: "yoda") == "one")
        #expect(c.problems.map(\.line) == [2, 3])
    }

    @Test func usernamesAreCaseSensitive() {
        let c = Credentials(parsing: "yoda one\nYoda two\n")
        #expect(c.password(for: "yoda") == "one")
        #expect(c.password(for: "Yoda") == "two")
        #expect(c.problems.isEmpty)
    }

    @Test func loneCarriageReturnAtTheEndOfTheFileIsDropped() {
        let c = Credentials(parsing: "yoda one\nhans two\r")
        #expect(c.password(for: "hans") == "two")
        #expect(c.problems.isEmpty)
    }

    /// Credentials.swift splits with `text.split(separator: "\n")`, which compares Characters;
    /// "\r\n" is one Character (one grapheme cluster), so a CRLF file is never split and the
    /// whole file becomes line 1.
    @Test
    func crlfLineEndings() {
        let c = Credentials(parsing: "yoda one\r\nhans two words\r\n\r\nobi three\r\n")
        #expect(c.usernames == ["hans", "obi", "yoda"])
        #expect(c.password(for: "yoda") == "one")
        #expect(c.password(for: "hans") == "two words")
        #expect(c.password(for: "obi") == "three")
        #expect(c.problems.isEmpty)
    }

    /// The separating space and a combining mark after it form one Character, so
    /// `line.firstIndex(of: " ")` does not find the space.
    @Test
    func passwordStartingWithACombiningMark() {
        let c = Credentials(parsing: "yoda \u{301}accent\n")
        #expect(c.password(for: "yoda") == "\u{301}accent")
        #expect(c.problems.isEmpty)
    }
}
