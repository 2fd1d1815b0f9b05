import Foundation
/// How long tests and toom-bench wait for something before failing: generous, because CI
/// machines are slow and shared.
public let patience: Duration = .seconds(60)

/// What `eventually` throws when the condition did not come true in time.
public struct TimedOut: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Polls `condition` until it is true, or throws `TimedOut` once `timeout` has passed.
/// The one way tests and toom-bench wait for an event: never a fixed sleep.
public func eventually(_ what: @autoclosure () -> String, timeout: Duration = patience,
                       every interval: Duration = .milliseconds(20),
                       _ condition: () async throws -> Bool) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while true {
        if try await condition() { return }
        if clock.now >= deadline { throw TimedOut("timed out waiting for \(what())") }
        try await Task.sleep(for: interval)
    }
}

/// Runs a call that may block for seconds (a socket read waiting for the server to close,
/// say) on a thread of its own: the cooperative pool has as many threads as cores, and a
/// test holding one of them stalls every other test's waiting, output collection included.
public func offThePool<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Swift.Result { try body() }) }
    }
}
