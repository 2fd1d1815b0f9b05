import Foundation
import ToomCore
import NIOCore
import Crypto
import Testing
@testable import ToomTransfer

@Suite struct TransferPacketTests {
    static let token = TransferToken(high: 0x0123_4567_89AB_CDEF, low: 0xFEDC_BA98_7654_3210)
    static let identity = FileIdentity(bytes: Array(0..<32))
    static let cipher = PacketCipher(key: TransferKey.random())

    static let packets: [TransferPacket] = [
        .start(.init(timestamp: 7, token: token, size: 1 << 40, identity: identity, name: "vidéo.mp4")),
        .ping(timestamp: 3, segmentSize: 1422),
        .finish(timestamp: 9, segmentSize: 1150),
        .cancel(reason: "cannot read the file"),
        .probe(size: 1472),
        .accept(echo: 5, resumeFrom: 123_456, window: 4096),
        .ack(.init(echo: 1, largestTransmission: 99, cumulative: 10, limit: 5000, ranges: [20..<25, 12..<14])),
        .ack(.init(echo: 1, largestTransmission: 99, cumulative: 10, limit: 5000, ranges: [])),
        .done,
        .reject(reason: "too big"),
        .probeAck(size: 1252),
    ]

    func sealed(_ packet: TransferPacket, number: UInt64 = 42, cipher: PacketCipher = cipher) -> [UInt8] {
        var buffer = ByteBuffer()
        packet.seal(id: Self.token.id, number: number, cipher: cipher, into: &buffer)
        return Array(buffer.readableBytesView)
    }

    func opened(_ bytes: [UInt8], cipher: PacketCipher = cipher) -> TransferPacket? {
        bytes.withUnsafeBytes { raw in
            guard let header = TransferPacket.header(raw) else { return nil }
            return TransferPacket.open(raw, header, cipher: cipher)
        }
    }

    @Test(arguments: packets)
    func everyPacketSurvivesARoundTrip(_ packet: TransferPacket) throws {
        let bytes = sealed(packet)
        #expect(opened(bytes) == packet)
        let header = try #require(bytes.withUnsafeBytes { TransferPacket.header($0) })
        #expect(header.id == Self.token.id && header.number == 42 && header.kind == packet.kind)
        switch packet {
        case .start: #expect(bytes.count == TransferPacket.baseDatagram)
        case .probe(let size): #expect(bytes.count == Int(size))
        default: #expect(bytes.count <= TransferPacket.baseDatagram)
        }
    }

    /// Any changed bit, in the clear header or in the ciphertext, and the datagram is refused;
    /// so is one sealed under another key, or cut short.
    @Test(arguments: packets)
    func alteredForgedOrTruncatedPacketsAreRefused(_ packet: TransferPacket) {
        var bytes = sealed(packet)
        for index in stride(from: 4, to: bytes.count, by: max(1, bytes.count / 40)) {
            bytes[index] ^= 0x10
            #expect(opened(bytes) == nil, "\(packet): byte \(index) flipped")
            bytes[index] ^= 0x10
        }
        #expect(opened(sealed(packet, cipher: PacketCipher(key: TransferKey.random()))) == nil)
        #expect(opened(Array(bytes.dropLast())) == nil)
        #expect(opened(bytes + [0]) == nil)
    }

    @Test func nothingOfTheTextIsVisibleOnTheWire() {
        let bytes = sealed(.reject(reason: "a secret reason"))
        #expect(Data(bytes).range(of: Data("secret".utf8)) == nil)
    }

