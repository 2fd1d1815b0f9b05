import Foundation
import NIOCore
import ToomCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The receiving side of one accepted transfer. Lives on the endpoint's event loop:
/// each datagram is authenticated and decrypted, and its segment copied into a block
/// there; complete blocks are written in file order by one thread-pool job at a time
/// into the hidden partial file, whose record (`PartialFile`) is brought up to date
/// after the bytes are durable. The file takes its final name once every byte is in
/// place and on disk.
final class Receiver: @unchecked Sendable {
    private enum Phase {
        case receiving
        case completing
        case over
    }

    /// The record is brought up to date after every `commitBlocks` blocks written, so that
    /// a kill at any moment costs at most a few blocks (a loopback transfer of hundreds of
    /// MB ends within a second), and at least once a second while a slow one runs.
    static let commitInterval: Int64 = 1_000_000_000
    static let commitBlocks = 4

    let id: UInt64
    /// Where replies go: where the sender's latest authentic datagram came from, among the
    /// addresses an authentic START came from (the sender tries several paths at once).
    private(set) var peer: SocketAddress
    private var peers: [SocketAddress]
    let offer: IncomingOffer
    let cipher: PacketCipher
    let outbox: Outbox
    private unowned let engine: TransferEngine
    private let partial: PartialFile
    /// Bytes already on disk when the transfer began.
    let resumeFrom: UInt64
    private let finalPath: String
    /// Known from the first DATA, PING or FINISH: the sender fixes it once it probed the path.
    private var layout: FileLayout?
    private var phase = Phase.receiving
    private var replay = ReplayWindow()
    /// Where a DATA datagram is opened before its fields are trusted; reused.
    private var scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
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
    private var finishSeen = false
    private var committedAt: Int64
    private var committedBytes: UInt64
    private(set) var lastHeard: Int64
    /// Segments received since the last ACK went out.
    private(set) var unacknowledged = 0
    private(set) var ackPending = false

    /// Opens the partial file, picking up what an earlier attempt left; throws a reason
    /// for REJECT if it cannot.
    init(engine: TransferEngine, offer: IncomingOffer, start: TransferPacket.Start, peer: SocketAddress,
         now: Int64) throws(TransferFailure) {
        self.engine = engine
        self.offer = offer
        self.peer = peer
        peers = [peer]
        id = offer.token.id
        cipher = PacketCipher(key: offer.key, encrypts: engine.configuration.encryption)
        outbox = Outbox(cipher: cipher)
        let configuration = engine.configuration
        blocks = Array(repeating: nil, count: configuration.receiveBufferBlocks)
        filled = Array(repeating: 0, count: configuration.receiveBufferBlocks)
        lastHeard = now
        committedAt = now
        let directory = configuration.directory.hasSuffix("/") ? configuration.directory : configuration.directory + "/"
        finalPath = directory + offer.saveAs
        (partial, resumeFrom) = try PartialFile.openOrCreate(directory: directory, saveAs: offer.saveAs,
                                                              size: start.size, identity: start.identity)
        committedBytes = resumeFrom
    }

    var isOver: Bool {
        if case .over = phase { return true }
        return false
    }

    func knows(_ source: SocketAddress) -> Bool { source == peer || peers.contains(source) }

    /// An authentic START from `source`: the sender may choose that path.
    func started(from source: SocketAddress) {
        if !peers.contains(source), peers.count < 2 * TransferCandidate.maxListed { peers.append(source) }
    }

    /// An authentic datagram from a known address: replies follow the sender's path.
    func heard(from source: SocketAddress) {
        if source != peer { peer = source }
    }

    deinit { scratch.deallocate() }

    // MARK: Datagrams from the sender

    /// Opens a datagram other than DATA; nil (counted by the caller) if it is forged,
    /// altered or a replay.
    func open(_ bytes: UnsafeRawBufferPointer, _ header: TransferPacket.Header) -> TransferPacket? {
        guard let packet = TransferPacket.open(bytes, header, cipher: cipher), replay.accept(header.number)
        else { return nil }
        return packet
    }

