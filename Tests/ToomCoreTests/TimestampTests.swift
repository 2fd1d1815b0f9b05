import Testing
@testable import ToomCore

/// Timestamps are local time, so these tests never hard-code epoch values: they compare
/// `format(parse(text))` with `text` and `parse(format(seconds))` with `seconds`, which hold
/// in every time zone for the (non-DST-transition) instants used here.
@Suite struct TimestampTests {
    @Test(arguments: [
        "1 Jun 2022 21:30:04",
        "9 Jan 2023 00:00:00",
        "15 Mar 2021 09:05:07",
        "31 Dec 1999 23:59:59",
        "29 Feb 2024 12:00:00",
        "29 Feb 2000 12:00:00",
        "28 Feb 2023 12:00:00",
        "10 Oct 2030 10:10:10",
        "1 Jan 2038 08:00:00",
    ])
    func formatOfParseGivesTheSameText(_ text: String) throws {
        let seconds = try #require(Timestamp.parse(text))
        #expect(Timestamp.format(seconds) == text)
    }

    @Test(arguments: [Int64(0), 86_399, 946_684_799, 1_654_115_404, 1_700_000_000, 2_000_000_000, 4_102_444_800])
    func parseOfFormatGivesTheSameSeconds(_ seconds: Int64) throws {
        let text = Timestamp.format(seconds)
        #expect(Timestamp.parse(text) == seconds)
    }

    @Test func formatHasNoLeadingZeroOnTheDayButPadsTheClock() throws {
        let seconds = try #require(Timestamp.parse("05 Jan 2023 03:04:05"))
        #expect(Timestamp.format(seconds) == "5 Jan 2023 03:04:05")
    }

    @Test func twoDigitDayIsAccepted() throws {
        let padded = try #require(Timestamp.parse("01 Jun 2022 21:30:04"))
        let plain = try #require(Timestamp.parse("1 Jun 2022 21:30:04"))
        #expect(padded == plain)
        #expect(Timestamp.format(padded) == "1 Jun 2022 21:30:04")
    }

    @Test func fieldsAreTheCalendarValues() throws {
        let f = try #require(Timestamp.Fields("01 Jun 2022 21:30:04"))
        #expect(f.day == 1)
        #expect(f.month == 6)
        #expect(f.year == 2022)
        #expect(f.hour == 21)
        #expect(f.minute == 30)
        #expect(f.second == 4)
        #expect(Timestamp.Fields("1 Jun 2022 21:30:04") == f)
        #expect(Timestamp.Fields("2 Jun 2022 21:30:04") != f)
    }

    @Test func parseIsInSecondsAndOrdered() throws {
        let a = try #require(Timestamp.parse("1 Jun 2022 21:30:04"))
        let b = try #require(Timestamp.parse("1 Jun 2022 21:30:05"))
        let c = try #require(Timestamp.parse("1 Jun 2022 21:31:04"))
        let d = try #require(Timestamp.parse("2 Jun 2022 21:30:04"))
        #expect(b - a == 1)
        #expect(c - a == 60)
        #expect(d - a == 86_400)
    }

    @Test(arguments: zip(1...12, Timestamp.monthNames))
    func everyMonthName(_ month: Int, _ name: String) throws {
        let text = "15 \(name) 2022 12:00:00"
        let f = try #require(Timestamp.Fields(text))
        #expect(f.month == month)
        let seconds = try #require(Timestamp.parse(text))
        #expect(Timestamp.format(seconds) == text)
    }

    @Test func monthNamesAreTheEnglishAbbreviations() {
        #expect(Timestamp.monthNames == ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"])
    }

    @Test func monthIsCaseInsensitive() throws {
        #expect(Timestamp.parse("1 jun 2022 21:30:04") != nil)
        #expect(Timestamp.parse("1 jun 2022 21:30:04") == Timestamp.parse("1 Jun 2022 21:30:04"))
        #expect(Timestamp.parse("1 JUN 2022 21:30:04") != nil)
        #expect(Timestamp.parse("1 JUN 2022 21:30:04") == Timestamp.parse("1 Jun 2022 21:30:04"))
    }

