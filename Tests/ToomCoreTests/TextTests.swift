import Testing
@testable import ToomCore

@Suite struct TextTests {
    @Test(arguments: [0x00, 0x07, 0x09, 0x0A, 0x0D, 0x1B, 0x1F, 0x7F, 0x80, 0x85, 0x9B, 0x9F, 0x2028, 0x2029] as [UInt32])
    func controlScalars(_ value: UInt32) throws {
        let scalar = try #require(Unicode.Scalar(value))
        #expect(Text.isControl(scalar))
        #expect(Text.containsControlCharacter("a" + String(Character(scalar)) + "b"))
    }

    @Test(arguments: [0x20, 0x21, 0x41, 0x7E, 0xA0, 0xE9, 0x301, 0x2027, 0x202A, 0x4E2D, 0x1F600] as [UInt32])
    func printableScalars(_ value: UInt32) throws {
        let scalar = try #require(Unicode.Scalar(value))
        #expect(!Text.isControl(scalar))
        #expect(!Text.containsControlCharacter("a" + String(Character(scalar)) + "b"))
    }

    @Test func containsControlCharacterOnWholeStrings() {
        #expect(!Text.containsControlCharacter(""))
        #expect(!Text.containsControlCharacter("Hello, world; caf\u{E9} \u{1F600}"))
        #expect(Text.containsControlCharacter("a\tb"))
        #expect(Text.containsControlCharacter("line\r\n"))
        #expect(Text.containsControlCharacter("\u{1B}[31mred"))
        #expect(Text.containsControlCharacter("x\u{2028}"))
        #expect(Text.containsControlCharacter(Substring("ok\u{0}")))
    }

    @Test func maxMessageBytes() {
        #expect(Text.maxMessageBytes == 4096)
    }

    @Test(arguments: [
        "alice", "Yoda", "hans-peter", "o'brien", "a.b", "...", ".hidden", "user_1@example",
        "caf\u{E9}", "\u{7528}\u{6237}", String(repeating: "a", count: 64), String(repeating: "\u{E9}", count: 32),
        "a|b", "a:b", "a\"b",
    ])
    func validUsernames(_ name: String) {
        #expect(Text.isValidUsername(name))
    }

    @Test(arguments: [
        "", ".", "..", "a b", " alice", "alice ", "a/b", "/", "../etc", "a\\b", "a;b", "a,b",
        "a\tb", "a\nb", "a\rb", "a\u{0}b", "a\u{1B}", "a\u{7F}", "a\u{85}b", "a\u{A0}b", "a\u{2003}b",
        "a\u{3000}b", "a\u{2028}b", "a\u{2029}b",
        String(repeating: "a", count: 65), String(repeating: "\u{E9}", count: 33),
    ])
    func invalidUsernames(_ name: String) {
        #expect(!Text.isValidUsername(name))
    }

    @Test func usernameAcceptsSubstrings() {
        let line = "yoda; hans"
        #expect(Text.isValidUsername(line.prefix(4)))
        #expect(!Text.isValidUsername(line.prefix(5)))
    }
}
