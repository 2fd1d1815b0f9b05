import ToomCore
import NIOCore

/// The sending side of one transfer. Lives on the endpoint's event loop; only its file
/// reads run on the thread pool, one block at a time.
final class Sender: @unchecked Sendable {
    private enum Phase {
        /// START (and size probes) sent, waiting for ACCEPT.
        case starting
        /// Accepted; waiting a few round trips for the size probes' answers.
        case probing(rounds: Int)
        case sending
        /// Every segment acknowledged, FINISH sent, waiting for DONE.
        case finishing
        case over
    }

    /// Probe rounds after ACCEPT before settling for the largest size confirmed so far.
    static let probeRounds = 3

    let id: UInt64
    /// Where datagrams go: the first candidate until an ACCEPT names the path.
    private(set) var peer: SocketAddress
    private var paths: PathFinder
    private(set) var path: TransferPath?
    let handle: OutgoingTransfer
    private let token: TransferToken
    private let name: String
    private let file: SourceFile
    let cipher: PacketCipher
    private unowned let engine: TransferEngine
    private let promise: EventLoopPromise<TransferSummary>
    private var phase = Phase.starting
    /// Known once the datagram size is settled.
    private var layout: FileLayout!
    private var scoreboard: SendScoreboard!
    private var roundTrip = RoundTripEstimator()
    private var controller: CongestionController!
    /// Pacing: bytes that may leave now (a token bucket filled at the pacing rate).
    private var pacingCredit: Double = 0
    private var pacingRefilled: Int64 = 0
    private var pacingTimer: Scheduled<Void>?
    /// Whether the last pump ran out of data to send (flow control, the disk) rather than
    /// out of window or pacing credit: rate samples then understate the path.
    private var appLimited = false
    private var replay = ReplayWindow()
    /// Numbers for datagrams sent before the scoreboard exists.
    private var nextNumber: UInt64 = 1
    private var resumeFrom: UInt64 = 0
    private var initialWindowBytes: UInt64 = 0
    private var flowLimit: UInt64 = 0
    /// The largest datagram the receiver confirmed, and the one the transfer uses.
    private var confirmedDatagram = TransferPacket.baseDatagram
    private var datagramSize = TransferPacket.baseDatagram
    /// The sizes probed, largest first: what the route to the peer allows and the common
    /// path sizes below it. Known once the path is.
    private var probeCandidates: [Int] = []
    /// Blocks read and not yet fully acknowledged, by block index modulo the ring size.
    private var blocks: [Block?]
    private var nextBlockToRead: UInt64 = 0
    private var reading = false
    private let startedAt: Int64
    private var lastHeard: Int64
    private var probeDeadline: Int64
    private var backoff: Int64 = 1
    private var datagrams: UInt64 = 0

    init(engine: TransferEngine, file: SourceFile, name: String, token: TransferToken, key: TransferKey,
         paths: PathFinder, handle: OutgoingTransfer, promise: EventLoopPromise<TransferSummary>, now: Int64) {
        self.engine = engine
        self.file = file
        self.name = name
        self.token = token
        self.paths = paths
        peer = paths.direct.first ?? paths.relay!
        self.promise = promise
        cipher = PacketCipher(key: key, encrypts: engine.configuration.encryption)
        id = token.id
        blocks = Array(repeating: nil, count: engine.configuration.sendBufferBlocks + 1)
        self.handle = handle
        startedAt = now
        lastHeard = now
        probeDeadline = now
    }

    /// Sends START to every candidate.
    func start(now: Int64) {
        sendStart(now: now)
    }

    /// Whether a datagram from `source` may be this transfer's: from anywhere that holds
    /// the key until the path is chosen, then from the peer only.
    func accepts(_ source: SocketAddress) -> Bool { path == nil || source == peer }

    // MARK: Datagrams from the receiver

    /// Opens a datagram from the receiver; nil (counted by the caller) if it is forged,
    /// altered or a replay.
    func open(_ bytes: UnsafeRawBufferPointer, _ header: TransferPacket.Header) -> TransferPacket? {
        guard let packet = TransferPacket.open(bytes, header, cipher: cipher), replay.accept(header.number)
        else { return nil }
        return packet
    }

    func accepted(from source: SocketAddress, echo: UInt32, resumeFrom: UInt64, window: UInt64, now: Int64) {
        lastHeard = now
        guard case .starting = phase else { return }
        guard resumeFrom <= file.size else { return cancel("the receiver claims more than the file holds") }
        // The first answer names the path; the size probes follow it.
        peer = source
        path = paths.path(from: source)
        handle.setPath(path!)
        let largest = min(Route.datagramLimit(to: peer) ?? TransferPacket.ethernetDatagram,
                          engine.configuration.maxDatagram)
        probeCandidates = Set([largest] + TransferPacket.commonDatagrams)
            .filter { $0 <= largest && $0 > TransferPacket.baseDatagram }.sorted(by: >)
        sendProbes()
        roundTrip.add(sample: Clock.elapsed(since: echo, now: now))
        self.resumeFrom = resumeFrom
        initialWindowBytes = window
        if resumeFrom > 0 { handle.resuming(resumeFrom) }
        phase = .probing(rounds: 1)
        probeDeadline = now + probeWait
        settleIfProbed(now: now)
    }

