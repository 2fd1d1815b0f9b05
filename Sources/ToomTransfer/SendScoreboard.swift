import NIOCore

/// What the sender knows about each segment in its window: sent, acknowledged, or lost
/// and waiting to go again. Every transmission gets a new number, so an acknowledgement
/// of a later transmission tells which earlier ones were lost, retransmissions included
/// (the packet-number idea of QUIC, RFC 9002 §6.1).
struct SendScoreboard {
    private enum State: UInt8 {
        case unsent, inFlight, lost, acknowledged
    }

    private struct Transmission {
        var number: UInt64
        var segment: UInt64
        var sentAt: Int64
    }

    /// A transmission counts as lost once this many later ones were acknowledged.
    static let reorderingThreshold: UInt64 = 3

    /// Segments in the file.
    let total: UInt64
    /// Most segments between the cumulative point and the newest sent one.
    let capacity: Int
    private let mask: UInt64
    private var state: [State]
    private var latestTransmission: [UInt64]
    private(set) var acknowledged = SegmentSet()
    /// The next segment never sent yet.
    private(set) var nextNew: UInt64 = 0
    /// Transmissions in the order they were sent; stale entries are skipped lazily.
    private var log = CircularBuffer<Transmission>(initialCapacity: 1024)
    private var retransmitQueue = CircularBuffer<UInt64>(initialCapacity: 256)
    /// Segments sent and neither acknowledged nor declared lost.
    private(set) var inFlight = 0
    private(set) var nextTransmission: UInt64 = 1
    private(set) var largestAcknowledgedTransmission: UInt64 = 0
    private(set) var retransmissions = 0

    init(total: UInt64, capacity: Int, firstTransmission: UInt64 = 1) {
        self.total = total
        nextTransmission = firstTransmission
        var size = 1
        while size < capacity { size <<= 1 }
        self.capacity = size
        mask = UInt64(size - 1)
        state = Array(repeating: .unsent, count: size)
        latestTransmission = Array(repeating: 0, count: size)
    }

    var cumulative: UInt64 { acknowledged.cumulative }
    var isComplete: Bool { acknowledged.cumulative >= total }

    /// The segment to send next: a lost one first, else a new one below `limit`.
    mutating func next(limit: UInt64) -> UInt64? {
        while let segment = retransmitQueue.first {
            if segment >= cumulative, state[slot(segment)] == .lost { return segment }
            retransmitQueue.removeFirst()
        }
        let bound = min(limit, total, cumulative + UInt64(capacity))
        return nextNew < bound ? nextNew : nil
    }

    /// Records that `segment` (as returned by `next`) went out; returns its transmission number.
    mutating func sent(_ segment: UInt64, at now: Int64) -> UInt64 {
        if segment == nextNew {
            nextNew += 1
        } else {
            retransmitQueue.removeFirst()
            retransmissions += 1
        }
        let number = takeTransmissionNumber()
        let index = slot(segment)
        state[index] = .inFlight
        latestTransmission[index] = number
        log.append(Transmission(number: number, segment: segment, sentAt: now))
        inFlight += 1
        return number
    }

    /// A number for a datagram that carries no segment (PING, FINISH).
    mutating func takeTransmissionNumber() -> UInt64 {
        defer { nextTransmission += 1 }
        return nextTransmission
    }

    /// Applies an acknowledgement; returns how many segments it newly acknowledged.
    mutating func acknowledge(cumulative: UInt64, ranges: [Range<UInt64>], largestTransmission: UInt64,
                              now: Int64, lossDelay: Int64) -> Int {
        let sentBound = nextNew
        var fresh: [Range<UInt64>] = []
        acknowledged.advance(to: min(cumulative, sentBound)) { fresh.append($0) }
        for range in ranges where range.lowerBound < sentBound {
            acknowledged.insert(range.lowerBound..<min(range.upperBound, sentBound)) { fresh.append($0) }
        }
        var newly = 0
        for range in fresh {
            for segment in range {
                let index = slot(segment)
                if state[index] == .inFlight { inFlight -= 1 }
                state[index] = .acknowledged
            }
            newly += range.count
        }
        if largestTransmission > largestAcknowledgedTransmission, largestTransmission < nextTransmission {
            largestAcknowledgedTransmission = largestTransmission
        }
        detectLosses(now: now, lossDelay: lossDelay)
        return newly
    }

    /// Declares lost every transmission that a later, acknowledged one overtook by the
    /// reordering threshold or by the loss delay; true if it declared any. Called on each
    /// acknowledgement and by the timer, for the loss delay to pass with no ACK coming
    /// (RFC 9002 §6.1.2's loss timer).
    @discardableResult
    mutating func detectLosses(now: Int64, lossDelay: Int64) -> Bool {
        var declared = false
        while let entry = log.first {
            guard isLive(entry) else {
                log.removeFirst()
                continue
            }
            guard largestAcknowledgedTransmission > entry.number,
                  largestAcknowledgedTransmission - entry.number >= Self.reorderingThreshold
                    || now - entry.sentAt >= lossDelay
            else { return declared }
            declareLost(entry)
            log.removeFirst()
            declared = true
        }
        return declared
    }

    /// On a timeout: declares the oldest `count` transmissions in flight lost, so they go
    /// again as probes. Returns how many it declared.
    mutating func declareOldestLost(_ count: Int) -> Int {
        var declared = 0
        while declared < count, let entry = log.first {
            log.removeFirst()
            guard isLive(entry) else { continue }
            declareLost(entry)
            declared += 1
        }
        return declared
    }

    private func isLive(_ entry: Transmission) -> Bool {
        guard entry.segment >= cumulative else { return false }
        let index = slot(entry.segment)
        return state[index] == .inFlight && latestTransmission[index] == entry.number
    }

    private mutating func declareLost(_ entry: Transmission) {
        state[slot(entry.segment)] = .lost
        inFlight -= 1
        retransmitQueue.append(entry.segment)
    }

    private func slot(_ segment: UInt64) -> Int { Int(segment & mask) }
}
