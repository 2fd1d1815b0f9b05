import ToomCore
import NIOCore

/// The datagrams of the transfer protocol (docs/TRANSFER.md). Every datagram starts with
/// the same 12 bytes: magic "TF", version, type, transfer id; integers are big-endian.
public enum TransferPacket: Equatable, Sendable {
    // Sender → receiver.
    case start(id: UInt64, timestamp: UInt32, token: TransferToken, size: UInt64, name: String)
    case data(DataHeader)
    case ping(id: UInt64, transmission: UInt64, timestamp: UInt32)
    case finish(id: UInt64, transmission: UInt64, timestamp: UInt32, digest: [UInt8])
    case cancel(id: UInt64, reason: String)
    // Receiver → sender.
    case accept(id: UInt64, echo: UInt32, limit: UInt64)
    case ack(Acknowledgement)
    case done(id: UInt64)
    case reject(id: UInt64, reason: String)

    public static let magic: UInt16 = 0x5446  // "TF"
    public static let version: UInt8 = 1
    /// Largest datagram: what fits a 1,500-byte IPv4 path (1500 - 20 - 8).
    public static let maxDatagram = 1472
    public static let commonHeaderSize = 12
    public static let dataHeaderSize = 32
    /// File bytes per DATA datagram; only a file's last segment is shorter.
    public static let segmentPayload = maxDatagram - dataHeaderSize
    /// Fixed part of an ACK before its ranges, and the size of one range.
    static let ackHeaderSize = commonHeaderSize + 4 + 8 + 8 + 8 + 2
    static let ackRangeSize = 8
    /// Most ranges one ACK carries.
    public static let maxAckRanges = (maxDatagram - ackHeaderSize) / ackRangeSize
    static let maxReasonBytes = 512

    enum Kind: UInt8 {
        case start = 1, data = 2, ping = 3, finish = 4, cancel = 5
        case accept = 17, ack = 18, done = 19, reject = 20
    }

    /// The header of a DATA datagram; the payload follows it.
    public struct DataHeader: Equatable, Sendable {
        public var id: UInt64
        /// Counts every datagram the sender transmits, retransmissions included.
        public var transmission: UInt64
        /// Index of the segment: it holds file bytes from `sequence * segmentPayload`.
        public var sequence: UInt64
        /// The sender's clock in microseconds, echoed by the receiver for round-trip times.
        public var timestamp: UInt32

        public init(id: UInt64, transmission: UInt64, sequence: UInt64, timestamp: UInt32) {
            self.id = id
            self.transmission = transmission
            self.sequence = sequence
            self.timestamp = timestamp
        }
    }

    /// Selective acknowledgement with flow control.
    public struct Acknowledgement: Equatable, Sendable {
        public var id: UInt64
        /// Timestamp of the datagram with the largest transmission number seen.
        public var echo: UInt32
        public var largestTransmission: UInt64
        /// Every segment below this one has arrived.
        public var cumulative: UInt64
        /// The sender may send segments below this one (flow control).
        public var limit: UInt64
        /// Segments received above `cumulative`, highest first.
        public var ranges: [Range<UInt64>]

        public init(id: UInt64, echo: UInt32, largestTransmission: UInt64, cumulative: UInt64,
                    limit: UInt64, ranges: [Range<UInt64>]) {
            self.id = id
            self.echo = echo
            self.largestTransmission = largestTransmission
            self.cumulative = cumulative
            self.limit = limit
            self.ranges = ranges
        }
    }

    public var id: UInt64 {
        switch self {
        case .start(let id, _, _, _, _), .ping(let id, _, _), .finish(let id, _, _, _), .cancel(let id, _),
             .accept(let id, _, _), .done(let id), .reject(let id, _):
            return id
        case .data(let header): return header.id
        case .ack(let ack): return ack.id
        }
    }

    // MARK: Encoding

    public func encode(into buffer: inout ByteBuffer) {
        switch self {
        case .start(let id, let timestamp, let token, let size, let name):
            Self.writeCommon(.start, id, &buffer)
            buffer.writeInteger(timestamp)
            buffer.writeInteger(token.high)
            buffer.writeInteger(token.low)
            buffer.writeInteger(size)
            Self.writeText(name, &buffer)
        case .data(let header):
            Self.writeDataHeader(header, &buffer)
        case .ping(let id, let transmission, let timestamp):
            Self.writeCommon(.ping, id, &buffer)
            buffer.writeInteger(transmission)
            buffer.writeInteger(timestamp)
        case .finish(let id, let transmission, let timestamp, let digest):
            Self.writeCommon(.finish, id, &buffer)
            buffer.writeInteger(transmission)
            buffer.writeInteger(timestamp)
            buffer.writeBytes(digest)
        case .cancel(let id, let reason):
            Self.writeCommon(.cancel, id, &buffer)
            Self.writeText(reason, &buffer)
        case .accept(let id, let echo, let limit):
            Self.writeCommon(.accept, id, &buffer)
            buffer.writeInteger(echo)
            buffer.writeInteger(limit)
        case .ack(let ack):
            Self.writeCommon(.ack, id, &buffer)
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
        case .done(let id):
            Self.writeCommon(.done, id, &buffer)
        case .reject(let id, let reason):
            Self.writeCommon(.reject, id, &buffer)
            Self.writeText(reason, &buffer)
        }
    }

