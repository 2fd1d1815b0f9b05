/// A BBR-like congestion controller (draft-cardwell-iccrg-bbr-congestion-control, v1 with
/// the ACK-aggregation allowance of v2): it models the path by its bottleneck bandwidth
/// (the largest delivery rate seen over the last 10 round trips) and its propagation
/// delay (the smallest round trip seen over 10 seconds), paces datagrams at a gain times
/// that bandwidth (never counting a sample above the rate it was paced at), and caps what
/// is in flight at twice their product plus the bandwidth times the least delay of the
/// last rounds beyond the propagation delay (a host's batching, or a queue another flow
/// keeps full; one of its own drains). Loss plays no part, so random loss (Wi-Fi, the 10%
/// of the tests) is not read as congestion — except beside a queue another flow keeps
/// full, where the window is bounded by loss instead (`foreignQueue`, as BBRv2's
/// inflight_hi). Pure: the sender feeds it acknowledgements and the clock, in nanoseconds.
struct CongestionController {
    enum Mode: Equatable {
        /// Doubling the rate every round until the bandwidth stops growing.
        case startup
        /// Emptying the queue startup left behind.
        case drain
        /// Cruising at the bandwidth, probing it with gains 1.25, 0.75, then 1.
        case probeBandwidth(phase: Int, since: Int64)
        /// Letting the queue empty for a fresh look at the propagation delay.
        case probeRoundTrip(until: Int64?)
    }

    static let startupGain = 2.885  // 2 / ln 2
    static let drainGain = 1 / 2.885
    static let windowGain = 2.0
    static let probeGains: [Double] = [1.25, 0.75, 1, 1, 1, 1, 1, 1]
    static let bandwidthRounds: UInt64 = 10
    static let minRoundTripLifetime: Int64 = 10_000_000_000
    /// The first look comes sooner: a flow that started into another's queue took that
    /// queue for propagation delay, and with it a window that kept the other flow starved.
    static let firstMinRoundTripLifetime: Int64 = 2_500_000_000
    static let probeRoundTripDuration: Int64 = 200_000_000
    static let initialWindowDatagrams = 32
    static let minimumWindowDatagrams = 4
    static let probeWindowDatagrams = 4

    let datagramBytes: Int
    private(set) var mode = Mode.startup
    /// Bytes per second; nil until the first delivery rate sample.
    private(set) var bandwidth: Double?
    private var bandwidthSamples: [(round: UInt64, rate: Double)] = []
    private(set) var minRoundTrip: Int64?
    /// The recent round trip (smoothed, 1/8 per sample): with the receiver's batching, a
    /// busy host's round trip can be many times its minimum without any queue in the path.
    private(set) var recentRoundTrip: Int64?
    private var minRoundTripStamp: Int64 = 0
    /// The least round trip of each of the last 10 rounds.
    private var lowRoundTrips: [(round: UInt64, roundTrip: Int64)] = []
    /// Whether the propagation delay was measured afresh (ProbeRTT) yet.
    private var probedRoundTrip = false
    /// The smallest round trip seen while probing for it: the new estimate.
    private var probeMinRoundTrip: Int64?
    /// Round trips counted by datagram numbers: a round ends when a datagram sent after it began is acknowledged.
    private(set) var round: UInt64 = 0
    private var roundEndsAfter: UInt64 = 0
    private var fullBandwidth: Double = 0
    private var roundsWithoutGrowth = 0
    private var filledPipe = false
    /// A standing queue the transfer's own window cannot account for: a loss-based flow
    /// (TCP with CUBIC) keeps it full until it loses. Then, as BBRv2 does, the window is
    /// bounded by loss (`inflightHigh`) rather than by delay, which would yield the whole
    /// queue to that flow.
    private(set) var foreignQueue = false
    private(set) var inflightHigh = 0
    /// Datagrams `inflightHigh` grows by at the end of the next round without loss.
    private var inflightGrowth = 1
    /// After a loss, `inflightHigh` holds until then: a loss-based flow cut its window too.
    private var holdUntil: Int64 = 0
    /// Rounds in a row whose least round trip showed a queue the window cannot account for.
    private var unexplainedRounds = 0
    /// This round so far: its least round trip, bytes delivered and lost, the most in flight.
    private var roundLeast: Int64?
    private var roundDelivered = 0
    private var roundLost = 0
    private var roundInFlight = 0
    /// Bytes in flight as the sender last told: what it no longer counts, and was not
    /// acknowledged, it declared lost.
    private var trackedInFlight = 0
    /// Delivery rate sampling (draft-cheng-iccrg-delivery-rate-estimation): what had been
    /// delivered, and when, as each datagram left; a ring indexed by datagram number.
    private struct SendState {
        var number: UInt64 = 0
        var delivered: UInt64 = 0
        var deliveredTime: Int64 = 0
        var firstSentTime: Int64 = 0
        var sentTime: Int64 = 0
        var round: UInt64 = 0
        /// The pacing rate it left at (infinite before the first estimate).
        var pacingRate = Double.infinity
    }

