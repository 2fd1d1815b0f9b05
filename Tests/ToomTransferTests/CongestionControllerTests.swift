import Testing
import ToomTestSupport
@testable import ToomTransfer

/// The controller against a simulated path: a bottleneck of fixed rate with a drop-tail
/// queue, a propagation delay each way, and random loss. Each flow paces and windows as
/// the sender does; every datagram is acknowledged on arrival. Seconds of traffic run in
/// milliseconds.
@Suite struct CongestionControllerTests {
    struct Path {
        /// Bottleneck rate, bytes per second.
        var rate: Double
        /// One-way propagation delay, nanoseconds.
        var delay: Int64
        /// What the bottleneck queue holds, in nanoseconds of its rate.
        var queue: Int64
        var loss: Double = 0
        /// Bytes a token bucket (tbf's burst) lets through at once after a pause.
        var burst: Double = 0
    }

    struct FlowResult {
        /// Delivered bytes per second after the first `warmUp`.
        var goodput: Double
        /// Datagrams the full queue dropped, as a share of those sent.
        var queueDrops: Double
        /// Whether the controller ever took the queue for another flow's (`foreignQueue`).
        var sawForeignQueue = false
    }

    struct Outcome {
        var flows: [FlowResult]
        /// Mean and 99th-percentile time datagrams waited in the bottleneck queue after warm-up.
        var meanQueueing: Int64
        var p99Queueing: Int64
    }

    static let datagram = 1472

