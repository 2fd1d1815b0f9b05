import Crypto
import ToomCore

/// A certificate's identity as users compare it: `SHA256:` and the unpadded base64 of the
/// SHA-256 of its DER bytes, the form ssh prints.
public enum Fingerprint {
    public static let prefix = "SHA256:"

    public static func of(der: [UInt8]) -> String {
        prefix + Base64.encode(Array(SHA256.hash(data: der)))
    }

    /// Whether `text` has the form of a fingerprint (for `--fingerprint`).
    public static func isValid(_ text: String) -> Bool {
        guard text.hasPrefix(prefix), let digest = Base64.decode(text.dropFirst(prefix.count)) else { return false }
        return digest.count == SHA256.byteCount
    }
}
