import Logging

/// Diagnostics through swift-log, printed on the server's standard error (above the
/// console's prompt when there is one) as `warning: ...` / `error: ...` lines. The spec's
/// event lines are output, not logs: they go through `ServerOutput.events`.
public struct ServerLogHandler: LogHandler {
    public let output: ServerOutput
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?

    public init(output: ServerOutput) { self.output = output }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        switch event.level {
        case .warning: output.diagnostic("warning: \(event.message)")
        case .error, .critical: output.diagnostic("error: \(event.message)")
        default: output.diagnostic("\(event.message)")
        }
    }
}

extension Logger {
    /// The server's logger, printing through `output`.
    public static func server(_ output: ServerOutput) -> Logger {
        Logger(label: "toom.server") { _ in ServerLogHandler(output: output) }
    }
}
