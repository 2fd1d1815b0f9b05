import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The receiving side of one accepted transfer. Lives on the endpoint's event loop:
/// segments are copied into blocks there; complete blocks are hashed and written in
/// file order by one thread-pool job at a time, into a hidden temporary file that is
/// renamed to its final name only once the whole file's SHA-256 matches the sender's.
final class Receiver: @unchecked Sendable {
    private enum Phase {
        case receiving
        case verifying
        case over
    }

    let id: UInt64
    let peer: SocketAddress
    let offer: IncomingOffer
    private let layout: FileLayout
    private unowned let engine: TransferEngine
    private let file: FileDescriptor
    private let temporaryPath: String
    private let finalPath: String
    private var phase = Phase.receiving
    private var received = SegmentSet()
    private var largestTransmission: UInt64 = 0
    private var echo: UInt32 = 0
    private(set) var advertisedLimit: UInt64 = 0
    /// Blocks being filled, by block index modulo the ring size, with their segment counts.
    private var blocks: [Block?]
    private var filled: [Int]
    /// The first block not yet handed to the writer, and the first not yet written.
    private var nextBlockToWrite: UInt64 = 0
    private var blocksWritten: UInt64 = 0
    private var writing = false
    private let digest = FileDigest()
    private var expectedDigest: [UInt8]?
    private(set) var lastHeard: Int64
    /// Segments received since the last ACK went out.
    private(set) var unacknowledged = 0
    private(set) var ackPending = false

    /// Creates the hidden temporary file; throws a reason for REJECT if it cannot.
    init(engine: TransferEngine, offer: IncomingOffer, size: UInt64, peer: SocketAddress, now: Int64) throws(TransferFailure) {
        self.engine = engine
        self.offer = offer
        self.peer = peer
        id = offer.token.id
        let configuration = engine.configuration
        layout = FileLayout(size: size, segmentPayload: TransferPacket.segmentPayload,
                            segmentsPerBlock: configuration.segmentsPerBlock)
        blocks = Array(repeating: nil, count: configuration.receiveBufferBlocks)
        filled = Array(repeating: 0, count: configuration.receiveBufferBlocks)
        lastHeard = now
        let directory = configuration.directory.hasSuffix("/") ? configuration.directory : configuration.directory + "/"
        finalPath = directory + offer.saveAs
        var generator = SystemRandomNumberGenerator()
        let suffix = String(generator.next() as UInt32, radix: 16)
        temporaryPath = directory + "." + offer.saveAs + ".part-" + suffix
        let fd = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
        guard fd >= 0 else {
            throw TransferFailure("cannot create the file: \(String(cString: strerror(errno)))")
        }
        file = FileDescriptor(fd)
        updateLimit()
    }

    var isOver: Bool {
        if case .over = phase { return true }
        return false
    }

    var isVerifying: Bool {
        if case .verifying = phase { return true }
        return false
    }

    // MARK: Datagrams from the sender

    /// One DATA datagram: copies the payload into its block, or drops it.
    func data(_ header: TransferPacket.DataHeader, payload: UnsafeRawBufferPointer, now: Int64) {
        lastHeard = now
        noteTransmission(header.transmission, timestamp: header.timestamp)
        let segment = header.sequence
        guard case .receiving = phase, segment < advertisedLimit, segment < layout.segments,
              payload.count == layout.length(ofSegment: segment), segment >= received.cumulative
        else { return }
        let blockIndex = layout.block(of: segment)
        let position = slot(blockIndex)
        let block: Block
        if let existing = blocks[position] {
            block = existing
        } else {
            block = Block(index: blockIndex, length: layout.length(of: blockIndex), capacity: layout.blockBytes)
            blocks[position] = block
        }
        guard block.index == blockIndex, received.insert(segment) else { return }
        let start = Int(segment - layout.firstSegment(of: blockIndex)) * TransferPacket.segmentPayload
        (block.memory.baseAddress! + start).copyMemory(from: payload.baseAddress!, byteCount: payload.count)
        filled[position] += 1
        unacknowledged += 1
        if filled[position] == layout.segmentCount(of: blockIndex), blockIndex == nextBlockToWrite {
            writeReadyBlocks()
        }
    }

    func ping(transmission: UInt64, timestamp: UInt32, now: Int64) {
        lastHeard = now
        noteTransmission(transmission, timestamp: timestamp)
        ackPending = true
    }

    func finish(transmission: UInt64, timestamp: UInt32, digest: [UInt8], now: Int64) {
        lastHeard = now
        noteTransmission(transmission, timestamp: timestamp)
        ackPending = true
        guard case .receiving = phase else { return }
        expectedDigest = digest
        verifyIfComplete()
    }

