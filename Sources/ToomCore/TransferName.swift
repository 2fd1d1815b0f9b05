/// The rule for names of transferred files: a plain base name, so that neither side can
/// be made to read or write outside its working directory. Checked by the sender before
/// it asks, by whoever relays the offer, and by the receiver again.
public enum TransferName {
    /// Longest name in UTF-8 bytes; the receiver's file name adds a prefix of its own.
    public static let maxBytes = 200

    /// Nil when `name` is acceptable, otherwise a one-line explanation.
    public static func problem(_ name: String) -> String? {
        if name.isEmpty { return "Error. The file name is empty" }
        if name.utf8.count > maxBytes { return "Error. The file name is longer than \(maxBytes) bytes" }
        if name.contains("/") || name.contains("..") || name == "."
            || name.unicodeScalars.contains(where: isControl) {
            return "Error. \(printable(name)) is not a plain file name: '/', '..' and control characters are not allowed"
        }
        return nil
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        return v < 0x20 || (v >= 0x7F && v <= 0x9F) || v == 0x2028 || v == 0x2029
    }

    /// The name with control characters shown as `?`, safe to print.
    static func printable(_ name: String) -> String {
        String(String.UnicodeScalarView(name.unicodeScalars.map { isControl($0) ? "?" : $0 }))
    }
}
