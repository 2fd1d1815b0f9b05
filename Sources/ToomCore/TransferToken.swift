/// The one-time secret that authorises one transfer: 16 random bytes, written as 32
/// lower-case hex digits where it travels as text. Its first 8 bytes are the transfer id
/// that every datagram of the transfer carries; the whole token appears only in START.
public struct TransferToken: Hashable, Sendable, CustomStringConvertible {
    public let high: UInt64
    public let low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    public static func random() -> TransferToken {
        var generator = SystemRandomNumberGenerator()
        return TransferToken(high: generator.next(), low: generator.next())
    }

    public init?(hex: some StringProtocol) {
        guard hex.utf8.count == 32, let high = UInt64(hex.prefix(16), radix: 16),
              let low = UInt64(hex.suffix(16), radix: 16),
              hex.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) })
        else { return nil }
        self.init(high: high, low: low)
    }

    public var hex: String { Self.hex16(high) + Self.hex16(low) }
    public var description: String { hex }

    /// The transfer id carried by every datagram.
    public var id: UInt64 { high }

    private static func hex16(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