    @Test func dataIsSealedInPlaceAndOpensOnlyUnchanged() throws {
        let header = TransferPacket.DataHeader(id: .max, transmission: 1 << 50, sequence: 1 << 33, timestamp: .max,
                                               segmentSize: 1422)
        let payload = Array("the file's own bytes".utf8)
        var bytes = TransferPacket.sealData(header, payload: payload, cipher: Self.cipher)
        #expect(bytes.count == TransferPacket.dataHeaderSize + payload.count + TransferPacket.tagSize)
        #expect(Data(bytes).range(of: Data("own bytes".utf8)) == nil)
        let read = try #require(bytes.withUnsafeBytes { raw in
            TransferPacket.header(raw).flatMap { TransferPacket.dataHeader(raw, $0) }
        })
        #expect(read == header)
        func open(_ bytes: [UInt8]) -> [UInt8]? {
            bytes.withUnsafeBytes { raw in
                Self.cipher.open(UnsafeRawBufferPointer(rebasing: raw[TransferPacket.dataHeaderSize...]),
                                 header: UnsafeRawBufferPointer(rebasing: raw[..<TransferPacket.dataHeaderSize]),
                                 direction: .toAudience, number: header.transmission).map { Array($0) }
            }
        }
        #expect(open(bytes) == payload)
        // The sequence number is in clear but authenticated: moving the bytes elsewhere fails.
        bytes[27] ^= 1
        #expect(open(bytes) == nil)
        #expect(TransferPacket.ethernetSegmentPayload == 1472 - 34 - 16)
    }

    @Test func anAckCarriesAtMostWhatFitsTheBaseDatagram() {
        var ranges: [Range<UInt64>] = []
        for n in (0..<400 as Range<UInt64>).reversed() { ranges.append((10 + 3 * n)..<(11 + 3 * n)) }
        let packet = TransferPacket.ack(.init(echo: 0, largestTransmission: 1, cumulative: 5, limit: 2000, ranges: ranges))
        let bytes = sealed(packet)
        #expect(bytes.count <= TransferPacket.baseDatagram)
        guard case .ack(let decoded)? = opened(bytes) else {
            Issue.record("not an ACK")
            return
        }
        #expect(decoded.ranges == Array(ranges.prefix(TransferPacket.maxAckRanges)))
    }

    @Test func longReasonsAreCutOnACharacterBoundary() {
        let reason = String(repeating: "é", count: 400)
        guard case .reject(let decoded)? = opened(sealed(.reject(reason: reason))) else {
            Issue.record("not a REJECT")
            return
        }
        #expect(decoded.utf8.count <= 512 && reason.hasPrefix(decoded) && !decoded.isEmpty)
    }

    @Test func theReplayWindowRefusesRepeatsAndTheTooOld() {
        var window = ReplayWindow()
        let oldest = 5000 - ReplayWindow.width + 1
        let answers = [1, 3, 2, 2, 3, 5000, oldest - 1, oldest, oldest, 4999, 6000, 4999].map { window.accept($0) }
        #expect(answers == [true, true, true, false, false, true, false, true, false, true, true, false])
    }

    @Test func keysAreReadFromSixtyFourHexDigits() {
        let key = TransferKey.random()
        #expect(TransferKey(hex: key.hex) == key && key.hex.count == 64)
        #expect(key != TransferKey.random())
        for bad in ["", String(repeating: "a", count: 63), String(repeating: "A", count: 64), String(repeating: "g", count: 64)] {
            #expect(TransferKey(hex: bad) == nil, "\(bad)")
        }
    }
}

extension TransferPacketTests {
    /// The in-place cipher is AES-256-GCM as swift-crypto's own API computes it, both ways.
    @Test func sealingAgreesWithSwiftCryptosAESGCM() throws {
        let key = TransferKey.random()
        let cipher = PacketCipher(key: key)
        let header: [UInt8] = Array(0..<34), plain: [UInt8] = (0..<1200).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        var sealed = [UInt8](repeating: 0, count: plain.count + PacketCipher.tagSize)
        let count = plain.withUnsafeBytes { p in header.withUnsafeBytes { h in sealed.withUnsafeMutableBytes { out in
            cipher.seal(p, header: h, direction: .toAudience, number: 77, into: out.baseAddress!) } } }
        #expect(count == sealed.count)
        let nonce = withUnsafeBytes(of: PacketCipher.nonce(.toAudience, 77)) { Array($0.prefix(12)) }
        let box = try AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: nonce), ciphertext: sealed.prefix(plain.count),
                                        tag: sealed.suffix(PacketCipher.tagSize))
        #expect(Array(try AES.GCM.open(box, using: key.symmetric, authenticating: header)) == plain)
        let theirs = try AES.GCM.seal(plain, using: key.symmetric, nonce: AES.GCM.Nonce(data: nonce), authenticating: header)
        let opened = (Array(theirs.ciphertext) + Array(theirs.tag)).withUnsafeBytes { s in header.withUnsafeBytes { h in
            cipher.open(s, header: h, direction: .toAudience, number: 77) } }
        #expect(opened == plain)
        // Another number, another direction, another header: nothing opens.
        for (direction, number, extra) in [(Direction.toAudience, UInt64(78), UInt8(0)), (.toPresenter, 77, 0), (.toAudience, 77, 1)] {
            let changed = header.enumerated().map { $0.offset == 0 ? $0.element ^ extra : $0.element }
            let result = sealed.withUnsafeBytes { s in changed.withUnsafeBytes { h in
                cipher.open(s, header: h, direction: direction, number: number) } }
            #expect(result == nil)
        }
    }

    @Test func theNonceIsTheDirectionThenTheNumber() {
        let nonce = PacketCipher.nonce(.toPresenter, 0x0102_0304_0506_0708)
        #expect(withUnsafeBytes(of: nonce) { Array($0.prefix(12)) } == [0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8])
    }
}
