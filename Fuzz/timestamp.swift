#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The timestamp parser: whatever it accepts is a real calendar time, written back in the
/// spec's form it parses to the same fields, and (in UTC, where every local time exists
/// once) formatting the parsed time gives that same canonical text.
private let inUTC: Void = { setenv("TZ", "UTC", 1); tzset() }()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    inUTC
    let text = String(decoding: input(data, size), as: UTF8.self)
    guard let fields = Timestamp.Fields(text) else {
        check(Timestamp.parse(text) == nil, "parse accepts \(text.debugDescription) that Fields refuses")
        return 0
    }
    check((1...12).contains(fields.month) && fields.day >= 1 && fields.day <= Timestamp.daysIn(month: fields.month, year: fields.year)
          && fields.hour < 24 && fields.minute < 60 && fields.second < 60, "impossible time accepted: \(text.debugDescription)")
    func twoDigits(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
    let canonical = "\(fields.day) \(Timestamp.monthNames[fields.month - 1]) \(fields.year) "
        + "\(twoDigits(fields.hour)):\(twoDigits(fields.minute)):\(twoDigits(fields.second))"
    check(Timestamp.Fields(canonical) == fields, "\(canonical) parses differently from \(text.debugDescription)")
    guard let seconds = Timestamp.parse(text) else {
        check(false, "Fields accepts \(text.debugDescription) but parse refuses it")
        return 0
    }
    check(Timestamp.format(seconds) == canonical, "\(text.debugDescription) formats back as \(Timestamp.format(seconds)), not \(canonical)")
    return 0
}
