import CCryptoBoringSSL
import Crypto
import Foundation
import ToomCore

/// The 256-bit AES-GCM key of one transfer: the server mints it with the token and sends
/// it to both clients as 64 lower-case hex digits (docs/TRANSFER.md §3). Immutable, so
/// sendable although `SymmetricKey` does not say so.
public struct TransferKey: @unchecked Sendable, Equatable {
    let symmetric: SymmetricKey

    public init?(hex: some StringProtocol) {
        guard let bytes = Hex.decode(hex, count: 32) else { return nil }
        symmetric = SymmetricKey(data: bytes)
    }

    public static func random() -> TransferKey { TransferKey(symmetric: SymmetricKey(size: .bits256)) }

    init(symmetric: SymmetricKey) { self.symmetric = symmetric }

    public var hex: String { symmetric.withUnsafeBytes { Hex.encode($0) } }

    public static func == (lhs: TransferKey, rhs: TransferKey) -> Bool { lhs.symmetric == rhs.symmetric }
}

/// Which way a datagram travels: part of every nonce, so the two directions never share one.
enum Direction: UInt32 {
    case toAudience = 0
    case toPresenter = 1
}

/// Seals and opens the datagrams of one transfer. Every datagram's number is new in its
/// direction (retransmissions included), so the nonce `direction ‖ number` never repeats
/// under the key.
struct PacketCipher: @unchecked Sendable {
    /// False only for toom-bench's reference measurement of the cost of encryption: the
    /// body then travels in clear with a zero tag, and nothing is authenticated.
    var encrypts = true
    private let aead: GCMContext

    static let tagSize = 16

    init(key: TransferKey, encrypts: Bool = true) {
        self.encrypts = encrypts
        aead = GCMContext(key.symmetric)
    }

    /// The 96-bit nonce: direction (4 bytes) then number (8 bytes), big-endian, in the first
    /// 12 bytes of 16.
    static func nonce(_ direction: Direction, _ number: UInt64) -> Nonce {
        var nonce: Nonce = (0, 0)
        withUnsafeMutableBytes(of: &nonce) { raw in
            raw.storeBytes(of: direction.rawValue.bigEndian, as: UInt32.self)
            raw.storeBytes(of: number.bigEndian, toByteOffset: 4, as: UInt64.self)
        }
        return nonce
    }

    typealias Nonce = (UInt64, UInt64)

    /// Encrypts `plaintext`, authenticating `header` with it; writes ciphertext then tag to
    /// `output` (room for `plaintext.count + tagSize`) and returns their length.
    func seal(_ plaintext: UnsafeRawBufferPointer, header: UnsafeRawBufferPointer, direction: Direction,
              number: UInt64, into output: UnsafeMutableRawPointer) -> Int {
        guard encrypts else {
            if plaintext.count > 0 { output.copyMemory(from: plaintext.baseAddress!, byteCount: plaintext.count) }
            (output + plaintext.count).initializeMemory(as: UInt8.self, repeating: 0, count: Self.tagSize)
            return plaintext.count + Self.tagSize
        }
        return aead.seal(plaintext, header: header, nonce: Self.nonce(direction, number), into: output)
    }

    /// Decrypts `sealed` (ciphertext then tag) into `output` (room for `sealed.count -
    /// tagSize`); the plaintext's length, or nil if it or `header` was altered or forged.
    func open(_ sealed: UnsafeRawBufferPointer, header: UnsafeRawBufferPointer, direction: Direction,
              number: UInt64, into output: UnsafeMutableRawPointer) -> Int? {
        guard sealed.count >= Self.tagSize else { return nil }
        let length = sealed.count - Self.tagSize
        guard encrypts else {
            if length > 0 { output.copyMemory(from: sealed.baseAddress!, byteCount: length) }
            return length
        }
        return aead.open(sealed, header: header, nonce: Self.nonce(direction, number), into: output)
    }

    /// `open` into new memory, for the few datagrams that are not DATA.
    func open(_ sealed: UnsafeRawBufferPointer, header: UnsafeRawBufferPointer, direction: Direction,
              number: UInt64) -> [UInt8]? {
        guard sealed.count >= Self.tagSize else { return nil }
        // A byte of room even for an empty plaintext, so the output has an address.
        var plain = [UInt8](repeating: 0, count: max(sealed.count - Self.tagSize, 1))
        guard let length = plain.withUnsafeMutableBytes({ out in
            open(sealed, header: header, direction: direction, number: number, into: out.baseAddress!)
        }) else { return nil }
        plain.removeLast(plain.count - length)
        return plain
    }
}

/// AES-256-GCM with its key schedule made once per transfer, sealing from and opening into
/// the caller's memory: swift-crypto's `AES.GCM` allocates a nonce, a sealed box and the
/// output for every call, which cost more than the cipher itself at a million datagrams a
/// GiB (docs/TRANSFER.md §3). It is the same BoringSSL that `AES.GCM` calls, reached
/// through swift-crypto's own C module. BoringSSL allows concurrent seals and opens on one
/// context.
final class GCMContext: @unchecked Sendable {
    private let context = UnsafeMutablePointer<EVP_AEAD_CTX>.allocate(capacity: 1)

    init(_ key: SymmetricKey) {
        let made = key.withUnsafeBytes { raw in
            CCryptoBoringSSL_EVP_AEAD_CTX_init(context, CCryptoBoringSSL_EVP_aead_aes_256_gcm(),
                                               raw.bindMemory(to: UInt8.self).baseAddress, raw.count,
                                               PacketCipher.tagSize, nil)
        }
        // A 32-byte key is all AES-256-GCM asks for.
        precondition(made == 1, "AES-256-GCM context")
    }

