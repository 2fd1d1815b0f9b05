import ToomCore
import NIOCore
import Testing
@testable import ToomTransfer

@Suite struct TransferPacketTests {
    static let token = TransferToken(high: 0x0123_4567_89AB_CDEF, low: 0xFEDC_BA98_7654_3210)

    static let packets: [TransferPacket] = [
        .start(id: token.id, timestamp: 7, token: token, size: 1 << 40, name: "vidéo.mp4"),
        .data(.init(id: token.id, transmission: 9, sequence: 3, timestamp: 11)),
        .ping(id: token.id, transmission: 12, timestamp: 13),
        .finish(id: token.id, transmission: 14, timestamp: 15, digest: Array(0..<32)),
        .cancel(id: token.id, reason: "cannot read the file"),
        .accept(id: token.id, echo: 16, limit: 4096),
        .ack(.init(id: token.id, echo: 17, largestTransmission: 99, cumulative: 10, limit: 5000,
                   ranges: [40..<50, 12..<20])),
        .ack(.init(id: token.id, echo: 0, largestTransmission: 0, cumulative: 0, limit: 0, ranges: [])),
        .done(id: token.id),
        .reject(id: token.id, reason: "too big"),
    ]

    @Test(arguments: packets)
    func everyPacketSurvivesARoundTrip(_ packet: TransferPacket) {
        #expect(TransferPacket.decode(packet.encoded) == packet)
        #expect(packet.encoded.readableBytes <= TransferPacket.maxDatagram)
    }

    @Test(arguments: packets)
    func truncatedOrExtendedPacketsAreRejected(_ packet: TransferPacket) {
        let bytes = Array(packet.encoded.readableBytesView)
        for length in 0..<bytes.count where !(packet.isData && length >= TransferPacket.dataHeaderSize) {
            #expect(bytes[0..<length].withUnsafeBytes { TransferPacket.decode($0) } == nil, "\(packet) cut to \(length)")
        }
        if !packet.isData {
            #expect((bytes + [0]).withUnsafeBytes { TransferPacket.decode($0) } == nil)
        }
    }

    @Test func foreignBytesAreRejected() {
        var wrongMagic = Array(TransferPacket.done(id: 1).encoded.readableBytesView)
        wrongMagic[0] = 0x47
        var wrongVersion = Array(TransferPacket.done(id: 1).encoded.readableBytesView)
        wrongVersion[2] = 9
        var unknownType = Array(TransferPacket.done(id: 1).encoded.readableBytesView)
        unknownType[3] = 99
        for bytes in [wrongMagic, wrongVersion, unknownType, Array("hello world, not toom".utf8)] {
            #expect(bytes.withUnsafeBytes { TransferPacket.decode($0) } == nil)
            #expect(bytes.withUnsafeBytes { TransferPacket.dataHeader($0) } == nil)
        }
        // A reason that is not UTF-8.
        var bad = Array(TransferPacket.reject(id: 1, reason: "ab").encoded.readableBytesView)
        bad[bad.count - 1] = 0xFF
        #expect(bad.withUnsafeBytes { TransferPacket.decode($0) } == nil)
        // An ACK range of length zero, or one below the cumulative point.
        var empty = ByteBuffer()
        TransferPacket.ack(.init(id: 1, echo: 0, largestTransmission: 0, cumulative: 5, limit: 9, ranges: [7..<8])).encode(into: &empty)
        var zeroLength = Array(empty.readableBytesView)
        zeroLength[zeroLength.count - 1] = 0
        #expect(zeroLength.withUnsafeBytes { TransferPacket.decode($0) } == nil)
        var atCumulative = Array(empty.readableBytesView)
        atCumulative[atCumulative.count - 5] = 0
        #expect(atCumulative.withUnsafeBytes { TransferPacket.decode($0) } == nil)
    }

    @Test func dataHeadersWrittenInPlaceReadBack() {
        let header = TransferPacket.DataHeader(id: .max, transmission: 1 << 50, sequence: 1 << 33, timestamp: .max)
        var memory = [UInt8](repeating: 0, count: TransferPacket.dataHeaderSize + 3)
        memory.withUnsafeMutableBytes { TransferPacket.storeDataHeader(header, at: $0.baseAddress!) }
        #expect(memory.withUnsafeBytes { TransferPacket.dataHeader($0) } == header)
        #expect(Array(memory[0..<TransferPacket.dataHeaderSize]) == Array(TransferPacket.data(header).encoded.readableBytesView))
        #expect(TransferPacket.segmentPayload == 1440)
    }

    @Test func anAckCarriesAtMostWhatFitsOneDatagram() {
        var ranges: [Range<UInt64>] = []
        for n in (0..<400 as Range<UInt64>).reversed() { ranges.append((10 + 3 * n)..<(11 + 3 * n)) }
        let packet = TransferPacket.ack(.init(id: 1, echo: 0, largestTransmission: 1, cumulative: 5, limit: 2000,
                                              ranges: ranges))
        #expect(packet.encoded.readableBytes <= TransferPacket.maxDatagram)
        guard case .ack(let decoded)? = TransferPacket.decode(packet.encoded) else {
            Issue.record("not an ACK")
            return
        }
        #expect(decoded.ranges == Array(ranges.prefix(TransferPacket.maxAckRanges)))
    }

    @Test func longReasonsAreCutOnACharacterBoundary() {
        let reason = String(repeating: "é", count: 400)
        guard case .reject(_, let decoded)? = TransferPacket.decode(TransferPacket.reject(id: 1, reason: reason).encoded) else {
            Issue.record("not a REJECT")
            return
        }
        #expect(decoded.utf8.count <= 512 && reason.hasPrefix(decoded) && !decoded.isEmpty)
    }
}

extension TransferPacket {
    var isData: Bool {
        if case .data = self { return true }
        return false
    }
}
