import ToomCore
import ToomSecurity

/// How the client talks to the server (spec §9).
public enum ClientSecurity: Sendable, Equatable {
    /// TLS, trusting the certificate seen first, as remembered in `~/.toom/known_servers`.
    case trustOnFirstUse
    /// TLS, requiring this `SHA256:...` fingerprint.
    case pinned(String)
    /// The original protocol, in the clear.
    case plaintext
}

extension ChatClient {
    func makeTLS() throws -> ClientTLS? {
        let pinned: String?
        switch configuration.security {
        case .plaintext: return nil
        case .trustOnFirstUse: pinned = nil
        case .pinned(let fingerprint): pinned = fingerprint
        }
        // On standard error: standard output stays the dialogue of spec §4–§5.
        return try ClientTLS(host: configuration.serverHost, port: configuration.serverPort, pinned: pinned,
                             notice: { RawOutput.write(2, $0 + "\n") })
    }

    /// A refusal the server explained is a refused login, on standard output as before;
    /// a certificate that is not trusted, or a failed handshake, is reported on standard error.
    func refused(_ error: ClientTLSError) -> ClientExit {
        if error.isRefusal, case .refused(_, let messages) = error {
            say(messages)
            return .loginRefused
        }
        RawOutput.write(2, error.description + "\n")
        switch error {
        case .changed, .pinMismatch: return .untrusted
        default: return .unreachable
        }
    }
}