    deinit {
        CCryptoBoringSSL_EVP_AEAD_CTX_cleanup(context)
        context.deallocate()
    }

    func seal(_ plaintext: UnsafeRawBufferPointer, header: UnsafeRawBufferPointer, nonce: PacketCipher.Nonce,
              into output: UnsafeMutableRawPointer) -> Int {
        var nonce = nonce
        var written = 0
        let sealed = withUnsafeBytes(of: &nonce) { nonceBytes in
            CCryptoBoringSSL_EVP_AEAD_CTX_seal(
                context, output.assumingMemoryBound(to: UInt8.self), &written, plaintext.count + PacketCipher.tagSize,
                nonceBytes.baseAddress!.assumingMemoryBound(to: UInt8.self), 12,
                plaintext.baseAddress?.assumingMemoryBound(to: UInt8.self), plaintext.count,
                header.baseAddress?.assumingMemoryBound(to: UInt8.self), header.count)
        }
        // Unique nonce, room for the tag: sealing cannot otherwise fail.
        precondition(sealed == 1, "AES-256-GCM seal")
        return written
    }

    func open(_ sealed: UnsafeRawBufferPointer, header: UnsafeRawBufferPointer, nonce: PacketCipher.Nonce,
              into output: UnsafeMutableRawPointer) -> Int? {
        guard sealed.count >= PacketCipher.tagSize else { return nil }
        var nonce = nonce
        var written = 0
        let opened = withUnsafeBytes(of: &nonce) { nonceBytes in
            CCryptoBoringSSL_EVP_AEAD_CTX_open(
                // Exactly the room there is: a failed open zeroes `max_out_len` bytes of `out`.
                context, output.assumingMemoryBound(to: UInt8.self), &written, sealed.count - PacketCipher.tagSize,
                nonceBytes.baseAddress!.assumingMemoryBound(to: UInt8.self), 12,
                sealed.baseAddress?.assumingMemoryBound(to: UInt8.self), sealed.count,
                header.baseAddress?.assumingMemoryBound(to: UInt8.self), header.count)
        }
        if opened != 1 { CCryptoBoringSSL_ERR_clear_error() }
        return opened == 1 ? written : nil
    }
}

/// Which datagram numbers from the peer were seen: a replayed one is refused. Keeps the
/// largest number and a window of the 1,024 below it (RFC 4303 §3.4.3); older ones are
/// refused too.
struct ReplayWindow {
    static let width: UInt64 = 1024
    private var largest: UInt64 = 0
    private var seen = [UInt64](repeating: 0, count: Int(width / 64))

    /// True, and remembers `number`, if it was not seen before and is not too old.
    mutating func accept(_ number: UInt64) -> Bool {
        if number > largest {
            let shift = number - largest
            if shift >= Self.width {
                for index in seen.indices { seen[index] = 0 }
            } else {
                var clear = largest + 1
                while clear <= number {
                    let bit = clear % Self.width
                    seen[Int(bit / 64)] &= ~(1 << (bit % 64))
                    clear += 1
                }
            }
            largest = number
        } else if largest - number >= Self.width {
            return false
        }
        let bit = number % Self.width
        let word = Int(bit / 64), mask: UInt64 = 1 << (bit % 64)
        if seen[word] & mask != 0 { return false }
        seen[word] |= mask
        return true
    }
}

/// This client's X25519 key pair for agreeing file keys with other clients (spec §12): made
/// when the client starts, kept in memory only; the server sees only the public half.
public struct TransferKeyPair: @unchecked Sendable {
    private let privateKey = Curve25519.KeyAgreement.PrivateKey()

    public init() {}

    /// The public key as PASS carries it: 64 hex digits.
    public var publicHex: String { Hex.encode(privateKey.publicKey.rawRepresentation) }

    /// One transfer's key, agreed with the other client's public key: X25519, then
    /// HKDF-SHA256 salted with the transfer's token and bound to both public keys (the
    /// presenter's first). Both ends get the same key only if each has the other's real
    /// public key; `check` is derived the same way, so two users who see the same eight
    /// digits know that nobody in between (the server included) swapped a key.
    public func agree(with peerHex: some StringProtocol, token: TransferToken,
                      asPresenter: Bool) -> (key: TransferKey, check: String)? {
        guard let peerBytes = Hex.decode(peerHex, count: 32),
              let peer = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: peerBytes),
              let shared = try? privateKey.sharedSecretFromKeyAgreement(with: peer),
              // A low-order point gives an all-zero secret that anyone can know (RFC 7748 §6.1).
              shared.withUnsafeBytes({ $0.contains { $0 != 0 } })
        else { return nil }
        let own = Array(privateKey.publicKey.rawRepresentation)
        let keys = asPresenter ? own + peerBytes : peerBytes + own
        var salt: [UInt8] = []
        for value in [token.high, token.low] { withUnsafeBytes(of: value.bigEndian) { salt += $0 } }
        let key = shared.hkdfDerivedSymmetricKey(using: SHA256.self, salt: salt,
                                                 sharedInfo: Array("toom file key".utf8) + keys, outputByteCount: 32)
        let code = shared.hkdfDerivedSymmetricKey(using: SHA256.self, salt: salt,
                                                  sharedInfo: Array("toom key check".utf8) + keys, outputByteCount: 4)
        let number = code.withUnsafeBytes { $0.reduce(UInt32(0)) { $0 << 8 | UInt32($1) } } % 100_000_000
        let digits = String(number)
        let padded = String(repeating: "0", count: 8 - digits.count) + digits
        return (TransferKey(symmetric: key), "\(padded.prefix(4))-\(padded.suffix(4))")
    }
}