    func probeAcknowledged(size: UInt16, now: Int64) {
        lastHeard = now
        guard probeCandidates.contains(Int(size)) else { return }
        confirmedDatagram = max(confirmedDatagram, Int(size))
        settleIfProbed(now: now)
    }

    func acknowledged(_ ack: TransferPacket.Acknowledgement, now: Int64) {
        lastHeard = now
        guard case .sending = phase else { return }
        flowLimit = max(flowLimit, ack.limit)
        var sample: Int64?
        if ack.largestTransmission > scoreboard.largestAcknowledgedTransmission,
           ack.largestTransmission < scoreboard.nextTransmission {
            sample = Clock.elapsed(since: ack.echo, now: now)
            roundTrip.add(sample: sample!)
        }
        let newly = scoreboard.acknowledge(cumulative: ack.cumulative, ranges: ack.ranges,
                                           largestTransmission: ack.largestTransmission,
                                           now: now, lossDelay: roundTrip.lossDelay)
        controller.acknowledged(bytes: newly * datagramSize, largestAcknowledged: scoreboard.largestAcknowledgedTransmission,
                                nextNumber: scoreboard.nextTransmission, roundTrip: sample,
                                inFlight: scoreboard.inFlight * datagramSize, appLimited: appLimited, now: now)
        if newly > 0 {
            backoff = 1
            probeDeadline = now + roundTrip.timeout
            handle.setAcknowledged(min(resumeFrom + scoreboard.cumulative * UInt64(layout.segmentPayload), file.size))
            releaseAcknowledgedBlocks()
            readAhead()
        }
        finishIfComplete(now: now)
        pump(now: now)
    }

    func done(now: Int64) {
        lastHeard = now
        guard case .finishing = phase else { return }
        handle.setAcknowledged(file.size)
        let summary = TransferSummary(bytes: file.size - resumeFrom, resumedFrom: resumeFrom,
                                      nanoseconds: now - startedAt, datagrams: datagrams,
                                      retransmissions: scoreboard.retransmissions, datagramSize: datagramSize)
        end(.success(summary))
    }

    func rejected(_ reason: String) {
        end(.failure(TransferFailure("refused by the receiver: \(reason)")))
    }

    /// Stops for a local reason, telling the receiver.
    func cancel(_ reason: String) {
        guard !isOver else { return }
        send(.cancel(reason: reason))
        end(.failure(TransferFailure(reason)))
    }

    var isOver: Bool {
        if case .over = phase { return true }
        return false
    }

    // MARK: Timers

    /// Called every few milliseconds: gives up after the timeout, probes after the
    /// retransmission timeout (RFC 6298 §5: back off exponentially).
    func tick(now: Int64) {
        let timeout = engine.configuration.timeout.nanoseconds
        if now - lastHeard >= timeout {
            let spelled = engine.configuration.timeout.spelled
            if case .starting = phase, paths.isPeerToPeer, paths.relay == nil {
                cancel("no direct path to the receiver was found within \(spelled), and the server does not relay")
            } else if case .starting = phase {
                cancel("the receiver did not answer within \(spelled)")
            } else {
                cancel("the receiver stopped answering (nothing for \(spelled))")
            }
            return
        }
        if case .sending = phase, scoreboard.detectLosses(now: now, lossDelay: roundTrip.lossDelay) {
            pump(now: now)
        }
        if case .starting = phase { return sendStart(now: now) }
        guard now >= probeDeadline else { return }
        switch phase {
        case .starting, .over:
            return
        case .probing(let rounds):
            if rounds >= Self.probeRounds {
                settle(now: now)
            } else {
                sendProbes()
                phase = .probing(rounds: rounds + 1)
                probeDeadline = now + probeWait
            }
            return
        case .sending:
            if scoreboard.inFlight > 0 {
                // RFC 9002 §7.5: a probe is never blocked by the congestion controller; a
                // window below what is in flight (ProbeRTT's) would otherwise send nothing.
                pump(now: now, probes: scoreboard.declareOldestLost(2))
            } else {
                // Flow-blocked or waiting for the disk: ask for a fresh window.
                send(.ping(timestamp: Clock.stamp(now), segmentSize: UInt16(layout.segmentPayload)),
                     number: scoreboard.takeTransmissionNumber())
            }
        case .finishing:
            sendFinish(now: now)
        }
        backoff = min(backoff * 2, 64)
        probeDeadline = now + min(roundTrip.timeout * backoff, max(timeout / 4, RoundTripEstimator.minimumTimeout))
    }

