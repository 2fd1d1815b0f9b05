import Logging
import NIOCore
import NIOPosix
import PostgresNIO

/// The one connection a server's batches of messages go through, driven with futures on its
/// event loop: a batch is a query and its answer, with no task, pool lease or timer task
/// between. A batch's fixed cost is what a server pays per commit, and a second server on
/// the same database halves its batches (docs/BENCHMARKS.md, "cluster").
///
/// Batches run one at a time, so everything here happens on `eventLoop` in turn. A query
/// that outlives its deadline, or a connection that fails, is closed; the next batch
/// connects again.
final class PostChannel: @unchecked Sendable {
    let eventLoop: EventLoop
    private let configuration: Result<PostgresConnection.Configuration, Error>
    private let logger: Logger
    /// On `eventLoop` only.
    private var connection: PostgresConnection?
    private var connecting: EventLoopFuture<PostgresConnection>?
    private var closed = false

    init(_ location: PostgresLocation, logger: Logger) {
        eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        configuration = Result { try location.connectionConfiguration() }
        self.logger = logger
    }

    /// Runs `query` on this channel's connection, connecting first if it has none; fails with
    /// `StoreUnavailable` after `seconds`. Call on `eventLoop`, one query at a time.
    func run(_ query: PostgresQuery, within seconds: Double) -> EventLoopFuture<PostgresQueryResult> {
        eventLoop.assertInEventLoop()
        let promise = eventLoop.makePromise(of: PostgresQueryResult.self)
        var answered = false
        let deadline = eventLoop.scheduleTask(in: .nanoseconds(Int64(seconds * 1e9))) { [self] in
            guard !answered else { return }
            answered = true
            // What the connection still owes may never come (a database that stopped answering).
            drop()
            promise.fail(StoreUnavailable(reason: "no answer from the database within \(Int(seconds)) seconds"))
        }
        connected().flatMap { [logger] connection in
            connection.query(query, logger: logger)
        }.whenComplete { [self] result in
            guard !answered else { return }
            answered = true
            deadline.cancel()
            if case .failure = result, connection?.isClosed ?? false { connection = nil }
            promise.completeWith(result)
        }
        return promise.futureResult
    }

    private func connected() -> EventLoopFuture<PostgresConnection> {
        if closed { return eventLoop.makeFailedFuture(StoreUnavailable(reason: "the server is stopping")) }
        if let connection, !connection.isClosed { return eventLoop.makeSucceededFuture(connection) }
        connection = nil
        // A connection still being made (a batch gave up waiting for it) is the next one's.
        if let connecting { return connecting }
        let configuration: PostgresConnection.Configuration
        do { configuration = try self.configuration.get() } catch { return eventLoop.makeFailedFuture(error) }
        let made = PostgresConnection.connect(on: eventLoop, configuration: configuration, id: 1, logger: logger)
        connecting = made
        made.whenComplete { [self] result in
            connecting = nil
            guard case .success(let connection) = result else { return }
            if closed { connection.close().whenComplete { _ in } } else { self.connection = connection }
        }
        return made
    }

    private func drop() {
        connection?.close().whenComplete { _ in }
        connection = nil
    }

    /// Closes the connection; later batches fail at once.
    func close() {
        eventLoop.execute { [self] in
            closed = true
            drop()
        }
    }
}
