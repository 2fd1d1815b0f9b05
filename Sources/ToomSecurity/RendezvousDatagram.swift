import Crypto
import NIOCore
import ToomCore

/// The datagrams between a client's UDP port and the server's (spec §12,
/// docs/PROTOCOL.md §13): a client registers the addresses it has, the server answers with
/// the address it saw. Every one carries an HMAC-SHA256 (truncated to 16 bytes) under the
/// secret the server gave that session at login, so nobody can register an address for
/// someone else; a number that must grow stops replays. A REGISTER is padded so that
/// the answer is never larger than what was sent.
///
/// Layout (big-endian): magic `TR`, version 1, kind, registration id u64, number u64; then
/// the body; then the MAC over everything before it. REGISTER's body: a count and that many
/// addresses (family 4 or 6, 4 or 16 bytes, port u16), zero padding to 96 bytes with the
/// MAC. REGISTERED's body: one address, the one the server saw.
public enum RendezvousDatagram {
    public static let magic: (UInt8, UInt8) = (0x54, 0x52)
    public static let version: UInt8 = 1
    public static let headerSize = 20
    public static let macSize = 16
    /// REGISTER's least size: the largest answer is 20 + 19 + 16 = 55 bytes.
    public static let registerSize = 96
    /// Local addresses one REGISTER carries at most.
    public static let maxCandidates = TransferCandidate.maxListed

    public enum Kind: UInt8, Sendable {
        case register = 1
        case registered = 2
    }

    public struct Header: Equatable, Sendable {
        public var kind: Kind
        public var id: UInt64
        public var number: UInt64

        public init(kind: Kind, id: UInt64, number: UInt64) {
            self.kind = kind
            self.id = id
            self.number = number
        }
    }

    /// Whether a datagram claims to be one of these (the transfer protocol's start `TF`).
    public static func isRendezvous(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= 2 && bytes[0] == magic.0 && bytes[1] == magic.1
    }

    public static func header(_ bytes: UnsafeRawBufferPointer) -> Header? {
        guard bytes.count >= headerSize + macSize, isRendezvous(bytes), bytes[2] == version,
              let kind = Kind(rawValue: bytes[3]) else { return nil }
        return Header(kind: kind, id: integer(bytes, at: 4), number: integer(bytes, at: 12))
    }

    public static func register(id: UInt64, number: UInt64, candidates: [TransferCandidate],
                                secret: RendezvousSecret) -> [UInt8] {
        var bytes = start(.register, id: id, number: number)
        let listed = candidates.prefix(maxCandidates)
        bytes.append(UInt8(listed.count))
        for candidate in listed { append(candidate, to: &bytes) }
        if bytes.count + macSize < registerSize { bytes += [UInt8](repeating: 0, count: registerSize - macSize - bytes.count) }
        return sealed(bytes, secret)
    }

    /// The addresses of an authentic REGISTER; nil for anything else.
    public static func openRegister(_ bytes: UnsafeRawBufferPointer, secret: RendezvousSecret) -> [TransferCandidate]? {
        guard bytes.count >= registerSize, header(bytes)?.kind == .register, authentic(bytes, secret) else { return nil }
        var offset = headerSize
        let count = Int(bytes[offset])
        offset += 1
        guard count <= maxCandidates else { return nil }
        var candidates: [TransferCandidate] = []
        for _ in 0..<count {
            guard let candidate = read(bytes, at: &offset, end: bytes.count - macSize) else { return nil }
            candidates.append(candidate)
        }
        return candidates
    }

    public static func registered(id: UInt64, number: UInt64, observed: TransferCandidate,
                                  secret: RendezvousSecret) -> [UInt8] {
        var bytes = start(.registered, id: id, number: number)
        append(observed, to: &bytes)
        return sealed(bytes, secret)
    }

    /// The number echoed and the address seen, of an authentic REGISTERED.
    public static func openRegistered(_ bytes: UnsafeRawBufferPointer,
                                      secret: RendezvousSecret) -> (number: UInt64, observed: TransferCandidate)? {
        guard let header = header(bytes), header.kind == .registered, authentic(bytes, secret) else { return nil }
        var offset = headerSize
        guard let observed = read(bytes, at: &offset, end: bytes.count - macSize), offset == bytes.count - macSize
        else { return nil }
        return (header.number, observed)
    }