    /// Held by reference: the ring is large, and must never be copied per datagram.
    private final class SendStates {
        static let count = 16384
        var ring = [SendState](repeating: .init(), count: count)

        subscript(number: UInt64) -> SendState {
            get { ring[Int(number % UInt64(Self.count))] }
            set { ring[Int(number % UInt64(Self.count))] = newValue }
        }
    }

    private let sendStates = SendStates()
    private var delivered: UInt64 = 0
    /// Bytes sent before the first acknowledgement.
    private var firstWindowBytes: UInt64 = 0
    private var deliveredTime: Int64 = 0
    private var firstSentTime: Int64 = 0
    /// The most bytes one acknowledgement covered lately: the receiver acknowledges in
    /// bursts, and the window must hold a burst beyond the path's product.
    private var ackBursts: [(round: UInt64, bytes: Int)] = []

    /// The phase ProbeBW starts in after drain: any but the slow one. Flows that start
    /// together and cycle in step probe at the same moments, and each keeps the share it
    /// had; BBR starts at a random phase for this. The sender picks it (`randomCyclePhase`).
    let firstCyclePhase: Int

    static let firstCyclePhases = [0, 2, 3, 4, 5, 6, 7]

    static func randomCyclePhase() -> Int { firstCyclePhases.randomElement()! }

    init(datagramBytes: Int, firstCyclePhase: Int = 2) {
        self.datagramBytes = datagramBytes
        self.firstCyclePhase = firstCyclePhase
    }

    var pacingGain: Double {
        switch mode {
        case .startup: Self.startupGain
        case .drain: Self.drainGain
        // Beside a foreign queue the window, bounded by loss, sets the pace: pacing only spreads it.
        case .probeBandwidth(let phase, _): foreignQueue ? max(Self.probeGains[phase], 1.25) : Self.probeGains[phase]
        case .probeRoundTrip: 1
        }
    }

    /// Bytes the path holds in flight: bandwidth × propagation delay.
    var pathBytes: Double? {
        guard let bandwidth, let minRoundTrip else { return nil }
        return bandwidth * Double(minRoundTrip) / 1e9
    }

    /// A host's own delay beyond the path's: a busy receiver's batching can make the round
    /// trip several milliseconds longer than its minimum with no queue in the path. A
    /// round trip longer still shows a queue (startup ends on it).
    static let hostDelayAllowance: Int64 = 20_000_000

    /// The most delay beyond the path's own that the window makes room for. Alone, a
    /// transfer drains its own queue (below); beside a flow that keeps the queue full (TCP
    /// with CUBIC), this is what lets it keep a share: 60 ms of its rate in flight.
    static let queueAllowance: Int64 = 60_000_000

    /// The round trip beyond the path's own that the window makes room for: the least one
    /// seen over the last rounds (each cycle's slow phase lets a queue of ours drain, a
    /// host's own delay stays), at most `queueAllowance`.
    private var hostDelay: Int64 {
        guard let minRoundTrip, let lowest = lowRoundTrips.map(\.roundTrip).min() else { return 0 }
        return min(max(lowest - minRoundTrip, 0), Self.queueAllowance)
    }

