import NIOConcurrencyHelpers
import NIOCore
import ToomCore
import ToomSecurity

public struct ServerConfiguration: Sendable {
    /// Interface to listen on; "0.0.0.0" is every IPv4 interface.
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
    /// TLS on the listening port beside plaintext (spec §9); nil serves plaintext only.
    public var tls: ServerTLS?

    public init(host: String = "0.0.0.0", port: Int, attempts: Int, dataDirectory: String = ".",
                blockDuration: TimeAmount = .seconds(10), fresh: Bool = false, sync: Bool = false,
                limits: ServerLimits = ServerLimits(), tls: ServerTLS? = nil) {
        self.host = host
        self.port = port
        self.attempts = attempts
        self.dataDirectory = dataDirectory
        self.blockDuration = blockDuration
        self.fresh = fresh
        self.sync = sync
        self.limits = limits
        self.tls = tls
    }
}

/// Where the server's terminal output goes: event lines (spec §5) and diagnostics.
/// The operator console replaces the default so lines print above the prompt.
public protocol ServerOutput: Sendable {
    func events(_ lines: [String])
    func diagnostic(_ line: String)
}

/// Event lines on stdout, diagnostics on stderr; one write per batch so lines never interleave.
public final class StandardServerOutput: ServerOutput {
    private let lock = NIOLock()
    public init() {}

    public func events(_ lines: [String]) {
        guard !lines.isEmpty else { return }
        lock.withLock { RawOutput.write(1, lines.joined(separator: "\n") + "\n") }
    }

    public func diagnostic(_ line: String) {
        lock.withLock { RawOutput.write(2, line + "\n") }
    }
}
