import Crypto
import Foundation

/// The 256-bit AES-GCM key of one transfer: the server mints it with the token and sends
/// it to both clients as 64 lower-case hex digits (docs/TRANSFER.md §3). Immutable, so
/// sendable although `SymmetricKey` does not say so.
public struct TransferKey: @unchecked Sendable, Equatable {
    let symmetric: SymmetricKey

    public init?(hex: some StringProtocol) {
        let digits = Array(hex.utf8)
        guard digits.count == 64 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        for index in stride(from: 0, to: 64, by: 2) {
            guard let high = Self.nibble(digits[index]), let low = Self.nibble(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        symmetric = SymmetricKey(data: bytes)
    }

    public static func random() -> TransferKey { TransferKey(symmetric: SymmetricKey(size: .bits256)) }

    private init(symmetric: SymmetricKey) { self.symmetric = symmetric }

    public var hex: String { symmetric.withUnsafeBytes { ByteCount.hex(Array($0)) } }

    public static func == (lhs: TransferKey, rhs: TransferKey) -> Bool { lhs.symmetric == rhs.symmetric }

    private static func nibble(_ digit: UInt8) -> UInt8? {
        switch digit {
        case 0x30...0x39: return digit - 0x30
        case 0x61...0x66: return digit - 0x61 + 10
        default: return nil
        }
    }
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
    let key: TransferKey
    /// False only for toom-bench's reference measurement of the cost of encryption: the
    /// body then travels in clear with a zero tag, and nothing is authenticated.
    var encrypts = true

    static let tagSize = 16

    /// The 96-bit nonce: direction (4 bytes) then number (8 bytes), big-endian.
    static func nonce(_ direction: Direction, _ number: UInt64) -> AES.GCM.Nonce {
        var bytes = [UInt8](repeating: 0, count: 12)
        bytes.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: direction.rawValue.bigEndian, as: UInt32.self)
            raw.storeBytes(of: number.bigEndian, toByteOffset: 4, as: UInt64.self)
        }
        return try! AES.GCM.Nonce(data: bytes)
    }

    /// Encrypts `plaintext`, authenticating `header` with it; appends ciphertext and tag.
    func seal(_ plaintext: UnsafeRawBufferPointer, header: UnsafeRawBufferPointer, direction: Direction,
              number: UInt64, into output: UnsafeMutableRawPointer) -> Int {
        guard encrypts else {
            if plaintext.count > 0 { output.copyMemory(from: plaintext.baseAddress!, byteCount: plaintext.count) }
            (output + plaintext.count).initializeMemory(as: UInt8.self, repeating: 0, count: Self.tagSize)
            return plaintext.count + Self.tagSize
        }
        // The nonce is unique by construction, and AES-GCM cannot otherwise fail.
        let box = try! AES.GCM.seal(plaintext, using: key.symmetric, nonce: Self.nonce(direction, number),
                                    authenticating: header)
        let count = box.ciphertext.count
        if count > 0 { box.ciphertext.withUnsafeBytes { output.copyMemory(from: $0.baseAddress!, byteCount: count) } }
        box.tag.withUnsafeBytes { (output + count).copyMemory(from: $0.baseAddress!, byteCount: Self.tagSize) }
        return count + Self.tagSize
    }

    /// Decrypts `sealed` (ciphertext then tag); nil if it or `header` was altered or forged.
    func open(_ sealed: UnsafeRawBufferPointer, header: UnsafeRawBufferPointer, direction: Direction,
              number: UInt64) -> Data? {
        guard sealed.count >= Self.tagSize else { return nil }
        let split = sealed.count - Self.tagSize
        guard encrypts else { return Data(sealed[..<split]) }
        guard let box = try? AES.GCM.SealedBox(nonce: Self.nonce(direction, number),
                                               ciphertext: UnsafeRawBufferPointer(rebasing: sealed[..<split]),
                                               tag: UnsafeRawBufferPointer(rebasing: sealed[split...]))
        else { return nil }
        return try? AES.GCM.open(box, using: key.symmetric, authenticating: header)
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
