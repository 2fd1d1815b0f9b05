#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The spec's timestamp, `D Mon YYYY HH:MM:SS` in server local time, at one-second resolution.
public enum Timestamp {
    public static let monthNames = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    public static let expectedFormat = "D Mon YYYY HH:MM:SS (e.g. 1 Jun 2022 21:30:04)"

    /// Seconds since the epoch, now.
    public static func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec)
    }

    /// Formats epoch seconds in local time: `1 Jun 2022 21:30:04`.
    public static func format(_ seconds: Int64) -> String {
        var t = time_t(seconds)
        var parts = tm()
        localtime_r(&t, &parts)
        var out = ""
        out.reserveCapacity(20)
        out += String(parts.tm_mday)
        out += " "
        out += monthNames[Int(parts.tm_mon)]
        out += " "
        out += String(Int(parts.tm_year) + 1900)
        out += " "
        appendTwoDigits(Int(parts.tm_hour), to: &out)
        out += ":"
        appendTwoDigits(Int(parts.tm_min), to: &out)
        out += ":"
        appendTwoDigits(Int(parts.tm_sec), to: &out)
        return out
    }

    private static func appendTwoDigits(_ value: Int, to out: inout String) {
        if value < 10 { out += "0" }
        out += String(value)
    }

    /// Parses `D Mon YYYY HH:MM:SS` (one- or two-digit day) into epoch seconds, local time.
    /// Returns nil for anything else, including impossible dates such as `31 Feb 2022`.
    public static func parse<S: StringProtocol>(_ text: S) -> Int64? {
        guard let fields = Fields(text) else { return nil }
        var parts = tm()
        parts.tm_mday = Int32(fields.day)
        parts.tm_mon = Int32(fields.month - 1)
        parts.tm_year = Int32(fields.year - 1900)
        parts.tm_hour = Int32(fields.hour)
        parts.tm_min = Int32(fields.minute)
        parts.tm_sec = Int32(fields.second)
        parts.tm_isdst = -1
        return Int64(mktime(&parts))
    }

    /// The calendar fields of a timestamp, validated but not yet tied to a time zone.
    public struct Fields: Equatable, Sendable {
        public var day: Int, month: Int, year: Int, hour: Int, minute: Int, second: Int

        public init?<S: StringProtocol>(_ text: S) {
            let utf8 = Array(text.utf8)
            var i = 0
            func number(minDigits: Int, maxDigits: Int) -> Int? {
                var value = 0
                var count = 0
                while i < utf8.count, count < maxDigits, utf8[i] >= 0x30, utf8[i] <= 0x39 {
                    value = value * 10 + Int(utf8[i] - 0x30)
                    i += 1
                    count += 1
                }
                return count >= minDigits ? value : nil
            }
            func expect(_ byte: UInt8) -> Bool {
                guard i < utf8.count, utf8[i] == byte else { return false }
                i += 1
                return true
            }
            guard let day = number(minDigits: 1, maxDigits: 2), expect(0x20) else { return nil }
            guard i + 3 <= utf8.count else { return nil }
            let monthText = String(decoding: utf8[i..<i + 3], as: UTF8.self).lowercased()
            guard let monthIndex = Timestamp.monthNames.firstIndex(where: { $0.lowercased() == monthText }) else { return nil }
            i += 3
            guard expect(0x20), let year = number(minDigits: 4, maxDigits: 4), expect(0x20),
                  let hour = number(minDigits: 1, maxDigits: 2), expect(0x3A),
                  let minute = number(minDigits: 2, maxDigits: 2), expect(0x3A),
                  let second = number(minDigits: 2, maxDigits: 2), i == utf8.count
            else { return nil }
            let month = monthIndex + 1
            guard year >= 1000, hour < 24, minute < 60, second < 60,
                  day >= 1, day <= Timestamp.daysIn(month: month, year: year)
            else { return nil }
            self.day = day; self.month = month; self.year = year
            self.hour = hour; self.minute = minute; self.second = second
        }
    }

    public static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}

/// Formats timestamps, reusing the last result within the same second (the hot path formats "now").
public struct TimestampCache: Sendable {
    private var second: Int64?
    private var text = ""
    public init() {}

    public mutating func format(_ seconds: Int64) -> String {
        if seconds != second {
            second = seconds
            text = Timestamp.format(seconds)
        }
        return text
    }
}