    // MARK: The datagram size (DPLPMTUD, RFC 8899, on a small scale)

    /// How long a probe round waits for answers.
    private var probeWait: Int64 { max(roundTrip.timeout, RoundTripEstimator.minimumTimeout) }

    private var probeSizes: [Int] { probeCandidates.filter { $0 > confirmedDatagram } }

    private func sendProbes() {
        for size in probeSizes { send(.probe(size: UInt16(size))) }
    }

    /// Settles as soon as the largest size is confirmed.
    private func settleIfProbed(now: Int64) {
        guard case .probing = phase, probeSizes.isEmpty else { return }
        settle(now: now)
    }

    /// Fixes the datagram size and with it the segments; sending begins.
    private func settle(now: Int64) {
        datagramSize = confirmedDatagram
        let configuration = engine.configuration
        let payload = TransferPacket.segmentPayload(datagram: datagramSize)
        let segmentsPerBlock = configuration.segmentsPerBlock(payload: payload)
        layout = FileLayout(size: file.size - resumeFrom, base: resumeFrom, segmentPayload: payload,
                            segmentsPerBlock: segmentsPerBlock)
        scoreboard = SendScoreboard(total: layout.segments,
                                    capacity: segmentsPerBlock * configuration.sendBufferBlocks,
                                    firstTransmission: nextNumber)
        flowLimit = initialWindowBytes / UInt64(payload)
        controller = CongestionController(datagramBytes: datagramSize,
                                          firstCyclePhase: CongestionController.randomCyclePhase())
        pacingRefilled = now
        phase = .sending
        backoff = 1
        probeDeadline = now + roundTrip.timeout
        readAhead()
        finishIfComplete(now: now)
    }

    // MARK: Sending

    private func send(_ packet: TransferPacket, number: UInt64? = nil) {
        let number = number ?? takeNumber()
        engine.send(packet, id: id, number: number, cipher: cipher, to: peer)
    }

    private func takeNumber() -> UInt64 {
        if scoreboard != nil { return scoreboard.takeTransmissionNumber() }
        defer { nextNumber += 1 }
        return nextNumber
    }

    private func sendStart(now: Int64) {
        for target in paths.due(now: now) {
            let start = TransferPacket.start(.init(timestamp: Clock.stamp(now), token: token, size: file.size,
                                                   identity: file.identity, name: name))
            engine.send(start, id: id, number: takeNumber(), cipher: cipher, to: target)
        }
    }

    private func sendFinish(now: Int64) {
        send(.finish(timestamp: Clock.stamp(now), segmentSize: UInt16(layout.segmentPayload)),
             number: scoreboard.takeTransmissionNumber())
    }

    private func finishIfComplete(now: Int64) {
        guard case .sending = phase, scoreboard.isComplete else { return }
        // Every byte went out authenticated; the file must still be the one announced.
        if file.hasChanged { return cancel("the file changed while it was being sent") }
        phase = .finishing
        backoff = 1
        sendFinish(now: now)
        probeDeadline = now + roundTrip.timeout
    }

