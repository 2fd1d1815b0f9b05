import ArgumentParser
import Foundation
import NIOCore
import ToomServer

/// `toom server` options for the limits that protect it (docs/SECURITY.md).
struct LimitOptions: ParsableArguments {
    @Option(name: .customLong("login-timeout"), help: ArgumentHelp("Seconds a connection has to log in before it is closed.", valueName: "seconds"))
    var loginTimeout: Double = 60

    @Option(name: .customLong("max-connections"), help: ArgumentHelp("Open connections at most; more are refused with a message.", valueName: "n"))
    var maxConnections: Int = 1024

    @Option(name: .customLong("max-unread-bytes"), help: ArgumentHelp("Reply bytes a client may leave unread before it is disconnected.", valueName: "bytes"))
    var maxUnreadBytes: Int = 1 << 20

    @Option(name: .customLong("address-failures"), help: ArgumentHelp("Failed logins one address may make per minute, across accounts, before it is refused (0: no limit).", valueName: "n"))
    var addressFailures: Int = 20

    @Option(name: .customLong("address-block-seconds"), help: ArgumentHelp("How long an address stays refused after too many failed logins.", valueName: "seconds"))
    var addressBlockSeconds: Double = 60

    func validate() throws {
        guard loginTimeout > 0, loginTimeout <= 86_400 else {
            throw ValidationError("Invalid --login-timeout: \(loginTimeout). It must be more than 0 and at most 86400")
        }
        guard maxConnections >= 1 else {
            throw ValidationError("Invalid --max-connections: \(maxConnections). It must be at least 1")
        }
        guard maxUnreadBytes >= 1024 else {
            throw ValidationError("Invalid --max-unread-bytes: \(maxUnreadBytes). It must be at least 1024")
        }
        guard addressFailures >= 0 else {
            throw ValidationError("Invalid --address-failures: \(addressFailures). It must be 0 (no limit) or more")
        }
        guard addressBlockSeconds > 0, addressBlockSeconds <= 86_400 else {
            throw ValidationError("Invalid --address-block-seconds: \(addressBlockSeconds). It must be more than 0 and at most 86400")
        }
    }

    var limits: ServerLimits {
        ServerLimits(loginTimeout: .duration(seconds: loginTimeout), maxConnections: maxConnections, maxUnreadBytes: maxUnreadBytes,
                     maxAddressFailures: addressFailures, addressBlockDuration: .duration(seconds: addressBlockSeconds))
    }

    /// Raises this process's open-file limit as far as allowed, so that `--max-connections`
    /// is reachable; returns a warning when it is not.
    func raiseOpenFileLimit() -> String? {
        var limit = rlimit()
        guard getrlimit(openFiles, &limit) == 0 else { return nil }
        // Room for the listening socket, the logs and the event loops' own descriptors.
        let wanted = rlim_t(maxConnections + 64)
        if limit.rlim_cur < wanted {
            limit.rlim_cur = min(wanted, limit.rlim_max)
            setrlimit(openFiles, &limit)
        }
        guard limit.rlim_cur < wanted else { return nil }
        return "the open-file limit (\(limit.rlim_cur)) is below --max-connections \(maxConnections) plus 64; raise it (ulimit -n) or lower --max-connections"
    }
}

#if os(Linux)
private let openFiles = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
#else
private let openFiles = RLIMIT_NOFILE
#endif

extension TimeAmount {
    static func duration(seconds value: Double) -> TimeAmount { .nanoseconds(Int64(value * 1e9)) }
}