    /// Runs `flows` flows (starting `stagger` apart) through `path` for `duration`;
    /// the first at `start`; `lossBased`: when a loss-based flow (TCP with Reno's window and CUBIC's decrease,
    /// not paced) starts beside them, last in the outcome.
    func simulate(_ path: Path, flows count: Int = 1, duration: Int64 = 8_000_000_000,
                  warmUp: Int64 = 3_000_000_000, stagger: Int64 = 0, seed: UInt64 = 7,
                  lossBased: Int64? = nil, start: Int64 = 0) -> Outcome {
        struct Flow {
            var controller: CongestionController
            /// A loss-based flow's window, bytes; its slow-start threshold; the number
            /// below which a loss belongs to the last decrease.
            var tcpWindow: Double?
            var threshold = Double.infinity
            var recoveryEnds: UInt64 = 0

            var window: Int { tcpWindow.map { Int($0) } ?? controller.window }
            var inFlight = 0
            var nextNumber: UInt64 = 1
            var nextSend: Int64
            var delivered = 0
            var sent = 0
            var dropped = 0
            var sawForeignQueue = false
        }
        struct Ack {
            var at: Int64
            var flow: Int
            var number: UInt64
            var sentAt: Int64
            var lost: Bool
        }
        var random = SeededRandom(seed: seed)
        let phases = CongestionController.firstCyclePhases
        var flows = (0..<count).map { index in
            Flow(controller: CongestionController(datagramBytes: Self.datagram,
                                                  firstCyclePhase: phases[Int(random.next() % UInt64(phases.count))]),
                 nextSend: start + Int64(index) * stagger)
        }
        if let lossBased {
            flows.append(Flow(controller: CongestionController(datagramBytes: Self.datagram),
                              tcpWindow: Double(10 * Self.datagram), nextSend: lossBased))
        }
        var acks: [Ack] = []
        var ackHead = 0
        var linkFreeAt: Int64 = 0
        var queueing: [Int64] = []
        let serialization = Int64(Double(Self.datagram) * 1e9 / path.rate)
        let burstTime = Int64(path.burst * 1e9 / path.rate)
        let queueLimit = path.queue
        var now: Int64 = 0
        while now < duration {
            while ackHead < acks.count, acks[ackHead].at <= now {
                let ack = acks[ackHead]
                ackHead += 1
                flows[ack.flow].inFlight -= Self.datagram
                if var window = flows[ack.flow].tcpWindow {
                    if ack.lost, ack.number >= flows[ack.flow].recoveryEnds {
                        window = max(window * 0.7, Double(2 * Self.datagram))
                        flows[ack.flow].threshold = window
                        flows[ack.flow].recoveryEnds = flows[ack.flow].nextNumber
                    } else if !ack.lost {
                        window += window < flows[ack.flow].threshold
                            ? Double(Self.datagram) : Double(Self.datagram * Self.datagram) / window
                    }
                    flows[ack.flow].tcpWindow = window
                }
                guard !ack.lost else { continue }
                if ack.sentAt >= warmUp { flows[ack.flow].delivered += Self.datagram }
                guard flows[ack.flow].tcpWindow == nil else { continue }
                let nextNumber = flows[ack.flow].nextNumber, inFlight = flows[ack.flow].inFlight
                flows[ack.flow].controller.acknowledged(
                    bytes: Self.datagram, largestAcknowledged: ack.number, nextNumber: nextNumber,
                    roundTrip: ack.at - ack.sentAt, inFlight: inFlight, appLimited: false, now: ack.at)
                if flows[ack.flow].controller.foreignQueue { flows[ack.flow].sawForeignQueue = true }
            }
            for index in flows.indices where flows[index].nextSend <= now {
                while flows[index].nextSend <= now, flows[index].inFlight + Self.datagram <= flows[index].window {
                    let sentAt = now
                    flows[index].inFlight += Self.datagram
                    flows[index].sent += 1
                    let number = flows[index].nextNumber
                    flows[index].nextNumber += 1
                    flows[index].controller.sent(number: number, inFlight: flows[index].inFlight - Self.datagram, now: now)
                    if flows[index].tcpWindow == nil {
                        let rate = flows[index].controller.pacingRate(smoothedRoundTrip: 2 * path.delay)
                        flows[index].nextSend = max(flows[index].nextSend, now - 1_000_000) + Int64(Double(Self.datagram) * 1e9 / rate)
                    }
                    // The link as a token bucket: `linkFreeAt` is when its debt would clear;
                    // a datagram leaves once the debt beyond it fits in the burst.
                    let finish = max(linkFreeAt, sentAt) + serialization
                    let wait = max(finish - serialization - burstTime - sentAt, 0)
                    var departure = max(sentAt, finish - burstTime)
                    var lost = Double(random.next() % 1_000_000) / 1e6 < path.loss
                    if wait > queueLimit {
                        // Dropped at the tail; the sender learns of it about a round trip later.
                        lost = true
                        departure = sentAt
                        flows[index].dropped += 1
                    } else {
                        linkFreeAt = finish
                        if sentAt >= warmUp { queueing.append(wait) }
                    }
                    let ack = Ack(at: departure + 2 * path.delay, flow: index, number: number,
                                  sentAt: sentAt, lost: lost)
                    // Keep them in time order (a drop's notice can come before queued datagrams').
                    var position = acks.count
                    while position > ackHead, acks[position - 1].at > ack.at { position -= 1 }
                    acks.insert(ack, at: position)
                }
            }
            if ackHead > 4096 {
                acks.removeFirst(ackHead)
                ackHead = 0
            }
            var next = Int64.max
            if ackHead < acks.count { next = acks[ackHead].at }
            for flow in flows where flow.inFlight + Self.datagram <= flow.window {
                next = min(next, max(flow.nextSend, now + 1))
            }
            guard next != .max else { break }
            now = max(next, now + 1)
        }
        queueing.sort()
        let span = Double(duration - warmUp) / 1e9
        return Outcome(
            flows: flows.map { FlowResult(goodput: Double($0.delivered) / span,
                                          queueDrops: Double($0.dropped) / Double(max($0.sent, 1)),
                                          sawForeignQueue: $0.sawForeignQueue) },
            meanQueueing: queueing.isEmpty ? 0 : queueing.reduce(0, +) / Int64(queueing.count),
            p99Queueing: queueing.isEmpty ? 0 : queueing[queueing.count * 99 / 100])
    }

    /// Forty rounds of a steady path: `datagramsPerRound` sent 142 µs apart (10 MB/s of
    /// 1,420-byte datagrams), acknowledged together one round trip later. Returns the next
    /// datagram number less one and the time.
    @discardableResult
    static func cruise(_ controller: inout CongestionController, roundTrip: Int64,
                       datagramsPerRound count: Int) -> (number: UInt64, now: Int64) {
        var number: UInt64 = 0
        var now: Int64 = 0
        let bytes = count * 10_000 / 7
        for _ in 0..<40 {
            for offset in 1...count {
                controller.sent(number: number + UInt64(offset), inFlight: bytes, now: now + Int64(offset) * 142_000)
            }
            now += roundTrip
            number += UInt64(count)
            controller.acknowledged(bytes: bytes, largestAcknowledged: number, nextNumber: number + UInt64(count),
                                    roundTrip: roundTrip, inFlight: bytes, appLimited: false, now: now)
        }
        return (number, now)
    }

    /// 10 Mbit/s: slow enough to simulate seconds of it in milliseconds.
    static let tenMegabits = 1_250_000.0