    /// One DATA datagram: authenticates and decrypts it into its block. False if it was
    /// forged, altered or replayed (the caller counts it); out-of-window and duplicate
    /// segments are dropped quietly.
    func data(_ header: TransferPacket.DataHeader, datagram: UnsafeRawBufferPointer, now: Int64) -> Bool {
        let headerSize = TransferPacket.dataHeaderSize
        let sealed = UnsafeRawBufferPointer(rebasing: datagram[headerSize...])
        let length = sealed.count - TransferPacket.tagSize
        // A segment that is wanted is opened straight into its place in the block: its
        // fields count only once the tag checks, and until then the place holds nothing
        // (a failed open leaves zeros there, which the real segment overwrites). Anything
        // else is opened into scratch memory first.
        var place: Place?
        if case .receiving = phase, let layout, layout.segmentPayload == Int(header.segmentSize) {
            place = self.place(header.sequence, length: length, in: layout)
        }
        if place == nil, scratch.count < sealed.count {
            scratch.deallocate()
            scratch = .allocate(byteCount: sealed.count, alignment: 16)
        }
        let target = place?.address ?? scratch.baseAddress!
        guard cipher.open(sealed, header: UnsafeRawBufferPointer(rebasing: datagram[..<headerSize]),
                          direction: .toAudience, number: header.transmission, into: target) == length,
              replay.accept(header.transmission)
        else { return false }
        lastHeard = now
        noteTransmission(header.transmission, timestamp: header.timestamp)
        let placed: Place
        if let place {
            placed = place
        } else {
            guard case .receiving = phase, let layout = configure(header.segmentSize),
                  let found = self.place(header.sequence, length: length, in: layout) else { return true }
            if length > 0 { found.address.copyMemory(from: scratch.baseAddress!, byteCount: length) }
            placed = found
        }
        let position = slot(placed.block.index)
        _ = received.insert(header.sequence)
        filled[position] += 1
        unacknowledged += 1
        if filled[position] == placed.segmentsInBlock, placed.block.index == nextBlockToWrite {
            writeReadyBlocks()
        }
        return true
    }

    private struct Place {
        let block: Block
        /// Where the segment starts in the block.
        let start: Int
        let segmentsInBlock: Int

        var address: UnsafeMutableRawPointer { block.memory.baseAddress! + start }
    }

    /// Where a segment of `length` bytes goes, if it is new, inside the window, and of the
    /// length the layout gives it; its block is made when it is the block's first.
    private func place(_ segment: UInt64, length: Int, in layout: FileLayout) -> Place? {
        guard segment < advertisedLimit, segment < layout.segments, length == layout.length(ofSegment: segment),
              segment >= received.cumulative, !received.contains(segment) else { return nil }
        let blockIndex = layout.block(of: segment)
        let position = slot(blockIndex)
        let block: Block
        if let existing = blocks[position] {
            block = existing
        } else {
            block = Block(index: blockIndex, length: layout.length(of: blockIndex), pool: engine.blocks)
            blocks[position] = block
        }
        guard block.index == blockIndex else { return nil }
        return Place(block: block, start: Int(segment - layout.firstSegment(of: blockIndex)) * layout.segmentPayload,
                     segmentsInBlock: layout.segmentCount(of: blockIndex))
    }

    func ping(number: UInt64, timestamp: UInt32, segmentSize: UInt16, now: Int64) {
        lastHeard = now
        noteTransmission(number, timestamp: timestamp)
        _ = configure(segmentSize)
    }

    func finish(number: UInt64, timestamp: UInt32, segmentSize: UInt16, now: Int64) {
        lastHeard = now
        noteTransmission(number, timestamp: timestamp)
        guard case .receiving = phase, configure(segmentSize) != nil else { return }
        finishSeen = true
        completeIfDone()
    }

    func cancelled(_ reason: String) {
        fail("the sender cancelled: \(reason)", tellSender: false)
    }

    /// The segment size the sender settled on fixes the layout; a datagram that disagrees
    /// with it is dropped.
    private func configure(_ segmentSize: UInt16) -> FileLayout? {
        if let layout { return layout.segmentPayload == Int(segmentSize) ? layout : nil }
        guard Int(segmentSize) >= TransferPacket.segmentPayload(datagram: TransferPacket.baseDatagram),
              Int(segmentSize) <= TransferPacket.segmentPayload(datagram: TransferPacket.maxDatagram) else { return nil }
        let layout = FileLayout(size: partial.size - resumeFrom, base: resumeFrom, segmentPayload: Int(segmentSize),
                                segmentsPerBlock: engine.configuration.segmentsPerBlock(payload: Int(segmentSize)))
        self.layout = layout
        updateLimit()
        return layout
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
        return .ack(.init(echo: echo, largestTransmission: largestTransmission,
                          cumulative: received.cumulative, limit: advertisedLimit,
                          ranges: received.highestRanges(limit: TransferPacket.maxAckRanges)))
    }

    /// ACCEPT: where to pick up, and how many bytes the sender may send before it hears more.
    func acceptPacket(echo startStamp: UInt32) -> TransferPacket {
        let window = UInt64(min(engine.configuration.blockBytes * blocks.count, engine.receiveBudgetBytes))
        return .accept(echo: startStamp, resumeFrom: resumeFrom, window: window)
    }

