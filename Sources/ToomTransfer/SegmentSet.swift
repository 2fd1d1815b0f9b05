/// A set of segment numbers kept as a cumulative point (every segment below it is in the
/// set) plus sorted, disjoint, non-touching ranges above it. The receiver records what
/// arrived in one; the sender records what was acknowledged in another.
struct SegmentSet {
    /// Every segment below this one is in the set; this one is not.
    private(set) var cumulative: UInt64 = 0
    /// Ranges above `cumulative + 1`, ascending.
    private(set) var ranges: [Range<UInt64>] = []
    /// Segments in the set.
    private(set) var count: UInt64 = 0

    func contains(_ segment: UInt64) -> Bool {
        if segment < cumulative { return true }
        guard let index = rangeIndex(atOrAfter: segment), index < ranges.count else { return false }
        return ranges[index].contains(segment)
    }

    /// Adds one segment; false if it was already there.
    mutating func insert(_ segment: UInt64) -> Bool {
        var added = false
        insert(segment..<(segment + 1)) { _ in added = true }
        return added
    }

    /// Adds a range and reports the parts of it that were not in the set yet.
    mutating func insert(_ range: Range<UInt64>, newlyAdded: (Range<UInt64>) -> Void) {
        var added: UInt64 = 0
        merge(range) { part in
            added += UInt64(part.count)
            newlyAdded(part)
        }
        count += added
    }

    private mutating func merge(_ range: Range<UInt64>, newlyAdded: (Range<UInt64>) -> Void) {
        let range = range.clamped(to: cumulative..<UInt64.max)
        guard !range.isEmpty else { return }
        if range.lowerBound == cumulative {
            // Fast path: the cumulative point moves; fold in the ranges it reaches.
            var end = range.upperBound
            var consumed = 0
            var reported = cumulative
            while consumed < ranges.count, ranges[consumed].lowerBound <= end {
                let next = ranges[consumed]
                if next.lowerBound > reported { newlyAdded(reported..<next.lowerBound) }
                reported = max(reported, next.upperBound)
                end = max(end, next.upperBound)
                consumed += 1
            }
            if end > reported { newlyAdded(reported..<end) }
            cumulative = end
            if consumed > 0 { ranges.removeFirst(consumed) }
            return
        }
        if let last = ranges.last, range.lowerBound >= last.lowerBound {
            // Fast path: in-order arrival after a gap extends or follows the last range.
            if range.lowerBound <= last.upperBound {
                if range.upperBound > last.upperBound {
                    newlyAdded(last.upperBound..<range.upperBound)
                    ranges[ranges.count - 1] = last.lowerBound..<range.upperBound
                }
            } else {
                newlyAdded(range)
                ranges.append(range)
            }
            return
        }
        // General case: merge with every range it touches.
        let first = rangeIndex(touching: range.lowerBound)
        var index = first
        var lower = range.lowerBound
        var upper = range.upperBound
        var cursor = range.lowerBound
        while index < ranges.count, ranges[index].lowerBound <= range.upperBound {
            let existing = ranges[index]
            if existing.lowerBound > cursor { newlyAdded(cursor..<existing.lowerBound) }
            cursor = max(cursor, existing.upperBound)
            lower = min(lower, existing.lowerBound)
            upper = max(upper, existing.upperBound)
            index += 1
        }
        if range.upperBound > cursor { newlyAdded(cursor..<range.upperBound) }
        ranges.replaceSubrange(first..<index, with: [lower..<upper])
    }

    /// Marks everything below `point` as present and reports what that added.
    mutating func advance(to point: UInt64, newlyAdded: (Range<UInt64>) -> Void) {
        guard point > cumulative else { return }
        insert(cumulative..<point, newlyAdded: newlyAdded)
    }

    /// Up to `limit` ranges, highest first: the receiver's ACK repeats the newest news,
    /// older ranges having gone out in earlier ACKs.
    func highestRanges(limit: Int) -> [Range<UInt64>] {
        Array(ranges.suffix(limit).reversed())
    }

    /// Index of the first range whose upper bound is above `segment`, or nil if none.
    private func rangeIndex(atOrAfter segment: UInt64) -> Int? {
        var low = 0
        var high = ranges.count
        while low < high {
            let mid = (low + high) / 2
            if ranges[mid].upperBound <= segment { low = mid + 1 } else { high = mid }
        }
        return low < ranges.count ? low : nil
    }

    /// Index of the first range that touches or follows `segment` (upper bound ≥ segment).
    private func rangeIndex(touching segment: UInt64) -> Int {
        var low = 0
        var high = ranges.count
        while low < high {
            let mid = (low + high) / 2
            if ranges[mid].upperBound < segment { low = mid + 1 } else { high = mid }
        }
        return low
    }
}