    /// 10 Mbit/s, 20 ms round trip, a queue of 200 ms: the rate is used, the queue stays short.
    @Test func aBottleneckIsFilledWithoutFillingItsQueue() {
        let outcome = simulate(Path(rate: Self.tenMegabits, delay: 10_000_000, queue: 200_000_000))
        let flow = outcome.flows[0]
        #expect(flow.goodput >= 0.9 * Self.tenMegabits, "\(flow.goodput)")
        #expect(!flow.sawForeignQueue)
        #expect(outcome.meanQueueing <= 25_000_000, "\(outcome.meanQueueing)")
        #expect(outcome.p99Queueing <= 50_000_000, "\(outcome.p99Queueing)")
        #expect(flow.queueDrops <= 0.05, "\(flow.queueDrops)")
    }

    /// Startup on a deep queue and a path of almost no delay: it ends once the queue shows
    /// in the round trip, instead of filling the queue before the bandwidth stops "growing".
    @Test func startupDoesNotFillADeepQueue() {
        let outcome = simulate(Path(rate: Self.tenMegabits, delay: 50_000, queue: 200_000_000), warmUp: 0)
        #expect(outcome.p99Queueing <= 50_000_000, "\(outcome.p99Queueing)")
        #expect(outcome.flows[0].queueDrops == 0, "\(outcome.flows[0].queueDrops)")
        #expect(outcome.flows[0].goodput >= 0.9 * Self.tenMegabits, "\(outcome.flows[0].goodput)")
    }

    /// The first window leaves before any acknowledgement, and a shaper's bucket (tbf's
    /// burst) may deliver it whole at once: that rate is not the path's. Seen on the
    /// `network` benchmark's path as a first estimate of 82 MB/s on a 12.5 MB/s link, which
    /// startup poured into the queue (thousands of drops, round trips of 250 ms).
    @Test func theFirstWindowsDeliveryRateDoesNotCount() {
        let datagram = Self.datagram
        var controller = CongestionController(datagramBytes: datagram)
        for number in 1...32 { controller.sent(number: UInt64(number), inFlight: (number - 1) * datagram, now: 0) }
        controller.acknowledged(bytes: 32 * datagram, largestAcknowledged: 32, nextNumber: 33, roundTrip: 600_000,
                                inFlight: 0, appLimited: false, now: 600_000)
        #expect(controller.bandwidth == nil)
        // The next window, paced through the link, is measured: 47 KB in 4 ms.
        for number in 33...64 {
            controller.sent(number: UInt64(number), inFlight: (number - 33) * datagram,
                            now: 600_000 + Int64(number - 33) * 100_000)
        }
        controller.acknowledged(bytes: 32 * datagram, largestAcknowledged: 64, nextNumber: 65, roundTrip: 1_000_000,
                                inFlight: 0, appLimited: false, now: 4_600_000)
        let expected = 32 * Double(datagram) / 0.004
        #expect(controller.bandwidth.map { abs($0 - expected) < 1 } == true, "\(String(describing: controller.bandwidth))")
    }

    /// A shaper's bucket passes a burst at the line's speed whenever the flow paused or
    /// slowed (startup's first rounds, drain, a probe down): a delivery rate measured on
    /// it is many times the path's. The `network` benchmark's path (100 Mbit/s, a burst of
    /// 4 ms, almost no delay) showed it as round trips of 200 ms and hundreds of drops in
    /// about one run in three.
    @Test func aShapersBurstDoesNotFillTheQueue() {
        let rate = 12_500_000.0
        let outcome = simulate(Path(rate: rate, delay: 50_000, queue: 200_000_000, burst: rate * 0.004),
                               duration: 4_000_000_000, warmUp: 0)
        #expect(outcome.p99Queueing <= 50_000_000, "\(outcome.p99Queueing)")
        #expect(outcome.flows[0].queueDrops == 0, "\(outcome.flows[0].queueDrops)")
        #expect(outcome.flows[0].goodput >= 0.9 * rate, "\(outcome.flows[0].goodput)")
    }

