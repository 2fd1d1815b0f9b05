import Foundation
import ToomCore
import NIOCore

/// The datagrams of the transfer protocol (docs/TRANSFER.md §3). Every datagram starts
/// with the same 20 clear bytes: magic "TF", version, type, transfer id, number; the rest
/// is AES-256-GCM ciphertext with the header as authenticated data, then the 16-byte tag.
/// DATA alone keeps its own fixed fields in clear (authenticated too) so that only its
/// payload goes through the cipher. Integers are big-endian.
public enum TransferPacket: Equatable, Sendable {
    // Presenter → audience.
    case start(Start)
    case data(DataHeader)
    case ping(timestamp: UInt32, segmentSize: UInt16)
    case finish(timestamp: UInt32, segmentSize: UInt16)
    case cancel(reason: String)
    /// Padding to `size` bytes on the wire: does a datagram that large get through?
    case probe(size: UInt16)
    // Audience → presenter.
    case accept(echo: UInt32, resumeFrom: UInt64, window: UInt64)
    case ack(Acknowledgement)
    case done
    case reject(reason: String)
    case probeAck(size: UInt16)
    /// Opens the audience's NAT towards one of the presenter's addresses (spec §12); the
    /// presenter drops it unread. Numbered from `punchNumbers`, apart from the audience's
    /// other datagrams, so that no nonce repeats.
    case punch

    public static let magic: UInt16 = 0x5446  // "TF"
    public static let version: UInt8 = 2
    public static let headerSize = 20
    public static let tagSize = PacketCipher.tagSize
    /// What fits a 1,500-byte IPv4 path (1500 - 20 - 8): Ethernet's, and most of the Internet's.
    public static let ethernetDatagram = 1472
    /// Largest datagram: what one IPv4 packet holds (65,535 - 20 - 8). Only a route whose
    /// MTU allows it (loopback's is 64 KiB) is probed for more than 1,472 bytes.
    public static let maxDatagram = 65_507
    /// The datagram size every path must carry (QUIC's, RFC 9000 §14): START is padded
    /// to it, and replies never exceed it.
    public static let baseDatagram = 1200
    /// Sizes probed above the base besides the route's own: a 1,500-byte and a
    /// 1,280-byte IPv4 path.
    public static let commonDatagrams: [Int] = [ethernetDatagram, 1252]
    /// DATA's clear fields after the common header: segment u64, timestamp u32, segment size u16.
    public static let dataHeaderSize = headerSize + 14
    /// File bytes a DATA datagram of `datagram` bytes carries.
    public static func segmentPayload(datagram: Int) -> Int { datagram - dataHeaderSize - tagSize }
    /// File bytes per DATA datagram on a 1,500-byte path.
    public static let ethernetSegmentPayload = segmentPayload(datagram: ethernetDatagram)
    static let ackFixedSize = 4 + 8 + 8 + 8 + 2
    static let ackRangeSize = 8
    /// Most ranges one ACK carries, within the base datagram size.
    public static let maxAckRanges = (baseDatagram - headerSize - tagSize - ackFixedSize) / ackRangeSize
    static let maxReasonBytes = 512

    public enum Kind: UInt8, Sendable {
        case start = 1, data = 2, ping = 3, finish = 4, cancel = 5, probe = 6
        case accept = 17, ack = 18, done = 19, reject = 20, probeAck = 21, punch = 22

        var direction: Direction { rawValue < 16 ? .toAudience : .toPresenter }
    }

    /// What every datagram says in clear.
    /// Where PUNCH numbers start: far above any the audience's replies reach.
    static let punchNumbers: UInt64 = 1 << 62

    public struct Header: Equatable, Sendable {
        public var kind: Kind
        public var id: UInt64
        /// New for every datagram in its direction, retransmissions included: the nonce.
        public var number: UInt64
    }

    public struct Start: Equatable, Sendable {
        public var timestamp: UInt32
        public var token: TransferToken
        public var size: UInt64
        /// What the file is, independent of the key: a resumed transfer must show the same.
        public var identity: FileIdentity
        public var name: String
    }

