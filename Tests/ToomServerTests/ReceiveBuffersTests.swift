import NIOCore
import Testing
@testable import ToomServer

/// The receive-buffer rule: NIO's adaptive sizes, small enough to live inline in the channel.
@Suite struct ReceiveBuffersTests {
    @Test func fitsInlineInAnExistential() {
        // An existential stores three words inline; more would put a copy per connection on the heap.
        #expect(MemoryLayout<ReceiveBuffers>.size <= 3 * MemoryLayout<Int>.size)
    }

    @Test func growsAfterAFullReadAndShrinksAfterTwoSmallOnes() {
        var buffers = ReceiveBuffers(minimum: 64, initial: 64, maximum: 256)
        #expect(buffers.nextBufferSize() == 64)
        #expect(read(&buffers, 64))
        #expect(buffers.nextBufferSize() == 128)
        #expect(read(&buffers, 128))
        #expect(buffers.nextBufferSize() == 256)
        // At the maximum it stays.
        #expect(!read(&buffers, 256))
        #expect(buffers.nextBufferSize() == 256)
        // One small read is not enough to shrink; two in a row are.
        #expect(!read(&buffers, 10))
        #expect(buffers.nextBufferSize() == 256)
        #expect(!read(&buffers, 10))
        #expect(buffers.nextBufferSize() == 128)
        // A read in between resets the count.
        #expect(!read(&buffers, 10))
        #expect(!read(&buffers, 100))
        #expect(!read(&buffers, 10))
        #expect(buffers.nextBufferSize() == 128)
        #expect(!read(&buffers, 10))
        #expect(buffers.nextBufferSize() == 64)
        // Never below the minimum.
        #expect(!read(&buffers, 1))
        #expect(!read(&buffers, 1))
        #expect(buffers.nextBufferSize() == 64)
        #expect(buffers.buffer(allocator: ByteBufferAllocator()).capacity >= 64)
    }

    /// `record`, outside `#expect` (which cannot mutate).
    private func read(_ buffers: inout ReceiveBuffers, _ bytes: Int) -> Bool {
        buffers.record(actualReadBytes: bytes)
    }

    @Test func sizesAreRoundedUpToPowersOfTwo() {
        #expect(ReceiveBuffers(minimum: 50, initial: 100, maximum: 1000).nextBufferSize() == 128)
    }
}
