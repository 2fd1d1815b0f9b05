import Foundation
import NIOConcurrencyHelpers
import NIOCore
import ToomChat
import ToomCore
import ToomSecurity

public struct ServerConfiguration: Sendable {
    /// Interface to listen on; "::" is every interface, IPv6 and IPv4 (falling back to
    /// "0.0.0.0" where the system has no IPv6).
    public var host: String
    /// TCP port; 0 picks a free one (reported once bound).
    public var port: Int
    /// Consecutive wrong passwords that block an account (1…5).
    public var attempts: Int
    /// Where `credentials.txt` is read and the logs are written.
    public var dataDirectory: String
    public var blockDuration: TimeAmount
    /// Move old logs aside into a dated folder before starting.
    public var fresh: Bool
    /// fsync each log write before replying (group commit: concurrent writers share an fsync).
    public var sync: Bool
    public var limits: ServerLimits
    /// Flood control (spec §8): messages a second per user once `messageBurst` is spent; 0 is off.
    public var messageRate: Double
    public var messageBurst: Int
    /// TLS on the listening port beside plaintext (spec §9); nil serves plaintext only.
    public var tls: ServerTLS?
    /// Bytes a second the UDP port relays for all transfers together (spec §12); 0: no relay.
    public var relayRate: UInt64 = ServerConfiguration.defaultRelayRate

    /// 10 MiB a second: a video in minutes, and a small share of a server's uplink.
    public static let defaultRelayRate: UInt64 = 10 << 20

    public init(host: String = "::", port: Int, attempts: Int, dataDirectory: String = ".",
                blockDuration: TimeAmount = .seconds(10), fresh: Bool = false, sync: Bool = false,
                limits: ServerLimits = ServerLimits(), messageRate: Double = ChatSettings.defaultMessageRate,
                messageBurst: Int = ChatSettings.defaultMessageBurst, tls: ServerTLS? = nil) {
        self.host = host
        self.port = port
        self.attempts = attempts
        self.dataDirectory = dataDirectory
        self.blockDuration = blockDuration
        self.fresh = fresh
        self.sync = sync
        self.limits = limits
        self.messageRate = messageRate
        self.messageBurst = messageBurst
        self.tls = tls
    }

    /// The rules' share of the configuration.
    var chatSettings: ChatSettings {
        ChatSettings(attempts: attempts, blockDuration: .nanoseconds(blockDuration.nanoseconds),
                     loginTimeout: .nanoseconds(limits.loginTimeout.nanoseconds),
                     addressFailures: limits.maxAddressFailures,
                     addressWindow: .nanoseconds(limits.addressWindow.nanoseconds),
                     addressBlockDuration: .nanoseconds(limits.addressBlockDuration.nanoseconds),
                     messageRate: messageRate, messageBurst: messageBurst, rendezvous: true,
                     relay: relayRate > 0)
    }
}

/// Where the server's terminal output goes: event lines (spec §5) and diagnostics.
/// The operator console replaces the default so lines print above the prompt.
public protocol ServerOutput: Sendable {
    func events(_ lines: [String])
    func diagnostic(_ line: String)
}

/// Event lines on stdout, diagnostics on stderr. Event lines are written by a thread of
/// their own: under load the lines of many commands leave in one `write(2)` instead of one
/// each, and no event loop waits for the terminal. A diagnostic first writes the event lines
/// before it, so the two streams keep their order.
public final class StandardServerOutput: ServerOutput, @unchecked Sendable {
    private let condition = NSCondition()
    private var pending = ""
    private var writerWaiting = false
    private var writerStarted = false
    /// The writer is writing lines it took; a diagnostic waits for them.
    private var writing = false

    public init() {}

    public func events(_ lines: [String]) {
        guard !lines.isEmpty else { return }
        condition.withLock {
            for line in lines {
                pending += line
                pending += "\n"
            }
            if !writerStarted {
                writerStarted = true
                let thread = Thread { [self] in writeEvents() }
                thread.name = "toom-events"
                thread.start()
            } else if writerWaiting {
                condition.broadcast()
            }
        }
    }

    public func diagnostic(_ line: String) {
        condition.withLock {
            while writing { condition.wait() }
            writePending()
            RawOutput.write(2, line + "\n")
        }
    }

    private func writeEvents() {
        condition.lock()
        while true {
            while pending.isEmpty {
                writerWaiting = true
                condition.wait()
                writerWaiting = false
                // Woken by the first lines after a quiet spell: under load, let a millisecond's
                // lines gather, so the thread is woken (and writes) at most a thousand times a second.
                condition.unlock()
                usleep(1000)
                condition.lock()
            }
            let text = pending
            pending = ""
            writing = true
            condition.unlock()
            RawOutput.write(1, text)
            condition.lock()
            writing = false
            condition.broadcast()
        }
    }

    /// Writes what is pending now, under the lock (for a diagnostic that must come after it).
    private func writePending() {
        guard !pending.isEmpty else { return }
        RawOutput.write(1, pending)
        pending = ""
    }
}