    /// A few datagrams that an idle shaper passes at its line's speed (ProbeRTT's window of
    /// four, sent as each acknowledgement returns) measure the line, not the path: no
    /// sample counts for more than the rate it was paced at. Seen on the `network`
    /// benchmark as 59 MB/s after a ProbeRTT on a 12.5 MB/s path, and a full queue.
    @Test func aTrickleThroughAnIdleShaperDoesNotRaiseTheEstimate() {
        var controller = CongestionController(datagramBytes: Self.datagram)
        // A path of 10 MB/s and 1 ms: every round trip delivers 10 kB.
        var (number, now) = Self.cruise(&controller, roundTrip: 1_000_000, datagramsPerRound: 7)
        let before = controller.bandwidth ?? 0
        #expect(abs(before - 10_000_000) < 1_000_000, "\(before)")
        // Four datagrams at once, acknowledged together 50 µs later.
        for offset in 1...4 { controller.sent(number: number + UInt64(offset), inFlight: 0, now: now) }
        number += 4
        controller.acknowledged(bytes: 4 * Self.datagram, largestAcknowledged: number, nextNumber: number + 1,
                                roundTrip: 50_000, inFlight: 0, appLimited: false, now: now + 50_000)
        #expect((controller.bandwidth ?? 0) <= 1.25 * before, "\(String(describing: controller.bandwidth)) after \(before)")
    }

    /// A queue the transfer built itself does not hold its window open: the window makes
    /// room for the least round trip of the last rounds, which each cycle's slow phase
    /// brings down, not for the smoothed one the queue keeps long. (Counting the smoothed
    /// one kept a 40 ms queue standing in about half the `network` benchmark's runs.)
    @Test func aQueueOfItsOwnDoesNotHoldTheWindowOpen() {
        var controller = CongestionController(datagramBytes: Self.datagram)
        // Seven datagrams (10 kB) leave every millisecond: 10 MB/s. The path takes 1 ms;
        // from 100 ms on a queue makes it 30 ms, but for what leaves around 400 ms (2 ms).
        func roundTrip(sentAt time: Int64) -> Int64 {
            time < 100_000_000 ? 1_000_000 : (400_000_000..<403_000_000).contains(time) ? 2_000_000 : 30_000_000
        }
        var pending: [(at: Int64, number: UInt64, sentAt: Int64)] = []
        var number: UInt64 = 0
        for step in 0..<650 {
            let now = Int64(step) * 1_000_000
            for ack in pending.filter({ $0.at <= now }) {
                controller.acknowledged(bytes: 7 * Self.datagram, largestAcknowledged: ack.number, nextNumber: number + 1,
                                        roundTrip: now - ack.sentAt, inFlight: pending.count * 7 * Self.datagram,
                                        appLimited: false, now: now)
            }
            pending.removeAll { $0.at <= now }
            for _ in 0..<7 {
                number += 1
                controller.sent(number: number, inFlight: pending.count * 7 * Self.datagram, now: now)
            }
            pending.append((now + roundTrip(sentAt: now), number, now))
        }
        // Twice the path's 10 kB, 10 kB for the 1 ms beyond it, and two acknowledgements:
        // about a tenth of the 600 kB that twice the queue's round trip would give.
        let bandwidth = controller.bandwidth ?? 0
        #expect(abs(bandwidth - 10_000_000) < 1_500_000, "\(bandwidth)")
        #expect(controller.window <= 70_000, "\(controller.window)")
    }

    /// Two transfers started together through a shaper share it within seconds: neither
    /// takes a burst the bucket passed for the path, and the few datagrams each adds to its
    /// window while probing up are a larger part of the smaller share's (1:2 for good
    /// without them, their windows full and in proportion to their estimates).
    @Test func twoFlowsStartedTogetherShareAShaper() {
        let rate = 12_500_000.0
        let outcome = simulate(Path(rate: rate, delay: 50_000, queue: 200_000_000, burst: rate * 0.004), flows: 2,
                               duration: 6_000_000_000, warmUp: 1_000_000_000, stagger: 200_000, seed: 2)
        for flow in outcome.flows {
            #expect(flow.goodput >= 0.35 * rate, "\(outcome.flows.map(\.goodput))")
            // Each other's queue drains in their slow phases and never overflows: not a buffer-filler's.
            #expect(!flow.sawForeignQueue)
        }
        #expect(outcome.p99Queueing <= 100_000_000, "\(outcome.p99Queueing)")
    }

    /// 10% random loss is not congestion: the rate holds (less the loss itself).
    @Test func randomLossIsNotReadAsCongestion() {
        let clean = simulate(Path(rate: Self.tenMegabits, delay: 10_000_000, queue: 200_000_000)).flows[0]
        let lossy = simulate(Path(rate: Self.tenMegabits, delay: 10_000_000, queue: 200_000_000, loss: 0.1)).flows[0]
        #expect(lossy.goodput >= 0.8 * clean.goodput, "\(lossy.goodput) vs \(clean.goodput)")
        // Loss without a standing queue is not a buffer-filler's.
        #expect(!lossy.sawForeignQueue)
    }