    func cancelled(_ reason: String) {
        fail("the sender cancelled: \(reason)", tellSender: false)
    }

    private func noteTransmission(_ number: UInt64, timestamp: UInt32) {
        if number > largestTransmission {
            largestTransmission = number
            echo = timestamp
        }
        ackPending = true
    }

    // MARK: Acknowledgements

    /// The ACK for what arrived so far; clears the pending state.
    func makeAck() -> TransferPacket {
        ackPending = false
        unacknowledged = 0
        updateLimit()
        return .ack(.init(id: id, echo: echo, largestTransmission: largestTransmission,
                          cumulative: received.cumulative, limit: advertisedLimit,
                          ranges: received.highestRanges(limit: TransferPacket.maxAckRanges)))
    }

    func acceptPacket(echo startStamp: UInt32) -> TransferPacket {
        .accept(id: id, echo: startStamp, limit: advertisedLimit)
    }

    /// Flow control: no further than the reassembly buffer reaches, nor than this
    /// transfer's share of the socket's receive buffer. Never moves back.
    private func updateLimit() {
        let bufferBound = layout.firstSegment(of: blocksWritten + UInt64(blocks.count))
        let socketBound = received.cumulative + UInt64(engine.receiveBudgetSegments)
        advertisedLimit = max(advertisedLimit, min(bufferBound, socketBound, layout.segments))
    }

    // MARK: Writing

    private func writeReadyBlocks() {
        guard !writing, case .receiving = phase else { return }
        var ready: [Block] = []
        while nextBlockToWrite < layout.blocks, let block = blocks[slot(nextBlockToWrite)],
              block.index == nextBlockToWrite, filled[slot(nextBlockToWrite)] == layout.segmentCount(of: nextBlockToWrite) {
            ready.append(block)
            nextBlockToWrite += 1
        }
        guard !ready.isEmpty else {
            verifyIfComplete()
            return
        }
        writing = true
        let written = ready
        let file = self.file
        let digest = self.digest
        let layout = self.layout
        engine.threadPool.runIfActive(eventLoop: engine.eventLoop) {
            for block in written {
                digest.update(block.bytes)
                try file.write(block.bytes, at: layout.offset(of: block.index))
            }
        }.whenComplete { [self] result in
            writing = false
            guard case .receiving = phase else { return }
            switch result {
            case .success:
                for block in written {
                    blocks[slot(block.index)] = nil
                    filled[slot(block.index)] = 0
                }
                blocksWritten += UInt64(written.count)
                let before = advertisedLimit
                updateLimit()
                if advertisedLimit > before { engine.acknowledgeNow(self) }
                writeReadyBlocks()
            case .failure(let error):
                fail("cannot write the file: \(error)", tellSender: true)
            }
            engine.flush()
        }
    }

    private func verifyIfComplete() {
        guard case .receiving = phase, !writing, blocksWritten == layout.blocks, let expectedDigest else { return }
        phase = .verifying
        let digest = self.digest
        let temporaryPath = self.temporaryPath
        let finalPath = self.finalPath
        engine.threadPool.runIfActive(eventLoop: engine.eventLoop) { () throws -> Bool in
            guard digest.finish() == expectedDigest else {
                unlink(temporaryPath)
                return false
            }
            guard rename(temporaryPath, finalPath) == 0 else {
                let code = errno
                unlink(temporaryPath)
                throw TransferFileError(errno: code)
            }
            return true
        }.whenComplete { [self] result in
            guard case .verifying = phase else { return }
            switch result {
            case .success(true):
                phase = .over
                engine.received(self, bytes: layout.size)
            case .success(false):
                fail("the received copy did not match the sender's SHA-256; nothing was saved", tellSender: true)
            case .failure(let error):
                fail("cannot save the file: \(error)", tellSender: true)
            }
            engine.flush()
        }
    }

    // MARK: Ending

    /// Gives up: removes the temporary file and tells the caller (and the sender).
    func fail(_ reason: String, tellSender: Bool) {
        guard !isOver else { return }
        phase = .over
        unlink(temporaryPath)
        blocks = []
        engine.failed(self, reason: reason, tellSender: tellSender)
    }

    /// Called every few milliseconds: gives up on a silent sender.
    func tick(now: Int64) {
        guard case .receiving = phase else { return }
        let timeout = engine.configuration.timeout
        if now - lastHeard >= timeout.nanoseconds {
            fail("the sender stopped sending (nothing for \(timeout.spelled))", tellSender: true)
        }
    }

    private func slot(_ block: UInt64) -> Int { Int(block % UInt64(blocks.count)) }
}
