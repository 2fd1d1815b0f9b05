import Synchronization
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
        return fields.epochSeconds
    }

    /// The local-time offset from UTC at the start of the last hour converted: times within an
    /// hour share it (time-zone rules change on hour boundaries), so `mktime`, which
    /// re-reads the zone on every call, runs once per hour of timestamps rather than per line.
    private static let hourOffset = Mutex<(hour: Int64, offset: Int64)>((.min, 0))

    /// Days from 1970-01-01 to a civil date (proleptic Gregorian).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let m = Int64(month)
        let dayOfYear = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + Int64(day) - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The calendar fields of a timestamp, validated but not yet tied to a time zone.
    public struct Fields: Equatable, Sendable {
        public var day: Int, month: Int, year: Int, hour: Int, minute: Int, second: Int

        public init?<S: StringProtocol>(_ text: S) {
            let parsed = text.utf8.withContiguousStorageIfAvailable { Fields.parse($0) }
                ?? Array(text.utf8).withUnsafeBufferPointer { Fields.parse($0) }
            guard let parsed else { return nil }
            self = parsed
        }

        private init(day: Int, month: Int, year: Int, hour: Int, minute: Int, second: Int) {
            self.day = day; self.month = month; self.year = year
            self.hour = hour; self.minute = minute; self.second = second
        }

        private static func parse(_ utf8: UnsafeBufferPointer<UInt8>) -> Fields? {
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
            guard let day = number(minDigits: 1, maxDigits: 2), expect(0x20), i + 3 <= utf8.count else { return nil }
            // Month names compare case-insensitively (ASCII letters only).
            let name = (UInt32(utf8[i] | 0x20) << 16) | (UInt32(utf8[i + 1] | 0x20) << 8) | UInt32(utf8[i + 2] | 0x20)
            guard let monthIndex = Timestamp.monthKeys.firstIndex(of: name) else { return nil }
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
            return Fields(day: day, month: month, year: year, hour: hour, minute: minute, second: second)
        }

        /// Seconds since the epoch for these fields in local time.
        public var epochSeconds: Int64 {
            let utcHour = Timestamp.daysFromCivil(year: year, month: month, day: day) * 86_400 + Int64(hour) * 3600
            let offset = Timestamp.hourOffset.withLock { cache -> Int64 in
                if cache.hour == utcHour { return cache.offset }
                var parts = tm()
                parts.tm_mday = Int32(day)
                parts.tm_mon = Int32(month - 1)
                parts.tm_year = Int32(year - 1900)
                parts.tm_hour = Int32(hour)
                parts.tm_isdst = -1
                let offset = utcHour - Int64(mktime(&parts))
                cache = (utcHour, offset)
                return offset
            }
            return utcHour + Int64(minute) * 60 + Int64(second) - offset
        }
    }

    /// Lower-case month names packed into integers, for comparing three bytes at once.
    static let monthKeys: [UInt32] = monthNames.map { name in
        name.lowercased().utf8.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
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