    /// How many bytes may be in flight.
    var window: Int {
        let floor = Self.minimumWindowDatagrams * datagramBytes
        if case .probeRoundTrip = mode { return floor }
        guard let pathBytes, let bandwidth else { return Self.initialWindowDatagrams * datagramBytes }
        let gain = mode == .startup ? Self.startupGain : Self.windowGain
        let burst = ackBursts.map(\.bytes).max() ?? 0
        // The gain applies to the path, not to the host's delay: a queue of our own, taken
        // for host delay, then drains instead of justifying itself. While probing up, a few
        // datagrams more: the same for every flow, so a flow with the smaller share gains
        // the larger part of its own (additive increase), which evens out flows that keep
        // the window full.
        var probe = 0
        if case .probeBandwidth(0, _) = mode { probe = Self.probeWindowDatagrams * datagramBytes }
        let delayBound = max(Int(gain * pathBytes + bandwidth * Double(hostDelay) / 1e9) + 2 * burst + probe, floor)
        return foreignQueue ? max(inflightHigh, floor) : delayBound
    }

    /// Bytes per second to pace at, given the smoothed round trip for the first guess.
    func pacingRate(smoothedRoundTrip: Int64) -> Double {
        if let bandwidth { return pacingGain * bandwidth }
        let roundTrip = Double(max(minRoundTrip ?? smoothedRoundTrip, 1_000))
        return Self.startupGain * Double(Self.initialWindowDatagrams * datagramBytes) * 1e9 / roundTrip
    }

    /// A datagram numbered `number` left; `inFlight`: bytes in flight before it.
    mutating func sent(number: UInt64, inFlight: Int, now: Int64) {
        if round == 0 { firstWindowBytes += UInt64(datagramBytes) }
        if inFlight == 0 {
            firstSentTime = now
            deliveredTime = now
        }
        trackedInFlight = inFlight + datagramBytes
        roundInFlight = max(roundInFlight, trackedInFlight)
        sendStates[number] = SendState(
            number: number, delivered: delivered, deliveredTime: deliveredTime, firstSentTime: firstSentTime,
            sentTime: now, round: round, pacingRate: bandwidth.map { pacingGain * $0 } ?? .infinity)
    }

    /// An acknowledgement arrived. `ackedBytes`: bytes it newly acknowledged;
    /// `largestAcknowledged`/`nextNumber`: datagram numbers, for counting rounds;
    /// `roundTrip`: a sample if the acknowledgement gave one; `inFlight`: bytes still in
    /// flight; `appLimited`: the sender had nothing more to send (no rate sample then,
    /// unless it raises the estimate).
    mutating func acknowledged(bytes ackedBytes: Int, largestAcknowledged: UInt64, nextNumber: UInt64,
                               roundTrip: Int64?, inFlight: Int, appLimited: Bool, now: Int64) {
        roundLost += max(trackedInFlight - ackedBytes - inFlight, 0)
        roundDelivered += ackedBytes
        trackedInFlight = inFlight
        if let roundTrip, roundTrip > 0 {
            roundLeast = min(roundLeast ?? roundTrip, roundTrip)
            recentRoundTrip = recentRoundTrip.map { ($0 * 7 + roundTrip) / 8 } ?? roundTrip
            lowRoundTrips.removeAll { round - $0.round >= Self.bandwidthRounds }
            if let last = lowRoundTrips.last, last.round == round {
                lowRoundTrips[lowRoundTrips.count - 1].roundTrip = min(last.roundTrip, roundTrip)
            } else {
                lowRoundTrips.append((round, roundTrip))
            }
            if case .probeRoundTrip = mode { probeMinRoundTrip = min(probeMinRoundTrip ?? roundTrip, roundTrip) }
            if minRoundTrip == nil || roundTrip <= minRoundTrip! {
                minRoundTrip = roundTrip
                minRoundTripStamp = now
            }
        }
        var roundStarted = false
        if largestAcknowledged >= roundEndsAfter {
            endRound(now: now)
            round += 1
            roundEndsAfter = nextNumber
            roundStarted = true
        }
        guard ackedBytes > 0 else { return advanceMode(inFlight: inFlight, now: now) }
        delivered += UInt64(ackedBytes)
        deliveredTime = now
        ackBursts.removeAll { round - $0.round >= Self.bandwidthRounds }
        if ackBursts.isEmpty || ackedBytes > ackBursts.last!.bytes { ackBursts.append((round, ackedBytes)) }
        sampleRate(largestAcknowledged: largestAcknowledged, now: now, appLimited: appLimited)
        // The queue shows within a round (which lasts as long as the queue does); the growth within one only at its end.
        if roundStarted || queueShows { checkFullPipe(appLimited: appLimited) }
        advanceMode(inFlight: inFlight, now: now)
    }