    // MARK: Parts

    private static func start(_ kind: Kind, id: UInt64, number: UInt64) -> [UInt8] {
        var bytes: [UInt8] = [magic.0, magic.1, version, kind.rawValue]
        bytes.reserveCapacity(registerSize)
        appendInteger(id, to: &bytes)
        appendInteger(number, to: &bytes)
        return bytes
    }

    private static func sealed(_ bytes: [UInt8], _ secret: RendezvousSecret) -> [UInt8] {
        bytes + Array(HMAC<SHA256>.authenticationCode(for: bytes, using: secret.key)).prefix(macSize)
    }

    private static func authentic(_ bytes: UnsafeRawBufferPointer, _ secret: RendezvousSecret) -> Bool {
        let body = UnsafeRawBufferPointer(rebasing: bytes[..<(bytes.count - macSize)])
        let expected = Array(HMAC<SHA256>.authenticationCode(for: body, using: secret.key)).prefix(macSize)
        // Constant time: every byte is compared whatever the first difference.
        var difference: UInt8 = 0
        for (index, byte) in expected.enumerated() { difference |= byte ^ bytes[bytes.count - macSize + index] }
        return difference == 0
    }

    private static func append(_ candidate: TransferCandidate, to bytes: inout [UInt8]) {
        bytes.append(candidate.isIPv6 ? 6 : 4)
        bytes += candidate.address
        bytes.append(UInt8(candidate.port >> 8))
        bytes.append(UInt8(candidate.port & 0xff))
    }

    private static func read(_ bytes: UnsafeRawBufferPointer, at offset: inout Int, end: Int) -> TransferCandidate? {
        guard offset < end else { return nil }
        let length = bytes[offset] == 4 ? 4 : bytes[offset] == 6 ? 16 : 0
        guard length > 0, offset + 1 + length + 2 <= end else { return nil }
        let address = Array(bytes[(offset + 1)..<(offset + 1 + length)])
        let port = UInt16(bytes[offset + 1 + length]) << 8 | UInt16(bytes[offset + 2 + length])
        offset += 1 + length + 2
        return TransferCandidate(address: address, port: port)
    }

    private static func appendInteger(_ value: UInt64, to bytes: inout [UInt8]) {
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    private static func integer(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> UInt64 {
        var value: UInt64 = 0
        for index in offset..<(offset + 8) { value = value << 8 | UInt64(bytes[index]) }
        return value
    }
}

/// The key of one session's registrations: 32 random bytes the server hands the client at
/// login (over the TLS connection) and keeps in memory only.
public struct RendezvousSecret: @unchecked Sendable, Equatable {
    let key: SymmetricKey

    public init(bytes: [UInt8]) { key = SymmetricKey(data: bytes) }

    public init?(hex: some StringProtocol) {
        guard let bytes = Hex.decode(hex, count: 32) else { return nil }
        self.init(bytes: bytes)
    }

    public var hex: String { key.withUnsafeBytes { Hex.encode($0) } }
}

extension TransferCandidate {
    /// The address a socket reported; nil for a Unix socket.
    public init?(_ address: SocketAddress) {
        guard let port = address.port, port > 0 else { return nil }
        switch address {
        case .v4(let v4):
            self.init(address: withUnsafeBytes(of: v4.address.sin_addr) { Array($0) }, port: UInt16(port))
        case .v6(let v6):
            self.init(address: withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }, port: UInt16(port))
        default:
            return nil
        }
    }

    /// The address to send to. A dual-stack IPv6 socket reaches an IPv4 address through
    /// its mapped form (`::ffff:a.b.c.d`), and reports IPv4 peers that way too.
    public func socketAddress(forIPv6Socket: Bool) -> SocketAddress? {
        let host = isIPv6 || !forIPv6Socket ? self.host : "::ffff:" + self.host
        return try? SocketAddress(ipAddress: host, port: Int(port))
    }
}