    /// A path as fast as loopback with almost no delay: the controller never holds the flow back.
    @Test func aFastShortPathIsNotHeldBack() {
        let rate = 1e9
        let outcome = simulate(Path(rate: rate, delay: 20_000, queue: 1_000_000), duration: 30_000_000,
                               warmUp: 10_000_000)
        #expect(outcome.flows[0].goodput >= 0.9 * rate, "\(outcome.flows[0].goodput)")
    }

    /// Two transfers sharing the bottleneck share it. Together they overestimate it a little
    /// (BBR v1's known trait) and keep a standing queue, which the window bounds.
    @Test func twoFlowsShareABottleneck() {
        let outcome = simulate(Path(rate: Self.tenMegabits, delay: 10_000_000, queue: 200_000_000), flows: 2,
                               duration: 16_000_000_000, warmUp: 8_000_000_000, stagger: 1_000_000_000)
        for flow in outcome.flows {
            #expect(flow.goodput >= 0.35 * Self.tenMegabits, "\(outcome.flows.map(\.goodput))")
            #expect(!flow.sawForeignQueue)
        }
        #expect(outcome.p99Queueing <= 100_000_000, "\(outcome.p99Queueing)")
    }

    /// A transfer that starts while another is still in startup sees the first one's
    /// queue as propagation delay, and its window would keep the first starved; its early
    /// fresh look at the delay (after 2.5 s, not 10) lets the two share.
    @Test func aFlowStartingIntoAnothersQueueDoesNotStarveIt() {
        let outcome = simulate(Path(rate: Self.tenMegabits, delay: 1_000_000, queue: 200_000_000), flows: 2,
                               duration: 10_000_000_000, warmUp: 3_000_000_000, stagger: 5_000_000)
        for flow in outcome.flows {
            #expect(flow.goodput >= 0.35 * Self.tenMegabits, "\(outcome.flows.map(\.goodput))")
        }
    }

    /// A transfer that starts while a loss-based flow (TCP with CUBIC) keeps the queue
    /// full: 100 Mbit/s, 200 ms of queue, almost no delay, as on the `network` benchmark's
    /// path. The transfer gets a share; the TCP flow keeps one.
    @Test func aTransferJoiningALossBasedFlowsStandingQueueGetsAShare() {
        let rate = 12_500_000.0
        let outcome = simulate(Path(rate: rate, delay: 50_000, queue: 200_000_000, burst: rate * 0.004),
                               duration: 26_000_000_000, warmUp: 6_000_000_000, lossBased: 0, start: 5_000_000_000)
        #expect(outcome.flows[0].goodput >= 0.3 * rate, "\(outcome.flows.map(\.goodput))")
        #expect(outcome.flows[1].goodput >= 0.3 * rate, "\(outcome.flows.map(\.goodput))")
        #expect(outcome.flows[0].sawForeignQueue)
    }

    /// The same with the transfer first: the loss-based flow comes to a path the transfer
    /// had to itself.
    @Test func aLossBasedFlowJoiningATransferLeavesItAShare() {
        let rate = 12_500_000.0
        let outcome = simulate(Path(rate: rate, delay: 50_000, queue: 200_000_000, burst: rate * 0.004),
                               duration: 26_000_000_000, warmUp: 6_000_000_000, lossBased: 3_000_000_000)
        #expect(outcome.flows[0].goodput >= 0.3 * rate, "\(outcome.flows.map(\.goodput))")
        #expect(outcome.flows[1].goodput >= 0.3 * rate, "\(outcome.flows.map(\.goodput))")
        #expect(outcome.flows[0].sawForeignQueue)
    }

    /// Startup finds the bandwidth within a few round trips and drains what it queued.
    @Test func startupEndsAndTheWindowFollowsThePath() {
        var controller = CongestionController(datagramBytes: Self.datagram)
        // A path of 10 MB/s and 10 ms: every round trip delivers 100 kB.
        Self.cruise(&controller, roundTrip: 10_000_000, datagramsPerRound: 70)
        #expect(controller.mode != .startup && controller.mode != .drain)
        let bandwidth = controller.bandwidth ?? 0
        #expect(abs(bandwidth - 10_000_000) < 1_000_000, "\(bandwidth)")
        #expect(controller.window >= 200_000 && controller.window <= 600_000, "\(controller.window)")
    }
}
