import ArgumentParser
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import ToomCore
import ToomServer

struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server",
        abstract: "Run the TOOM server.",
        discussion: """
        Reads credentials.txt from the data directory and writes userlog.txt, messagelog.txt, \
        rooms.txt and SR_<id>_messageLog.txt there. History survives a restart. Event lines go to \
        standard output, diagnostics to standard error. SIGINT and SIGTERM stop the server \
        gracefully: clients are told and the files are complete.
        """
    )

    @Argument(help: "TCP port to listen on (0 picks a free port and prints it).")
    var port: Int

    @Argument(help: ArgumentHelp("Consecutive wrong passwords that block an account: an integer from 1 to 5.", valueName: "attempts"))
    var attempts: String

    @Option(name: .customLong("data-dir"), help: ArgumentHelp("Directory with credentials.txt and the logs.", valueName: "dir"))
    var dataDirectory: String = "."

    @Option(name: .customLong("block-seconds"), help: ArgumentHelp("How long a blocked account stays blocked.", valueName: "seconds"))
    var blockSeconds: Double = 10

    @Option(help: ArgumentHelp("Address of the interface to listen on.", valueName: "address"))
    var host: String = "0.0.0.0"

    @Flag(help: "Start with empty logs, moving the old ones into a dated folder in the data directory.")
    var fresh = false

    @Flag(help: "fsync every log write before replying (slower; survives power loss).")
    var sync = false

    func validate() throws {
        guard (0...65535).contains(port) else {
            throw ValidationError("Invalid port: \(port). The port must be an integer from 0 to 65535")
        }
        guard let n = Int(attempts), (1...5).contains(n) else {
            Self.reportInvalidAttempts(attempts)
            throw ExitCode(64)
        }
        guard blockSeconds > 0, blockSeconds <= 86_400 else {
            throw ValidationError("Invalid --block-seconds: \(blockSeconds). It must be more than 0 and at most 86400")
        }
    }

    static func reportInvalidAttempts(_ value: String) {
        FileHandle.standardError.write(Data("Invalid number of allowed failed consecutive attempt: \(value). The valid value of argument number is an integer between 1 and 5\n".utf8))
    }

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        let configuration = ServerConfiguration(
            host: host, port: port, attempts: Int(attempts)!, dataDirectory: dataDirectory,
            blockDuration: .nanoseconds(Int64(blockSeconds * 1e9)), fresh: fresh, sync: sync)
        let output = StandardServerOutput()
        let server: ChatServer
        do {
            server = try ChatServer(configuration: configuration, output: output)
        } catch {
            output.diagnostic("error: cannot start: \(error)")
            throw ExitCode.failure
        }
        let logger = Logger(label: "toom.server", factory: { _ in SwiftLogNoOpLogHandler() })
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: ServerService(server: server, output: output))],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        do {
            try await group.run()
        } catch let error as ServerService.StartError {
            output.diagnostic("error: \(error.message)")
            throw ExitCode.failure
        }
    }
}

/// Runs the server until a signal (or the console's quit) asks it to stop gracefully.
struct ServerService: Service {
    struct StartError: Error { let message: String }

    let server: ChatServer
    let output: ServerOutput

    func run() async throws {
        let address: SocketAddress
        do {
            address = try await server.start()
        } catch {
            await server.releaseEventLoops()
            let configuration = server.configuration
            throw StartError(message: "cannot listen on \(configuration.host) port \(configuration.port): \(describe(error))")
        }
        output.events(["Server listening on \(address.ipAddress ?? server.configuration.host) port \(address.port ?? 0)"])
        try await withGracefulShutdownHandler {
            try await server.waitUntilClosed()
        } onGracefulShutdown: {
            Task { await server.shutdown() }
        }
        await server.releaseEventLoops()
        output.diagnostic("Server stopped")
    }

    private func describe(_ error: Error) -> String {
        if let error = error as? IOError { return String(cString: strerror(error.errnoCode)) }
        return "\(error)"
    }
}