    /// DATA's clear fields; the sealed payload follows them.
    public struct DataHeader: Equatable, Sendable {
        public var id: UInt64
        /// The datagram's number (QUIC's packet number): every transmission gets a new one.
        public var transmission: UInt64
        /// Index of the segment: it holds the bytes from `resume point + sequence × segmentSize`.
        public var sequence: UInt64
        /// The sender's clock in microseconds, echoed by the receiver for round-trip times.
        public var timestamp: UInt32
        /// File bytes per full segment, fixed for the transfer once the path's size is known.
        public var segmentSize: UInt16
    }

    /// Selective acknowledgement with flow control.
    public struct Acknowledgement: Equatable, Sendable {
        /// Timestamp of the datagram with the largest number seen.
        public var echo: UInt32
        public var largestTransmission: UInt64
        /// Every segment below this one has arrived.
        public var cumulative: UInt64
        /// The sender may send segments below this one (flow control).
        public var limit: UInt64
        /// Segments received above `cumulative`, highest first.
        public var ranges: [Range<UInt64>]
    }

    var kind: Kind {
        switch self {
        case .start: .start
        case .data: .data
        case .ping: .ping
        case .finish: .finish
        case .cancel: .cancel
        case .probe: .probe
        case .accept: .accept
        case .ack: .ack
        case .done: .done
        case .reject: .reject
        case .probeAck: .probeAck
        case .punch: .punch
        }
    }

    // MARK: Encoding