    public var encoded: ByteBuffer {
        var buffer = ByteBuffer()
        encode(into: &buffer)
        return buffer
    }

    static func writeDataHeader(_ header: DataHeader, _ buffer: inout ByteBuffer) {
        writeCommon(.data, header.id, &buffer)
        buffer.writeInteger(header.transmission)
        buffer.writeInteger(header.sequence)
        buffer.writeInteger(header.timestamp)
    }

    /// Writes a DATA header into raw memory (the sender's hot path).
    static func storeDataHeader(_ header: DataHeader, at pointer: UnsafeMutableRawPointer) {
        pointer.storeBytes(of: magic.bigEndian, as: UInt16.self)
        pointer.storeBytes(of: version, toByteOffset: 2, as: UInt8.self)
        pointer.storeBytes(of: Kind.data.rawValue, toByteOffset: 3, as: UInt8.self)
        pointer.storeBytes(of: header.id.bigEndian, toByteOffset: 4, as: UInt64.self)
        pointer.storeBytes(of: header.transmission.bigEndian, toByteOffset: 12, as: UInt64.self)
        pointer.storeBytes(of: header.sequence.bigEndian, toByteOffset: 20, as: UInt64.self)
        pointer.storeBytes(of: header.timestamp.bigEndian, toByteOffset: 28, as: UInt32.self)
    }

    private static func writeCommon(_ kind: Kind, _ id: UInt64, _ buffer: inout ByteBuffer) {
        buffer.writeInteger(magic)
        buffer.writeInteger(version)
        buffer.writeInteger(kind.rawValue)
        buffer.writeInteger(id)
    }

    private static func writeText(_ text: String, _ buffer: inout ByteBuffer) {
        var bytes = Array(text.utf8.prefix(maxReasonBytes))
        // Never cut a character in half.
        while !bytes.isEmpty, String(validating: bytes, as: UTF8.self) == nil { bytes.removeLast() }
        buffer.writeInteger(UInt16(bytes.count))
        buffer.writeBytes(bytes)
    }

    // MARK: Decoding

    /// Reads a DATA header from raw bytes; nil if they do not start one.
    static func dataHeader(_ bytes: UnsafeRawBufferPointer) -> DataHeader? {
        guard bytes.count >= dataHeaderSize,
              UInt16(bigEndian: bytes.loadUnaligned(as: UInt16.self)) == magic,
              bytes[2] == version, bytes[3] == Kind.data.rawValue
        else { return nil }
        return DataHeader(id: UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt64.self)),
                          transmission: UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 12, as: UInt64.self)),
                          sequence: UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 20, as: UInt64.self)),
                          timestamp: UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: 28, as: UInt32.self)))
    }

    /// Decodes one datagram. Nil for anything malformed: wrong magic or version, an
    /// unknown type, a length that does not add up, text that is not UTF-8.
    public static func decode(_ bytes: UnsafeRawBufferPointer) -> TransferPacket? {
        var reader = Reader(bytes: bytes)
        guard reader.u16() == magic, reader.u8() == version, let rawKind = reader.u8(),
              let kind = Kind(rawValue: rawKind), let id = reader.u64()
        else { return nil }
        let packet: TransferPacket?
        switch kind {
        case .start:
            guard let timestamp = reader.u32(), let high = reader.u64(), let low = reader.u64(),
                  let size = reader.u64(), let name = reader.text() else { return nil }
            packet = .start(id: id, timestamp: timestamp, token: TransferToken(high: high, low: low), size: size, name: name)
        case .data:
            guard let header = dataHeader(bytes) else { return nil }
            return .data(header)
        case .ping:
            guard let transmission = reader.u64(), let timestamp = reader.u32() else { return nil }
            packet = .ping(id: id, transmission: transmission, timestamp: timestamp)
        case .finish:
            guard let transmission = reader.u64(), let timestamp = reader.u32(), let digest = reader.bytes(32) else { return nil }
            packet = .finish(id: id, transmission: transmission, timestamp: timestamp, digest: digest)
        case .cancel:
            guard let reason = reader.text() else { return nil }
            packet = .cancel(id: id, reason: reason)
        case .accept:
            guard let echo = reader.u32(), let limit = reader.u64() else { return nil }
            packet = .accept(id: id, echo: echo, limit: limit)
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
            packet = .ack(Acknowledgement(id: id, echo: echo, largestTransmission: largest, cumulative: cumulative,
                                          limit: limit, ranges: ranges))
        case .done:
            packet = .done(id: id)
        case .reject:
            guard let reason = reader.text() else { return nil }
            packet = .reject(id: id, reason: reason)
        }
        return reader.isAtEnd ? packet : nil
    }

    public static func decode(_ buffer: ByteBuffer) -> TransferPacket? {
        buffer.withUnsafeReadableBytes { decode($0) }
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

        mutating func u8() -> UInt8? { load(UInt8.self) }
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