    /// The delivery rate since the newest acknowledged datagram was sent: delivered bytes
    /// over the longer of its send and acknowledgement intervals (so that bursts of
    /// acknowledgements do not inflate it).
    private mutating func sampleRate(largestAcknowledged: UInt64, now: Int64, appLimited: Bool) {
        let state = sendStates[largestAcknowledged]
        guard state.number == largestAcknowledged, state.number != 0 else { return }
        // The first window leaves at once, before any acknowledgement: a shaper's bucket
        // (tbf's burst) may pass it whole, and a rate that counts its delivery would be
        // many times the path's, which startup then pours into the queue. Rates count for
        // datagrams sent once the whole first window was delivered, or in round 2 and on.
        guard state.round >= 2 || (state.round == 1 && state.delivered >= firstWindowBytes) else { return }
        firstSentTime = state.sentTime
        let interval = max(state.sentTime - state.firstSentTime, now - state.deliveredTime)
        // Shorter than a round trip, the sample measures the receiver's bursts, not the path.
        guard interval > 0, interval >= (minRoundTrip ?? 0) else { return }
        // No faster than the datagram was paced: a window-limited flow (ProbeRTT's four
        // datagrams) sends each as an acknowledgement returns, and a shaper that was idle
        // lets such a trickle through at its line's speed, not at the rate it sustains.
        let rate = min(Double(delivered - state.delivered) * 1e9 / Double(interval), state.pacingRate)
        guard !appLimited || rate > (bandwidth ?? 0) else { return }
        // A windowed maximum: the best sample of each of the last 10 rounds.
        bandwidthSamples.removeAll { round - $0.round >= Self.bandwidthRounds }
        if let last = bandwidthSamples.last, last.round == round {
            bandwidthSamples[bandwidthSamples.count - 1].rate = max(last.rate, rate)
        } else {
            bandwidthSamples.append((round, rate))
        }
        bandwidth = bandwidthSamples.map(\.rate).max()
    }

    /// Startup ends when three rounds in a row grew the bandwidth by less than a quarter, or
    /// when the round trip shows a queue longer than a host's own delay: on a deep queue the
    /// bandwidth keeps "growing" for rounds after the link is full, and startup's window
    /// would fill the queue before the three rounds are up.
    private mutating func checkFullPipe(appLimited: Bool) {
        guard !filledPipe, !appLimited, let bandwidth else { return }
        if queueShows {
            filledPipe = true
            return
        }
        if bandwidth >= fullBandwidth * 1.25 {
            fullBandwidth = bandwidth
            roundsWithoutGrowth = 0
            return
        }
        roundsWithoutGrowth += 1
        if roundsWithoutGrowth >= 3 { filledPipe = true }
    }

    /// The recent round trip is longer than the minimum by more than a host's own delay.
    private var queueShows: Bool {
        guard let minRoundTrip, let recentRoundTrip else { return false }
        return recentRoundTrip - minRoundTrip > Self.hostDelayAllowance
    }

    /// Loss beyond this share of a round's bytes is a full queue's, not the path's noise.
    static let lossThreshold = 0.02
    /// How long `inflightHigh` holds after a loss before it probes up again (BBRv2: 2–3 s).
    static let lossHold: Int64 = 1_000_000_000

