import NIOCore
import ToomCore
import ToomSecurity

/// A password check done off the state lock. A plaintext line is compared at once; a hash
/// sends the frame out to be checked (`Pending`) and back in with the result, which counts
/// only if the account's stored password is still the one checked.
struct PasswordVerification {
    let stored: StoredPassword
    let matches: Bool

    struct Pending {
        let candidate: String
        let stored: StoredPassword
    }

    enum Check {
        case known(Bool)
        case needed(Pending)
    }

    static func check(_ candidate: String, against stored: StoredPassword?, _ verified: PasswordVerification?) -> Check {
        guard let stored else { return .known(false) }
        if let verified, verified.stored == stored { return .known(verified.matches) }
        if case .plain = stored { return .known(PasswordCheck.verify(candidate, against: stored)) }
        return .needed(Pending(candidate: candidate, stored: stored))
    }
}

extension PasswordVerifier {
    /// Checks a pending password on the verifier's threads; completes on `eventLoop`.
    func verify(_ pending: PasswordVerification.Pending, on eventLoop: EventLoop) -> EventLoopFuture<PasswordVerification> {
        verify(pending.candidate, against: pending.stored, on: eventLoop).map {
            PasswordVerification(stored: pending.stored, matches: $0)
        }
    }
}