    @Test(arguments: [
        "31 Feb 2022 25:61:61",
        "31 Feb 2022 12:00:00",
        "30 Feb 2024 12:00:00",
        "29 Feb 2023 12:00:00",
        "29 Feb 1900 12:00:00",
        "29 Feb 2100 12:00:00",
        "31 Apr 2022 12:00:00",
        "31 Jun 2022 12:00:00",
        "31 Sep 2022 12:00:00",
        "31 Nov 2022 12:00:00",
        "32 Jan 2022 12:00:00",
        "0 Jan 2022 12:00:00",
        "00 Jan 2022 12:00:00",
        "001 Jun 2022 21:30:04",
        "1 Jun 2022 24:00:00",
        "1 Jun 2022 23:60:00",
        "1 Jun 2022 23:59:60",
        "1 Jun 2022 21:30:04 ",
        "1 Jun 2022 21:30:04  ",
        " 1 Jun 2022 21:30:04",
        "1 Jun 2022 21:30:04\n",
        "1  Jun 2022 21:30:04",
        "1 Jun  2022 21:30:04",
        "1 Jun 2022  21:30:04",
        "1 Jun 2022 21:30",
        "1 Jun 2022",
        "1 Jun",
        "",
        " ",
        "garbage",
        "yesterday",
        "1 June 2022 21:30:04",
        "1 Jnu 2022 21:30:04",
        "1 J\u{FC}n 2022 21:30:04",
        "1 Jun 22 21:30:04",
        "1 Jun 20222 21:30:04",
        "1 Jun 0999 21:30:04",
        "1 Jun 2022 21:30:4",
        "1 Jun 2022 21:3:04",
        "1 Jun 2022 021:30:04",
        "1 Jun 2022 21:30:04.5",
        "1 Jun 2022 21.30.04",
        "1-Jun-2022 21:30:04",
        "2022-06-01 21:30:04",
        "2022-06-01T21:30:04Z",
        "\u{FF11} Jun 2022 21:30:04",
        "-1 Jun 2022 21:30:04",
        "1 Jun 2022 -1:30:04",
    ])
    func invalidTimestampsAreRejected(_ text: String) {
        #expect(Timestamp.Fields(text) == nil)
        #expect(Timestamp.parse(text) == nil)
    }

    @Test(arguments: [
        (1, 2023, 31), (2, 2023, 28), (2, 2024, 29), (2, 2000, 29), (2, 1900, 28), (2, 2100, 28),
        (3, 2022, 31), (4, 2022, 30), (5, 2022, 31), (6, 2022, 30), (7, 2022, 31), (8, 2022, 31),
        (9, 2022, 30), (10, 2022, 31), (11, 2022, 30), (12, 2022, 31),
    ])
    func daysInMonth(_ month: Int, _ year: Int, _ days: Int) {
        #expect(Timestamp.daysIn(month: month, year: year) == days)
    }

    @Test func lastDayOfEveryMonthIsAccepted() {
        for month in 1...12 {
            let days = Timestamp.daysIn(month: month, year: 2022)
            let name = Timestamp.monthNames[month - 1]
            #expect(Timestamp.parse("\(days) \(name) 2022 12:00:00") != nil, "\(days) \(name)")
            #expect(Timestamp.parse("\(days + 1) \(name) 2022 12:00:00") == nil, "\(days + 1) \(name)")
        }
    }

    @Test func parseAcceptsSubstrings() throws {
        let line = "RDM b 1 Jun 2022 21:30:04"
        let tail = line.dropFirst(6)
        #expect(Timestamp.parse(tail) == Timestamp.parse("1 Jun 2022 21:30:04"))
        #expect(Timestamp.parse(tail) != nil)
    }

    @Test func nowIsRecentAndFormats() throws {
        let now = Timestamp.now()
        let y2020 = try #require(Timestamp.parse("1 Jan 2020 00:00:00"))
        #expect(now > y2020)
        #expect(Timestamp.parse(Timestamp.format(now)) == now)
    }

    @Test func expectedFormatNamesAnExample() {
        #expect(Timestamp.expectedFormat == "D Mon YYYY HH:MM:SS (e.g. 1 Jun 2022 21:30:04)")
    }
}

@Suite struct TimestampCacheTests {
    @Test func formatsLikeTimestampAndFollowsTheSecond() throws {
        let t = try #require(Timestamp.parse("1 Jun 2022 21:30:04"))
        var cache = TimestampCache()
        #expect(cache.format(t) == "1 Jun 2022 21:30:04")
        #expect(cache.format(t) == "1 Jun 2022 21:30:04")
        #expect(cache.format(t + 1) == "1 Jun 2022 21:30:05")
        #expect(cache.format(t + 1) == "1 Jun 2022 21:30:05")
        #expect(cache.format(t) == "1 Jun 2022 21:30:04")
        #expect(cache.format(t + 86_400) == "2 Jun 2022 21:30:04")
    }

    @Test func copiesAreIndependent() throws {
        let t = try #require(Timestamp.parse("1 Jun 2022 21:30:04"))
        var a = TimestampCache()
        _ = a.format(t)
        var b = a
        #expect(b.format(t + 60) == "1 Jun 2022 21:31:04")
        #expect(a.format(t) == "1 Jun 2022 21:30:04")
    }

    @Test
    func firstCallIsNeverServedFromTheEmptyCache() {
        var cache = TimestampCache()
        #expect(cache.format(.min) == Timestamp.format(.min))
    }
}