    /// Seals a datagram that is not DATA: header in clear, body encrypted, tag.
    func seal(id: UInt64, number: UInt64, cipher: PacketCipher, into buffer: inout ByteBuffer) {
        var body = ByteBuffer()
        writeBody(into: &body)
        var header = ByteBuffer()
        Self.writeHeader(Header(kind: kind, id: id, number: number), into: &header)
        buffer.writeImmutableBuffer(header)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: body.readableBytes + Self.tagSize) { out in
            header.withUnsafeReadableBytes { header in
                body.withUnsafeReadableBytes { body in
                    cipher.seal(body, header: header, direction: kind.direction, number: number, into: out.baseAddress!)
                }
            }
        }
    }

    private func writeBody(into buffer: inout ByteBuffer) {
        switch self {
        case .start(let start):
            buffer.writeInteger(start.timestamp)
            buffer.writeInteger(start.token.high)
            buffer.writeInteger(start.token.low)
            buffer.writeInteger(start.size)
            start.identity.write(into: &buffer)
            Self.writeText(start.name, &buffer)
            // Padded: the handshake itself shows that base-size datagrams get through.
            let room = Self.baseDatagram - Self.headerSize - Self.tagSize - buffer.readableBytes
            if room > 0 { buffer.writeRepeatingByte(0, count: room) }
        case .data(let header):
            // DATA is sealed by the sender's hot path (`storeDataHeader` + `PacketCipher.seal`).
            buffer.writeInteger(header.sequence)
            buffer.writeInteger(header.timestamp)
            buffer.writeInteger(header.segmentSize)
        case .ping(let timestamp, let segmentSize), .finish(let timestamp, let segmentSize):
            buffer.writeInteger(timestamp)
            buffer.writeInteger(segmentSize)
        case .cancel(let reason), .reject(let reason):
            Self.writeText(reason, &buffer)
        case .probe(let size):
            buffer.writeInteger(size)
            let room = Int(size) - Self.headerSize - Self.tagSize - 2
            if room > 0 { buffer.writeRepeatingByte(0, count: room) }
        case .accept(let echo, let resumeFrom, let window):
            buffer.writeInteger(echo)
            buffer.writeInteger(resumeFrom)
            buffer.writeInteger(window)
        case .ack(let ack):
            buffer.writeInteger(ack.echo)
            buffer.writeInteger(ack.largestTransmission)
            buffer.writeInteger(ack.cumulative)
            buffer.writeInteger(ack.limit)
            let ranges = ack.ranges.prefix(Self.maxAckRanges)
            buffer.writeInteger(UInt16(ranges.count))
            for range in ranges {
                // Relative to the cumulative point, so four bytes each suffice.
                buffer.writeInteger(UInt32(truncatingIfNeeded: range.lowerBound - ack.cumulative))
                buffer.writeInteger(UInt32(truncatingIfNeeded: range.count))
            }
        case .done, .punch:
            break
        case .probeAck(let size):
            buffer.writeInteger(size)
        }
    }

    static func writeHeader(_ header: Header, into buffer: inout ByteBuffer) {
        buffer.writeInteger(magic)
        buffer.writeInteger(version)
        buffer.writeInteger(header.kind.rawValue)
        buffer.writeInteger(header.id)
        buffer.writeInteger(header.number)
    }

    /// Writes DATA's clear fields into raw memory (the sender's hot path).
    static func storeDataHeader(_ header: DataHeader, at pointer: UnsafeMutableRawPointer) {
        pointer.storeBytes(of: magic.bigEndian, as: UInt16.self)
        pointer.storeBytes(of: version, toByteOffset: 2, as: UInt8.self)
        pointer.storeBytes(of: Kind.data.rawValue, toByteOffset: 3, as: UInt8.self)
        pointer.storeBytes(of: header.id.bigEndian, toByteOffset: 4, as: UInt64.self)
        pointer.storeBytes(of: header.transmission.bigEndian, toByteOffset: 12, as: UInt64.self)
        pointer.storeBytes(of: header.sequence.bigEndian, toByteOffset: 20, as: UInt64.self)
        pointer.storeBytes(of: header.timestamp.bigEndian, toByteOffset: 28, as: UInt32.self)
        pointer.storeBytes(of: header.segmentSize.bigEndian, toByteOffset: 32, as: UInt16.self)
    }

    /// A whole sealed DATA datagram (tests and tools; the sender builds them in place).
    static func sealData(_ header: DataHeader, payload: [UInt8], cipher: PacketCipher) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: dataHeaderSize + payload.count + tagSize)
        bytes.withUnsafeMutableBytes { out in
            storeDataHeader(header, at: out.baseAddress!)
            payload.withUnsafeBytes { payload in
                _ = cipher.seal(payload, header: UnsafeRawBufferPointer(rebasing: out[..<dataHeaderSize]),
                                direction: .toAudience, number: header.transmission,
                                into: out.baseAddress! + dataHeaderSize)
            }
        }
        return bytes
    }

    private static func writeText(_ text: String, _ buffer: inout ByteBuffer) {
        var bytes = Array(text.utf8.prefix(maxReasonBytes))
        // Never cut a character in half.
        while !bytes.isEmpty, String(validating: bytes, as: UTF8.self) == nil { bytes.removeLast() }
        buffer.writeInteger(UInt16(bytes.count))
        buffer.writeBytes(bytes)
    }

    // MARK: Decoding

    /// The clear header; nil unless magic, version and type are right and a tag can follow.
    public static func header(_ bytes: UnsafeRawBufferPointer) -> Header? {
        guard bytes.count >= headerSize + tagSize,
              UInt16(bigEndian: bytes.loadUnaligned(as: UInt16.self)) == magic,
              bytes[2] == version, let kind = Kind(rawValue: bytes[3])
        else { return nil }
        return Header(kind: kind, id: UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt64.self)),
                      number: UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 12, as: UInt64.self)))
    }

    /// DATA's clear fields; nil if the datagram is too short to hold them and a tag.
    static func dataHeader(_ bytes: UnsafeRawBufferPointer, _ header: Header) -> DataHeader? {
        guard header.kind == .data, bytes.count >= dataHeaderSize + tagSize else { return nil }
        return DataHeader(id: header.id, transmission: header.number,
                          sequence: UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 20, as: UInt64.self)),
                          timestamp: UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: 28, as: UInt32.self)),
                          segmentSize: UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: 32, as: UInt16.self)))
    }

    /// Opens and decodes a datagram that is not DATA. Nil for anything forged, altered or
    /// malformed: a failed tag, a length that does not add up, text that is not UTF-8.
    static func open(_ bytes: UnsafeRawBufferPointer, _ header: Header, cipher: PacketCipher) -> TransferPacket? {
        guard header.kind != .data,
              let plain = cipher.open(UnsafeRawBufferPointer(rebasing: bytes[headerSize...]),
                                      header: UnsafeRawBufferPointer(rebasing: bytes[..<headerSize]),
                                      direction: header.kind.direction, number: header.number)
        else { return nil }
        return plain.withUnsafeBytes { decodeBody(header.kind, $0) }
    }

    static func decodeBody(_ kind: Kind, _ bytes: UnsafeRawBufferPointer) -> TransferPacket? {
        var reader = Reader(bytes: bytes)
        let packet: TransferPacket?
        switch kind {
        case .start:
            guard let timestamp = reader.u32(), let high = reader.u64(), let low = reader.u64(),
                  let size = reader.u64(), let identity = reader.bytes(FileIdentity.size), let name = reader.text()
            else { return nil }
            // Padding may follow.
            return .start(Start(timestamp: timestamp, token: TransferToken(high: high, low: low), size: size,
                                identity: FileIdentity(bytes: identity), name: name))
        case .data:
            return nil
        case .ping:
            guard let timestamp = reader.u32(), let segmentSize = reader.u16() else { return nil }
            packet = .ping(timestamp: timestamp, segmentSize: segmentSize)
        case .finish:
            guard let timestamp = reader.u32(), let segmentSize = reader.u16() else { return nil }
            packet = .finish(timestamp: timestamp, segmentSize: segmentSize)
        case .cancel:
            guard let reason = reader.text() else { return nil }
            packet = .cancel(reason: reason)
        case .probe:
            guard let size = reader.u16() else { return nil }
            // Padding follows.
            return .probe(size: size)
        case .accept:
            guard let echo = reader.u32(), let resumeFrom = reader.u64(), let window = reader.u64() else { return nil }
            packet = .accept(echo: echo, resumeFrom: resumeFrom, window: window)
        case .ack:
            guard let echo = reader.u32(), let largest = reader.u64(), let cumulative = reader.u64(),
                  let limit = reader.u64(), let count = reader.u16() else { return nil }
            var ranges: [Range<UInt64>] = []
            ranges.reserveCapacity(Int(count))
            for _ in 0..<count {
                guard let offset = reader.u32(), let length = reader.u32(), length > 0, offset > 0 else { return nil }
                let lower = cumulative &+ UInt64(offset)
                guard lower >= cumulative, lower &+ UInt64(length) > lower else { return nil }
                ranges.append(lower..<(lower + UInt64(length)))
            }
            packet = .ack(Acknowledgement(echo: echo, largestTransmission: largest, cumulative: cumulative,
                                          limit: limit, ranges: ranges))
        case .done:
            packet = .done
        case .punch:
            packet = .punch
        case .reject:
            guard let reason = reader.text() else { return nil }
            packet = .reject(reason: reason)
        case .probeAck:
            guard let size = reader.u16() else { return nil }
            packet = .probeAck(size: size)
        }
        return reader.isAtEnd ? packet : nil
    }

    /// Reads big-endian fields, failing softly at the end of the bytes.
    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        var offset = 0

        var isAtEnd: Bool { offset == bytes.count }

        mutating func load<T: FixedWidthInteger>(_: T.Type) -> T? {
            let size = MemoryLayout<T>.size
            guard bytes.count - offset >= size else { return nil }
            defer { offset += size }
            return T(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
        }

        mutating func u16() -> UInt16? { load(UInt16.self) }
        mutating func u32() -> UInt32? { load(UInt32.self) }
        mutating func u64() -> UInt64? { load(UInt64.self) }

        mutating func bytes(_ count: Int) -> [UInt8]? {
            guard bytes.count - offset >= count else { return nil }
            defer { offset += count }
            return Array(bytes[offset..<(offset + count)])
        }

        mutating func text() -> String? {
            guard let length = u16(), Int(length) <= TransferPacket.maxReasonBytes,
                  let raw = bytes(Int(length)) else { return nil }
            return String(validating: raw, as: UTF8.self)
        }
    }
}
