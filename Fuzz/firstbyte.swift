/// The first-byte detection on both ends of a connection (`ConnectionStart`). The input is
/// what arrives first. Server: TLS exactly when the first byte is a handshake record, refusal
/// only with --require-tls, and a decision that does not change as more bytes arrive. Client:
/// only a complete `ERR` line is read as a plaintext refusal, and a TLS record never is.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    let bytes = input(data, size)
    for requireTLS in [false, true] {
        let decision = ConnectionStart.server(bytes, requireTLS: requireTLS)
        switch decision {
        case .wait: check(bytes.isEmpty, "waited with \(bytes.count) bytes")
        case .tls: check(bytes.first == ConnectionStart.tlsHandshakeRecord, "TLS for first byte \(bytes.first!)")
        case .plaintext: check(!requireTLS && bytes.first != ConnectionStart.tlsHandshakeRecord, "plaintext accepted")
        case .refuse: check(requireTLS && bytes.first != ConnectionStart.tlsHandshakeRecord, "refused wrongly")
        }
        if bytes.count > 1 {
            check(ConnectionStart.server(bytes.prefix(1), requireTLS: requireTLS) == decision, "the decision changed with more bytes")
        }
    }
    switch ConnectionStart.client(bytes) {
    case .wait:
        check(!bytes.contains(0x0A) && bytes.count < Wire.maxFrameBytes, "waited on a complete line")
    case .tls:
        check((0x14...0x17).contains(bytes.first!), "TLS for first byte \(bytes.first!)")
    case .plaintext(let frame?):
        check(bytes.contains(0x0A), "a refusal without its newline")
        guard case .error = frame else { check(false, "a refusal that is not ERR: \(frame)"); return 0 }
    case .plaintext(nil):
        check(!(0x14...0x17).contains(bytes.first!), "a TLS record taken for plaintext")
    }
    return 0
}
