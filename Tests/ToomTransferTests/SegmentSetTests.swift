import Testing
import ToomTestSupport
@testable import ToomTransfer

@Suite struct SegmentSetTests {
    @Test func inOrderSegmentsMoveTheCumulativePoint() {
        var set = SegmentSet()
        for segment in 0..<100 as Range<UInt64> {
            let added = set.insert(segment)
            #expect(added)
        }
        #expect(set.cumulative == 100 && set.ranges.isEmpty)
        let repeated42 = set.insert(42)
        #expect(!repeated42)
        #expect(set.contains(99) && !set.contains(100))
    }

    @Test func gapsBecomeRangesAndFillingThemFoldsThemIn() {
        var set = SegmentSet()
        for segment: UInt64 in [0, 1, 5, 6, 7, 3, 10, 9] {
            let added = set.insert(segment)
            #expect(added)
        }
        #expect(set.cumulative == 2)
        #expect(set.ranges == [3..<4, 5..<8, 9..<11])
        #expect(set.highestRanges(limit: 2) == [9..<11, 5..<8])
        let again6 = set.insert(6)
        let again1 = set.insert(1)
        #expect(!again6 && !again1)
        let added4 = set.insert(4)
        #expect(added4)
        #expect(set.ranges == [3..<8, 9..<11])
        let added2 = set.insert(2)
        #expect(added2)
        #expect(set.cumulative == 8 && set.ranges == [9..<11])
        let added8 = set.insert(8)
        #expect(added8)
        #expect(set.cumulative == 11 && set.ranges.isEmpty)
    }

    @Test func insertingARangeReportsOnlyWhatIsNew() {
        var set = SegmentSet()
        _ = set.insert(5)
        _ = set.insert(6)
        _ = set.insert(20)
        var added: [Range<UInt64>] = []
        set.insert(3..<25) { added.append($0) }
        #expect(added == [3..<5, 7..<20, 21..<25])
        #expect(set.ranges == [3..<25] && set.cumulative == 0)
        added = []
        set.advance(to: 30) { added.append($0) }
        #expect(added == [0..<3, 25..<30])
        #expect(set.cumulative == 30 && set.ranges.isEmpty)
        added = []
        set.insert(0..<30) { added.append($0) }
        set.advance(to: 10) { added.append($0) }
        #expect(added.isEmpty)
    }

    @Test func randomInsertionsAgreeWithASimpleModel() {
        var generator = SeededRandom(seed: 7)
        for _ in 0..<50 {
            var set = SegmentSet()
            var model = Set<UInt64>()
            for _ in 0..<300 {
                let start = generator.next() % 200
                let length = 1 + generator.next() % 6
                var added: UInt64 = 0
                set.insert(start..<(start + length)) { added += UInt64($0.count) }
                let before = model.count
                model.formUnion(start..<(start + length))
                #expect(added == UInt64(model.count - before))
                #expect(set.count == UInt64(model.count))
            }
            for segment in 0..<210 as Range<UInt64> { #expect(set.contains(segment) == model.contains(segment)) }
            #expect(set.cumulative == (0...).first { !model.contains($0) }!)
            for (a, b) in zip(set.ranges, set.ranges.dropFirst()) { #expect(a.upperBound < b.lowerBound) }
            #expect(set.ranges.allSatisfy { $0.lowerBound > set.cumulative })
        }
    }
}
