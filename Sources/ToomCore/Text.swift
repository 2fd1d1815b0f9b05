/// Rules for text that ends up in a log line or on the wire.
public enum Text {
    /// Largest message (BCM, SRM) in UTF-8 bytes.
    public static let maxMessageBytes = 4096

    /// True for C0/C1 controls, DEL and the Unicode line and paragraph separators:
    /// any of them could break a log line or a terminal.
    public static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        return v < 0x20 || (v >= 0x7F && v <= 0x9F) || v == 0x2028 || v == 0x2029
    }

    public static func containsControlCharacter<S: StringProtocol>(_ text: S) -> Bool {
        text.unicodeScalars.contains(where: isControl)
    }

    /// A username as it may appear in credentials, log lines, room lists and file names.
    public static func isValidUsername<S: StringProtocol>(_ name: S) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 64, name != ".", name != ".." else { return false }
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