    /// Flow control: no further than the reassembly buffer reaches, nor than this
    /// transfer's share of the socket's receive buffer: the segments below the limit that
    /// have not arrived (in the socket's queue, or lost) stay within it, so segments that
    /// arrived beyond a hole do not narrow the window. Never moves back.
    private func updateLimit() {
        guard let layout else { return }
        let bufferBound = layout.firstSegment(of: blocksWritten + UInt64(blocks.count))
        let socketBound = received.count + UInt64(engine.receiveBudgetBytes / layout.segmentPayload)
        advertisedLimit = max(advertisedLimit, min(bufferBound, socketBound, layout.segments))
    }

    // MARK: Writing

    private func writeReadyBlocks() {
        guard !writing, case .receiving = phase, let layout else { return }
        var ready: [Block] = []
        while nextBlockToWrite < layout.blocks, let block = blocks[slot(nextBlockToWrite)],
              block.index == nextBlockToWrite, filled[slot(nextBlockToWrite)] == layout.segmentCount(of: nextBlockToWrite) {
            ready.append(block)
            nextBlockToWrite += 1
        }
        guard !ready.isEmpty else {
            completeIfDone()
            return
        }
        writing = true
        let written = ready
        let partial = self.partial
        // Everything up to the end of these blocks will be on disk when the job is done.
        let durable = layout.offset(of: written.last!.index) + UInt64(written.last!.length)
        let now = Clock.now()
        let commit = now - committedAt >= Self.commitInterval
            || durable - committedBytes >= UInt64(Self.commitBlocks * layout.blockBytes)
        if commit {
            committedAt = now
            committedBytes = durable
        }
        engine.threadPool.runIfActive(eventLoop: engine.eventLoop) {
            for block in written {
                let offset = layout.offset(of: block.index)
                try partial.data.write(block.bytes, at: offset)
                partial.data.startWriteback(at: offset, count: block.length)
            }
            if commit { try partial.commit(durable: durable) }
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

    /// Every block written and the sender finished: fsync, then the final name.
    private func completeIfDone() {
        guard case .receiving = phase, finishSeen, !writing, let layout, blocksWritten == layout.blocks else { return }
        phase = .completing
        let partial = self.partial
        let finalPath = self.finalPath
        engine.threadPool.runIfActive(eventLoop: engine.eventLoop) {
            try partial.complete(finalPath: finalPath)
        }.whenComplete { [self] result in
            guard case .completing = phase else { return }
            switch result {
            case .success:
                phase = .over
                engine.received(self, bytes: partial.size)
            case .failure(let error):
                phase = .receiving
                fail("cannot save the file: \(error)", tellSender: true)
            }
            engine.flush()
        }
    }

    // MARK: Ending

    /// Gives up: keeps the partial file and brings its record up to date for a resume
    /// (or removes it when nothing arrived), and tells the caller (and the sender).
    func fail(_ reason: String, tellSender: Bool) {
        guard !isOver else { return }
        phase = .over
        blocks = []
        let partial = self.partial
        let durableBytes = min(layout?.offset(of: blocksWritten) ?? resumeFrom, partial.size)
        if durableBytes == 0 {
            partial.discard()
        } else if durableBytes > committedBytes {
            // Blocks written since the last commit: make them count for the next attempt.
            engine.threadPool.submit { _ in try? partial.commit(durable: durableBytes) }
        }
        engine.failed(self, reason: reason, tellSender: tellSender)
    }

    /// Called every few milliseconds: gives up on a silent sender; brings the record up
    /// to date when blocks were written but no write job did it for a while.
    func tick(now: Int64) {
        guard case .receiving = phase else { return }
        let timeout = engine.configuration.timeout
        if now - lastHeard >= timeout.nanoseconds {
            return fail("the sender stopped sending (nothing for \(timeout.spelled))", tellSender: true)
        }
        guard !writing, let layout, now - committedAt >= Self.commitInterval else { return }
        let durable = min(layout.offset(of: blocksWritten), partial.size)
        guard durable > committedBytes else { return }
        committedAt = now
        committedBytes = durable
        let partial = self.partial
        engine.threadPool.submit { _ in try? partial.commit(durable: durable) }
    }

    private func slot(_ block: UInt64) -> Int { Int(block % UInt64(blocks.count)) }
}

/// Seals the replies of one transfer's receiving side, each with a new number: also
/// used after the transfer ended, to answer the sender's repeats.
final class Outbox: @unchecked Sendable {
    let cipher: PacketCipher
    private var next: UInt64 = 1

    init(cipher: PacketCipher) { self.cipher = cipher }

    func takeNumber() -> UInt64 {
        defer { next += 1 }
        return next
    }
}
