/// What the first bytes of a connection say it speaks: TLS and the plaintext protocol share
/// one port (spec §9). Pure, so the fuzzer can drive it; the NIO handlers call it.
public enum ConnectionStart {
    /// The content type of a TLS handshake record; no plaintext frame starts with it.
    public static let tlsHandshakeRecord: UInt8 = 0x16

    public enum ServerDecision: Equatable, Sendable {
        /// Nothing read yet.
        case wait
        case tls
        case plaintext
        /// Plaintext, and the server was started with `--require-tls`.
        case refuse
    }

    /// The server's decision from the bytes read so far.
    public static func server<Bytes: Collection<UInt8>>(_ bytes: Bytes, requireTLS: Bool) -> ServerDecision {
        guard let first = bytes.first else { return .wait }
        if first == tlsHandshakeRecord { return .tls }
        return requireTLS ? .refuse : .plaintext
    }

    public enum ClientAnswer: Equatable, Sendable {
        /// A line not yet complete.
        case wait
        /// A TLS record: the handshake goes on.
        case tls
        /// The server answered in plaintext instead: its `ERR` frame, or nil for anything else.
        case plaintext(ServerFrame?)
    }

    /// What the server's first bytes mean to a client that started a TLS handshake. TLS
    /// records start with a byte from 0x14 to 0x17; a toom server refusing the connection
    /// (full, address refused, a server without TLS) sends an `ERR` line.
    public static func client<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> ClientAnswer {
        guard let first = bytes.first else { return .wait }
        if (0x14...0x17).contains(first) { return .tls }
        guard let newline = bytes.firstIndex(of: 0x0A) else {
            return bytes.count >= Wire.maxFrameBytes ? .plaintext(nil) : .wait
        }
        var line = String(decoding: bytes[..<newline], as: UTF8.self)
        if line.hasSuffix("\r") { line.removeLast() }
        guard case .error? = ServerFrame.decode(line[...]) else { return .plaintext(nil) }
        return .plaintext(ServerFrame.decode(line[...]))
    }
}
