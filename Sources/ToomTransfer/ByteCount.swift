/// Sizes and rates as people read them, and the `10M`/`2G` form people type.
public enum ByteCount {
    private static let units = ["B", "KiB", "MiB", "GiB", "TiB"]

    /// `512 B`, `1.5 MiB`, `2.0 GiB`.
    public static func describe(_ bytes: UInt64) -> String {
        var value = Double(bytes)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : "\(oneDecimal(value)) \(units[unit])"
    }

    /// Decimal rates, as networks are measured: `950.2 MB/s`, `1.21 GB/s`.
    public static func rate(_ bytesPerSecond: Double) -> String {
        if bytesPerSecond >= 1e9 { return "\(twoDecimals(bytesPerSecond / 1e9)) GB/s" }
        if bytesPerSecond >= 1e6 { return "\(oneDecimal(bytesPerSecond / 1e6)) MB/s" }
        return "\(oneDecimal(bytesPerSecond / 1e3)) kB/s"
    }

    /// Parses `1048576`, `512K`, `10M`, `2G`, `1T` (binary multiples; a trailing `B`
    /// or `iB` is allowed). Nil for anything else.
    public static func parse(_ text: String) -> UInt64? {
        var digits = Substring(text.uppercased())
        for suffix in ["IB", "B"] where digits.hasSuffix(suffix) && digits.count > suffix.count {
            digits = digits.dropLast(suffix.count)
            break
        }
        var multiplier: UInt64 = 1
        if let last = digits.last, let power = ["K": 1, "M": 2, "G": 3, "T": 4][String(last)] {
            multiplier = 1 << (10 * UInt64(power))
            digits = digits.dropLast()
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let value = UInt64(digits) else { return nil }
        let (product, overflow) = value.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : product
    }


    private static func oneDecimal(_ value: Double) -> String {
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }

    private static func twoDecimals(_ value: Double) -> String {
        let hundredths = Int((value * 100).rounded())
        let fraction = hundredths % 100
        return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }
}
