import Foundation
import Histogram
import NIOCore

/// A fan-out message's text, `fan <sender> <sequence> <sent at, ns of uptime>`, found at the end
/// of whatever line carries it: toom's `EVENT B …`, the relay's copy of the frame, ngircd's `PRIVMSG`.
struct FanoutMessage {
    let sender: Int
    let sequence: Int
    let sentAt: UInt64

    static func text(sender: Int, sequence: Int) -> String {
        "fan \(sender) \(sequence) \(DispatchTime.now().uptimeNanoseconds)"
    }

    /// Reads the three numbers backwards from the end of the line; nil for any other line.
    static func parse(_ line: ByteBuffer) -> FanoutMessage? {
        line.withUnsafeReadableBytes { bytes -> FanoutMessage? in
            var end = bytes.count
            if end > 0, bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            var numbers: [UInt64] = [0, 0, 0]
            for n in (0..<3).reversed() {
                var value: UInt64 = 0, scale: UInt64 = 1, digits = 0
                while end > 0, bytes[end - 1] >= UInt8(ascii: "0"), bytes[end - 1] <= UInt8(ascii: "9"), digits < 19 {
                    value += UInt64(bytes[end - 1] - UInt8(ascii: "0")) * scale
                    scale &*= 10
                    digits += 1
                    end -= 1
                }
                guard digits > 0, end > 0, bytes[end - 1] == UInt8(ascii: " ") else { return nil }
                numbers[n] = value
                end -= 1
            }
            guard end >= 3, bytes[end - 3] == UInt8(ascii: "f"), bytes[end - 2] == UInt8(ascii: "a"),
                  bytes[end - 1] == UInt8(ascii: "n") else { return nil }
            return FanoutMessage(sender: Int(numbers[0]), sequence: Int(numbers[1]), sentAt: numbers[2])
        }
    }
}

/// One fan-out run: `senders` connections send, every receiver's copy is counted and timed. A
/// sender keeps at most `window` messages that have not yet reached all their receivers, so
/// queues stay bounded and the rate is what the server and the receivers sustain together.
final class FanoutLoad: @unchecked Sendable {
    let senders: Int
    /// Receivers of each message: every client but its sender.
    let receivers: Int
    let window: Int
    private let frame: @Sendable (String) -> String
    private let lock = NSLock()
    private var channels: [Channel] = []
    private var sent: [Int]
    private var delivered: [Int]
    private var deadline: UInt64 = 0
    private var started: UInt64 = 0
    private var counted = 0
    private var disorder = 0
    private var latency = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)

    /// `frame` wraps a message's text into the frame its server expects.
    init(senders: Int, receivers: Int, window: Int, frame: @escaping @Sendable (String) -> String) {
        self.senders = senders
        self.receivers = receivers
        self.window = window
        self.frame = frame
        sent = Array(repeating: 0, count: senders)
        delivered = Array(repeating: 0, count: senders)
    }

    struct Result {
        /// Deliveries per second within the timed window.
        let rate: Double
        /// Send to receipt, µs.
        let latency: Histogram<UInt64>
        let deliveries: Int
        /// Deliveries over the whole run, the drain included.
        let total: Int
        /// Deliveries that arrived out of order, after a gap, or twice.
        let disorder: Int
        /// Messages sent whose deliveries never all arrived.
        let missing: Int
    }

    /// Sends for `seconds` from `channels` (the senders' connections, in sender order), then
    /// waits up to `drain` seconds for the last deliveries.
    func run(from channels: [Channel], seconds: Double, drain: Double = 10) async throws -> Result {
        precondition(channels.count == senders)
        lock.withLock {
            self.channels = channels
            started = DispatchTime.now().uptimeNanoseconds
            deadline = started + UInt64(seconds * 1e9)
        }
        for sender in 0..<senders { send(sender, upTo: window) }
        try await Task.sleep(for: .seconds(seconds))
        let drainEnd = DispatchTime.now().uptimeNanoseconds + UInt64(drain * 1e9)
        while !lock.withLock({ zip(sent, delivered).allSatisfy { $0 * receivers == $1 } }),
              DispatchTime.now().uptimeNanoseconds < drainEnd {
            try await Task.sleep(for: .milliseconds(20))
        }
        return lock.withLock {
            let missing = zip(sent, delivered).map { max(0, $0 - $1 / receivers) }.reduce(0, +)
            return Result(rate: Double(counted) / (Double(deadline - started) / 1e9), latency: latency,
                          deliveries: counted, total: delivered.reduce(0, +), disorder: disorder, missing: missing)
        }
    }

    /// A receiver got a message (called on the receiver's event loop).
    func received(_ message: FanoutMessage, inOrder: Bool) {
        let now = DispatchTime.now().uptimeNanoseconds
        let allowed: Int = lock.withLock {
            if !inOrder { disorder += 1 }
            delivered[message.sender] += 1
            guard now < deadline else { return 0 }
            latency.record(now >= message.sentAt ? (now - message.sentAt) / 1000 : 0)
            counted += 1
            return delivered[message.sender] / receivers + window
        }
        if allowed > 0 { send(message.sender, upTo: allowed) }
    }

    /// Sends the sender's next messages until it has sent `limit` in all. Queued on the
    /// channel's event loop under the lock, so that two receivers' calls cannot swap them.
    private func send(_ sender: Int, upTo limit: Int) {
        lock.withLock {
            guard !channels.isEmpty, sent[sender] < limit else { return }
            var buffer = ByteBufferAllocator().buffer(capacity: 64 * (limit - sent[sender]))
            while sent[sender] < limit {
                buffer.writeString(frame(FanoutMessage.text(sender: sender, sequence: sent[sender])))
                sent[sender] += 1
            }
            let channel = channels[sender], frames = buffer
            channel.eventLoop.execute { channel.writeAndFlush(frames, promise: nil) }
        }
    }
}
