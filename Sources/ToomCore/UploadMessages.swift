/// What UPD (spec §6) puts on the wire and on the screen.
extension EventKind {
    /// `EVENT OFFER <presenter> <file> <token> <key>`: the server tells the audience to
    /// expect a transfer; only a sender holding the token and the key can start it.
    public static let offer = "OFFER"
}

extension Messages {
    public static func uploaded(_ file: String) -> String { "\(file) has been uploaded" }
    /// A re-issued UPD picks up where an earlier attempt stopped (spec §10).
    public static func resuming(_ file: String, to audience: String, percent: Int) -> String {
        "Resuming \(file) to \(audience) at \(percent)%"
    }
    public static func received(_ file: String, from presenter: String) -> String { "Received \(file) from \(presenter)" }
    public static func uploadFailed(_ file: String, to audience: String, reason: String) -> String {
        "Upload of \(file) to \(audience) failed: \(reason)"
    }
    public static func receiveFailed(_ file: String, from presenter: String, reason: String) -> String {
        "Receiving \(file) from \(presenter) failed: \(reason)"
    }
    public static func receiveRefused(_ file: String, from presenter: String, reason: String) -> String {
        "Refused \(file) from \(presenter): \(reason)"
    }
    /// The digits both ends of a transfer see when nobody swapped a key (spec §12).
    public static func keyCheck(_ file: String, to audience: String, code: String) -> String {
        "Key check for \(file) to \(audience): \(code) (\(audience) sees the same digits unless a key was swapped)"
    }
    public static func keyCheck(_ file: String, from presenter: String, code: String) -> String {
        "Key check for \(file) from \(presenter): \(code) (\(presenter) sees the same digits unless a key was swapped)"
    }
    public static let uploadToYourself = "You cannot upload a file to yourself"
    /// The name the audience saves a file under (spec §6).
    public static func savedName(_ file: String, from presenter: String) -> String { "\(presenter)_\(file)" }
}