    /// At the end of each round: whether a queue stands that the window cannot account
    /// for, and while one does, `inflightHigh` down by 30% after a round with loss (as
    /// CUBIC's decrease), else up by 1, 2, 4, ... datagrams a round once the hold is over.
    private mutating func endRound(now: Int64) {
        defer {
            roundLeast = nil
            roundDelivered = 0
            roundLost = 0
            roundInFlight = trackedInFlight
        }
        guard let minRoundTrip, let bandwidth, let least = roundLeast else { return }
        if case .probeRoundTrip = mode { return }
        let queue = least - minRoundTrip
        let lossy = Double(roundLost) > Self.lossThreshold * Double(roundDelivered + roundLost)
        // A loss-based flow loses a few datagrams when it overflows the queue, once in
        // seconds: any loss with a queue standing is one.
        let overflow = roundLost > 0 && queue > Self.hostDelayAllowance
        let floor = Self.minimumWindowDatagrams * datagramBytes
        if !foreignQueue {
            // The most queue this flow could build by itself: what it holds (or may hold)
            // beyond the path's product, at its rate.
            let own = Int64(Double(max(window, roundInFlight)) / bandwidth * 1e9) - minRoundTrip
            unexplainedRounds = queue > max(own, 0) + Self.hostDelayAllowance ? unexplainedRounds + 1 : 0
            // Loss with a queue standing is a full queue; random loss comes without one.
            guard unexplainedRounds >= 2 || overflow else { return }
            return enterForeignQueue(roundTrip: least, hold: overflow, now: now)
        }
        if lossy, now >= holdUntil - Self.lossHold + minRoundTrip + least {
            // Once per loss episode, as TCP cuts once per window: the queue stays full for a round trip or two.
            inflightHigh = max(Int(0.7 * Double(min(inflightHigh, roundInFlight))), floor)
            inflightGrowth = 1
            holdUntil = now + Self.lossHold
        } else if now >= holdUntil, roundInFlight * 8 >= inflightHigh * 7 {
            // Only a bound that held the flow back grows, by at most half a round.
            inflightHigh += min(inflightGrowth * datagramBytes, inflightHigh / 2)
            inflightGrowth *= 2
        }
    }

    private mutating func enterForeignQueue(roundTrip: Int64, hold: Bool, now: Int64) {
        guard let bandwidth else { return }
        foreignQueue = true
        filledPipe = true
        // Half of what the estimate carries over the round trip the queue makes.
        inflightHigh = max(window, Int(bandwidth * Double(roundTrip) / 1e9 / 2),
                           Self.minimumWindowDatagrams * datagramBytes)
        inflightGrowth = 1
        holdUntil = hold ? now + Self.lossHold : now
    }

    private mutating func advanceMode(inFlight: Int, now: Int64) {
        switch mode {
        case .startup:
            // Beside a foreign queue there is no queue of its own to drain.
            if filledPipe { mode = foreignQueue ? .probeBandwidth(phase: firstCyclePhase, since: now) : .drain }
        case .drain:
            if Double(inFlight) <= pathBytes ?? 0 || foreignQueue {
                mode = .probeBandwidth(phase: firstCyclePhase, since: now)
            }
        case .probeBandwidth(let phase, let since):
            // A phase lasts a round trip as the host sees it: on a busy host the minimum is
            // far shorter, and a probe that short would not show in the delivery rate.
            let phaseLength = max(minRoundTrip ?? 0, min(recentRoundTrip ?? 0, (minRoundTrip ?? 0) + Self.hostDelayAllowance))
            var next = phase
            if now - since >= phaseLength {
                // 1.25 lasts until the queue it builds shows; 0.75 until what is in flight fits the path.
                if phase == 0 { next = 1 }
                else if phase == 1 { next = Double(inFlight) <= pathBytes ?? 0 || now - since >= 2 * phaseLength ? 2 : 1 }
                else { next = (phase + 1) % Self.probeGains.count }
            }
            if next != phase { mode = .probeBandwidth(phase: next, since: now) }
            if now - minRoundTripStamp > (probedRoundTrip ? Self.minRoundTripLifetime : Self.firstMinRoundTripLifetime) {
                mode = .probeRoundTrip(until: nil)
                probeMinRoundTrip = nil
            }
        case .probeRoundTrip(let until):
            if until == nil, inFlight <= window {
                mode = .probeRoundTrip(until: now + max(Self.probeRoundTripDuration, minRoundTrip ?? 0))
            } else if let until, now >= until {
                if let probeMinRoundTrip {
                    if probeMinRoundTrip <= (minRoundTrip ?? 0) + Self.hostDelayAllowance {
                        minRoundTrip = probeMinRoundTrip
                        foreignQueue = false
                        unexplainedRounds = 0
                    } else if filledPipe {
                        // A queue that did not drain while this flow held four datagrams is
                        // someone else's: the path's delay is what it was.
                        if !foreignQueue { enterForeignQueue(roundTrip: probeMinRoundTrip, hold: false, now: now) }
                    } else {
                        minRoundTrip = probeMinRoundTrip
                    }
                }
                probedRoundTrip = true
                minRoundTripStamp = now
                mode = filledPipe ? .probeBandwidth(phase: 2, since: now) : .startup
            }
        }
    }
}
