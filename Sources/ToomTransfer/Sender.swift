import ToomCore
import NIOCore

/// The sending side of one transfer. Lives on the endpoint's event loop; only its file
/// reads run on the thread pool, one block at a time, hashing as they go.
final class Sender: @unchecked Sendable {
    private enum Phase {
        /// START sent, waiting for ACCEPT.
        case starting
        case sending
        /// Every segment acknowledged, FINISH sent, waiting for DONE.
        case finishing
        case over
    }

    let id: UInt64
    let peer: SocketAddress
    let handle: OutgoingTransfer
    private let token: TransferToken
    private let name: String
    private let file: SourceFile
    private let layout: FileLayout
    private unowned let engine: TransferEngine
    private let promise: EventLoopPromise<TransferSummary>
    private var phase = Phase.starting
    private var scoreboard: SendScoreboard
    private var roundTrip = RoundTripEstimator()
    private var flowLimit: UInt64 = 0
    /// Blocks read and not yet fully acknowledged, by block index modulo the ring size.
    private var blocks: [Block?]
    private var nextBlockToRead: UInt64 = 0
    private var reading = false
    private let digest = FileDigest()
    private var fileDigest: [UInt8]?
    private let startedAt: Int64
    private var lastHeard: Int64
    private var probeDeadline: Int64
    private var backoff: Int64 = 1
    private var datagrams: UInt64 = 0

    init(engine: TransferEngine, file: SourceFile, name: String, token: TransferToken, peer: SocketAddress,
         handle: OutgoingTransfer, promise: EventLoopPromise<TransferSummary>, now: Int64) {
        self.engine = engine
        self.file = file
        self.name = name
        self.token = token
        self.peer = peer
        self.promise = promise
        id = token.id
        let configuration = engine.configuration
        layout = FileLayout(size: file.size, segmentPayload: TransferPacket.segmentPayload,
                            segmentsPerBlock: configuration.segmentsPerBlock)
        scoreboard = SendScoreboard(total: layout.segments,
                                    capacity: configuration.segmentsPerBlock * configuration.sendBufferBlocks)
        blocks = Array(repeating: nil, count: configuration.sendBufferBlocks + 1)
        self.handle = handle
        startedAt = now
        lastHeard = now
        probeDeadline = now
        if layout.blocks == 0 { fileDigest = digest.finish() }
    }

    /// Sends START and begins reading the file.
    func start(now: Int64) {
        sendStart(now: now)
        readAhead()
    }

    // MARK: Datagrams from the receiver

    func accepted(echo: UInt32, limit: UInt64, now: Int64) {
        lastHeard = now
        flowLimit = max(flowLimit, limit)
        guard case .starting = phase else { return }
        roundTrip.add(sample: Clock.elapsed(since: echo, now: now))
        phase = .sending
        backoff = 1
        probeDeadline = now + roundTrip.timeout
        finishIfComplete(now: now)
        pump(now: now)
    }

    func acknowledged(_ ack: TransferPacket.Acknowledgement, now: Int64) {
        lastHeard = now
        flowLimit = max(flowLimit, ack.limit)
        guard case .sending = phase else { return }
        if ack.largestTransmission > scoreboard.largestAcknowledgedTransmission,
           ack.largestTransmission < scoreboard.nextTransmission {
            roundTrip.add(sample: Clock.elapsed(since: ack.echo, now: now))
        }
        let newly = scoreboard.acknowledge(cumulative: ack.cumulative, ranges: ack.ranges,
                                           largestTransmission: ack.largestTransmission,
                                           now: now, lossDelay: roundTrip.lossDelay)
        if newly > 0 {
            backoff = 1
            probeDeadline = now + roundTrip.timeout
            handle.setAcknowledged(min(scoreboard.cumulative * UInt64(TransferPacket.segmentPayload), file.size))
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
        let summary = TransferSummary(bytes: file.size, nanoseconds: now - startedAt, datagrams: datagrams,
                                      retransmissions: scoreboard.retransmissions,
                                      digest: ByteCount.hex(fileDigest ?? []))
        end(.success(summary))
    }

    func rejected(_ reason: String) {
        end(.failure(TransferFailure("refused by the receiver: \(reason)")))
    }

    /// Stops for a local reason, telling the receiver.
    func cancel(_ reason: String) {
        guard !isOver else { return }
        engine.send(.cancel(id: id, reason: reason), to: peer)
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
            if case .starting = phase {
                cancel("the receiver did not answer within \(spelled)")
            } else {
                cancel("the receiver stopped answering (nothing for \(spelled))")
            }
            return
        }
        guard now >= probeDeadline else { return }
        switch phase {
        case .starting:
            sendStart(now: now)
        case .sending:
            if scoreboard.inFlight > 0 {
                _ = scoreboard.declareOldestLost(2)
                pump(now: now)
            } else {
                // Flow-blocked or waiting for the disk: ask for a fresh window.
                let number = scoreboard.takeTransmissionNumber()
                engine.send(.ping(id: id, transmission: number, timestamp: Clock.stamp(now)), to: peer)
            }
        case .finishing:
            sendFinish(now: now)
        case .over:
            return
        }
        backoff = min(backoff * 2, 64)
        probeDeadline = now + min(roundTrip.timeout * backoff, max(timeout / 4, RoundTripEstimator.minimumTimeout))
    }

