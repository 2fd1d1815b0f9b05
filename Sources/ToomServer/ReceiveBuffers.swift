import NIOCore

/// How big a connection's next receive buffer is: NIO's adaptive rule (powers of two
/// between a minimum and a maximum; double after a read that filled the buffer, halve after
/// two reads that would have fitted in half), kept in 13 bytes. The channel holds its
/// allocator as an existential, which stores up to three words inline: NIO's own adaptive
/// allocator is larger, so every connection carried a boxed copy of it on the heap (some
/// 64 bytes of an idle session, heaptrack).
struct ReceiveBuffers: RecvByteBufferAllocator {
    private let minimum: UInt32
    private let maximum: UInt32
    private var next: UInt32
    private var decreaseNow = false

    /// Sizes in bytes, rounded to powers of two; `initial` is the first buffer's.
    init(minimum: Int, initial: Int, maximum: Int) {
        precondition(0 < minimum && minimum <= initial && initial <= maximum && maximum <= 1 << 30)
        self.minimum = Self.powerOfTwo(atLeast: minimum)
        self.maximum = Self.powerOfTwo(atLeast: maximum)
        next = Self.powerOfTwo(atLeast: initial)
    }

    private static func powerOfTwo(atLeast n: Int) -> UInt32 {
        UInt32(1) << UInt32(Int.bitWidth - (n - 1).leadingZeroBitCount)
    }

    func buffer(allocator: ByteBufferAllocator) -> ByteBuffer {
        allocator.buffer(capacity: Int(next))
    }

    func nextBufferSize() -> Int? { Int(next) }

    mutating func record(actualReadBytes: Int) -> Bool {
        let lower = next / 2
        if actualReadBytes <= Int(lower), lower >= minimum {
            if decreaseNow { next = lower }
            decreaseNow.toggle()
            return false
        }
        decreaseNow = false
        guard actualReadBytes >= Int(next), next < maximum else { return false }
        next *= 2
        return true
    }
}
