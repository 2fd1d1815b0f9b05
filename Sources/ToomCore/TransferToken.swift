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
        guard let bytes = Hex.decode(hex, count: 16) else { return nil }
        self.init(high: bytes[..<8].reduce(0) { $0 << 8 | UInt64($1) }, low: bytes[8...].reduce(0) { $0 << 8 | UInt64($1) })
    }

    public var hex: String { Hex.encode(withUnsafeBytes(of: high.bigEndian) { Array($0) } + withUnsafeBytes(of: low.bigEndian) { Array($0) }) }
    public var description: String { hex }

    /// The transfer id carried by every datagram.
    public var id: UInt64 { high }
}