    // MARK: Sending

    private func sendStart(now: Int64) {
        engine.send(.start(id: id, timestamp: Clock.stamp(now), token: token, size: file.size, name: name), to: peer)
        probeDeadline = now + RoundTripEstimator.initialTimeout * backoff
    }

    private func sendFinish(now: Int64) {
        guard let fileDigest else { return }
        let number = scoreboard.takeTransmissionNumber()
        engine.send(.finish(id: id, transmission: number, timestamp: Clock.stamp(now), digest: fileDigest), to: peer)
    }

    private func finishIfComplete(now: Int64) {
        guard case .sending = phase, scoreboard.isComplete, fileDigest != nil else { return }
        phase = .finishing
        backoff = 1
        sendFinish(now: now)
        probeDeadline = now + roundTrip.timeout
    }

    /// Sends what the window allows, as GSO batches of full-size datagrams.
    func pump(now: Int64) {
        guard case .sending = phase else { return }
        let wasIdle = scoreboard.inFlight == 0
        let readable = layout.firstSegment(of: nextBlockToRead)
        let limit = min(flowLimit, readable)
        let perWrite = engine.datagramsPerWrite
        let full = TransferPacket.maxDatagram
        let timestamp = Clock.stamp(now)
        var sentAny = false
        while engine.isWritable {
            var batch: ByteBuffer?
            var count = 0
            while count < perWrite, let segment = scoreboard.next(limit: limit) {
                guard let block = blocks[slot(layout.block(of: segment))] else { break }
                let number = scoreboard.sent(segment, at: now)
                let length = layout.length(ofSegment: segment)
                let start = Int(segment - layout.firstSegment(of: block.index)) * TransferPacket.segmentPayload
                let header = TransferPacket.DataHeader(id: id, transmission: number, sequence: segment, timestamp: timestamp)
                if batch == nil { batch = engine.allocator.buffer(capacity: perWrite * full) }
                batch!.writeWithUnsafeMutableBytes(minimumWritableBytes: TransferPacket.dataHeaderSize + length) { out in
                    TransferPacket.storeDataHeader(header, at: out.baseAddress!)
                    (out.baseAddress! + TransferPacket.dataHeaderSize)
                        .copyMemory(from: block.memory.baseAddress! + start, byteCount: length)
                    return TransferPacket.dataHeaderSize + length
                }
                count += 1
                // GSO needs equal sizes except the last: a short segment ends the batch.
                if length < TransferPacket.segmentPayload { break }
            }
            guard let batch else { break }
            engine.write(batch, datagrams: count, to: peer)
            datagrams += UInt64(count)
            sentAny = true
        }
        if sentAny, wasIdle { probeDeadline = now + roundTrip.timeout * backoff }
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
        let isLast = index + 1 == layout.blocks
        let capacity = layout.blockBytes
        let descriptor = file.descriptor
        let digest = self.digest
        engine.threadPool.runIfActive(eventLoop: engine.eventLoop) { () throws -> (Block, [UInt8]?) in
            let block = Block(index: index, length: length, capacity: capacity)
            try descriptor.read(into: block.memory, count: length, at: offset)
            digest.update(block.bytes)
            return (block, isLast ? digest.finish() : nil)
        }.whenComplete { [self] result in
            reading = false
            guard !isOver else { return }
            switch result {
            case .success(let (block, finalDigest)):
                blocks[slot(index)] = block
                nextBlockToRead = index + 1
                if let finalDigest { fileDigest = finalDigest }
                let now = Clock.now()
                readAhead()
                finishIfComplete(now: now)
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