    /// Sends what the windows (flow and congestion) and the pacing credit allow, as GSO
    /// batches of full-size datagrams; `probes` more may go beyond the congestion window
    /// and the pacing.
    func pump(now: Int64, probes: Int = 0) {
        guard case .sending = phase else { return }
        let wasIdle = scoreboard.inFlight == 0
        let readable = layout.firstSegment(of: nextBlockToRead)
        let limit = min(flowLimit, readable)
        let perWrite = max(min(engine.datagramsPerWrite, TransferEngine.maxTrainBytes / datagramSize), 1)
        let payload = layout.segmentPayload
        let segmentSize = UInt16(payload)
        let timestamp = Clock.stamp(now)
        let window = controller.window
        let rate = controller.pacingRate(smoothedRoundTrip: roundTrip.smoothed ?? RoundTripEstimator.initialTimeout)
        // Credit builds up for a millisecond (at least a few datagrams), so bursts stay short;
        // but a wake-up that came late (a busy host) may make up for up to 10 ms of it, or
        // the late timers alone would hold the rate below what the path takes.
        let elapsed = now - pacingRefilled
        let burst = max(rate * Double(min(max(elapsed, 1_000_000), 10_000_000)) / 1e9, Double(4 * datagramSize))
        pacingCredit = min(pacingCredit + rate * Double(elapsed) / 1e9, burst)
        pacingRefilled = now
        var sentAny = false
        var outOfData = false
        var probes = probes
        while engine.isWritable {
            var batch: ByteBuffer?
            var count = 0
            while count < perWrite {
                let allowed = pacingCredit > 0 && (scoreboard.inFlight + 1) * datagramSize <= window
                guard allowed || probes > 0 else { break }
                guard let segment = scoreboard.next(limit: limit) else {
                    outOfData = true
                    break
                }
                guard let block = blocks[slot(layout.block(of: segment))] else {
                    outOfData = true
                    break
                }
                if !allowed { probes -= 1 }
                controller.sent(number: scoreboard.nextTransmission, inFlight: scoreboard.inFlight * datagramSize, now: now)
                let number = scoreboard.sent(segment, at: now)
                pacingCredit -= Double(datagramSize)
                let length = layout.length(ofSegment: segment)
                let start = Int(segment - layout.firstSegment(of: block.index)) * payload
                let header = TransferPacket.DataHeader(id: id, transmission: number, sequence: segment,
                                                       timestamp: timestamp, segmentSize: segmentSize)
                if batch == nil { batch = engine.allocator.buffer(capacity: perWrite * datagramSize) }
                let headerSize = TransferPacket.dataHeaderSize
                batch!.writeWithUnsafeMutableBytes(minimumWritableBytes: headerSize + length + TransferPacket.tagSize) { out in
                    TransferPacket.storeDataHeader(header, at: out.baseAddress!)
                    return headerSize + cipher.seal(UnsafeRawBufferPointer(rebasing: block.memory[start..<(start + length)]),
                                                    header: UnsafeRawBufferPointer(rebasing: out[..<headerSize]),
                                                    direction: .toAudience, number: number,
                                                    into: out.baseAddress! + headerSize)
                }
                count += 1
                // GSO needs equal sizes except the last: a short segment ends the batch.
                if length < payload { break }
            }
            guard let batch else { break }
            engine.write(batch, datagrams: count, segmentSize: datagramSize, to: peer)
            datagrams += UInt64(count)
            sentAny = true
        }
        appLimited = outOfData
        if sentAny, wasIdle { probeDeadline = now + roundTrip.timeout * backoff }
        if !outOfData, pacingCredit <= 0, pacingTimer == nil { schedulePacing(rate: rate) }
    }

    /// Wakes the sender when the pacing credit allows the next datagram.
    private func schedulePacing(rate: Double) {
        let wait = Int64((Double(datagramSize) - pacingCredit) * 1e9 / max(rate, 1))
        pacingTimer = engine.eventLoop.scheduleTask(in: .nanoseconds(max(wait, 10_000))) { [self] in
            pacingTimer = nil
            guard !isOver else { return }
            pump(now: Clock.now())
            engine.flush()
        }
    }

    // MARK: Reading the file

    private func readAhead() {
        guard !reading, !isOver, nextBlockToRead < layout.blocks,
              nextBlockToRead < layout.block(of: scoreboard.cumulative) + UInt64(blocks.count - 1)
        else { return }
        reading = true
        let index = nextBlockToRead
        let length = layout.length(of: index)
        let offset = layout.offset(of: index)
        let pool = engine.blocks
        let descriptor = file.descriptor
        engine.threadPool.runIfActive(eventLoop: engine.eventLoop) { () throws -> Block in
            let block = Block(index: index, length: length, pool: pool)
            try descriptor.read(into: block.memory, count: length, at: offset)
            return block
        }.whenComplete { [self] result in
            reading = false
            guard !isOver else { return }
            switch result {
            case .success(let block):
                blocks[slot(index)] = block
                nextBlockToRead = index + 1
                let now = Clock.now()
                readAhead()
                pump(now: now)
                engine.flush()
            case .failure(let error):
                cancel("cannot read the file: \(error)")
                engine.flush()
            }
        }
    }

    private func releaseAcknowledgedBlocks() {
        let firstNeeded = layout.block(of: scoreboard.cumulative)
        var index = firstNeeded
        // Blocks below the cumulative point are done; at most the ring's size can be held.
        while index > 0 {
            index -= 1
            let position = slot(index)
            guard let block = blocks[position], block.index == index else { break }
            blocks[position] = nil
        }
    }

    private func slot(_ block: UInt64) -> Int { Int(block % UInt64(blocks.count)) }

    private func end(_ result: Result<TransferSummary, TransferFailure>) {
        guard !isOver else { return }
        phase = .over
        blocks = []
        pacingTimer?.cancel()
        pacingTimer = nil
        engine.remove(self)
        switch result {
        case .success(let summary): promise.succeed(summary)
        case .failure(let failure): promise.fail(failure)
        }
    }
}

extension TimeAmount {
    /// `1 second`, `10 seconds`, `0.5 seconds`: for messages.
    var spelled: String {
        let tenths = (nanoseconds + 50_000_000) / 100_000_000
        if tenths % 10 != 0 { return "\(tenths / 10).\(tenths % 10) seconds" }
        return tenths == 10 ? "1 second" : "\(tenths / 10) seconds"
    }
}
