/// Rules for text that ends up in a log line or on the wire.
public enum Text {
    /// Largest message (BCM, SRM) in UTF-8 bytes.
    public static let maxMessageBytes = 4096
    public static let maxUsernameBytes = 64
    public static let maxFileNameBytes = 255

    /// True for C0/C1 controls, DEL and the Unicode line and paragraph separators:
    /// any of them could break a log line or a terminal.
    public static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        return v < 0x20 || (v >= 0x7F && v <= 0x9F) || v == 0x2028 || v == 0x2029
    }

    /// Splits text into lines at "\n" and drops a trailing "\r" from each. Works on
    /// scalars: "\r\n" is a single Character and would not match a Character split.
    public static func lines(_ text: String) -> [Substring] {
        text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map { scalars in
            var line = Substring(scalars)
            if line.unicodeScalars.last == "\r" { line = Substring(line.unicodeScalars.dropLast()) }
            return line
        }
    }

    /// The index of the first space (by scalar, so a space before a combining mark counts).
    public static func firstSpace(in text: Substring) -> Substring.Index? {
        text.unicodeScalars.firstIndex(of: " ")
    }

    /// Splits at spaces (by scalar), dropping empty pieces.
    public static func words(_ text: Substring) -> [Substring] {
        text.unicodeScalars.split(separator: " ").map { Substring($0) }
    }

    public static func containsControlCharacter<S: StringProtocol>(_ text: S) -> Bool {
        text.utf8.withContiguousStorageIfAvailable { containsControlCharacter(utf8: $0) }
            ?? text.unicodeScalars.contains(where: isControl)
    }

    /// `isControl` on valid UTF-8, by bytes: C0 and DEL are single bytes, C1 is C2 80…C2 9F,
    /// U+2028 and U+2029 are E2 80 A8 and E2 80 A9.
    static func containsControlCharacter(utf8 bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var i = 0
        let n = bytes.count
        while i < n {
            let b = bytes[i]
            if b < 0x20 || b == 0x7F { return true }
            if b == 0xC2, i + 1 < n, bytes[i + 1] <= 0x9F { return true }
            if b == 0xE2, i + 2 < n, bytes[i + 1] == 0x80, bytes[i + 2] == 0xA8 || bytes[i + 2] == 0xA9 { return true }
            i += 1
        }
        return false
    }

    /// A username as it may appear in credentials, log lines, room lists and file names.
    public static func isValidUsername<S: StringProtocol>(_ name: S) -> Bool {
        guard !name.isEmpty, name.utf8.count <= maxUsernameBytes, name != ".", name != ".." else { return false }
        // Most names are plain ASCII: check their bytes without Unicode properties.
        if name.utf8.allSatisfy({ $0 < 0x80 }) {
            return name.utf8.allSatisfy { b in
                b > 0x20 && b != 0x7F && b != UInt8(ascii: "/") && b != UInt8(ascii: "\\")
                    && b != UInt8(ascii: ";") && b != UInt8(ascii: ",")
            }
        }
        for scalar in name.unicodeScalars {
            if isControl(scalar) || scalar.properties.isWhitespace { return false }
            switch scalar {
            case "/", "\\", ";", ",": return false
            default: continue
            }
        }
        return true
    }
}
