import ArgumentParser
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import ToomChat
import ToomCore
import ToomSecurity
import ToomPostgres
import ToomServer
import ToomStore
import ToomTransfer

struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server",
        abstract: "Run the TOOM server.",
        discussion: """
        Reads credentials.txt from the data directory and writes userlog.txt, messagelog.txt, \
        rooms.txt and SR_<id>_messageLog.txt there. History survives a restart. Event lines go to \
        standard output, diagnostics to standard error. SIGINT and SIGTERM stop the server \
        gracefully: clients are told and the files are complete. With a terminal on standard \
        input the server's terminal is an operator console (type help); toom admin reaches \
        the running server through toom.sock in the data directory. The port accepts TLS and \
        plaintext alike, told apart by the first byte; on first start the server creates a \
        self-signed certificate (tls-cert.pem, and tls-key.pem mode 0600) in the data directory, and \
        it prints the certificate's SHA256: fingerprint on start for users to compare. The same port number \
        takes UDP too: clients register their file-transfer ports there, so that transfers find a direct \
        path through NATs, and the server relays those that find none (--relay-rate). With --store (or TOOM_STORE) \
        everything is kept in PostgreSQL instead of the files, and every server started with \
        the same database is one chat.
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

    @Option(help: ArgumentHelp("Address of the interface to listen on, IPv4 or IPv6 (default: every interface, both families). TCP and UDP use the same port.",
                               valueName: "address"))
    var host: String = "::"

    @Option(help: ArgumentHelp("Bytes a second the server relays for all file transfers together, when two clients find no direct path (suffixes K, M, G: 10M, 1G; 0 turns the relay off).",
                               valueName: "rate"))
    var relayRate: String = "10M"

    @Flag(help: "Start with empty logs, moving the old ones into a dated folder in the data directory.")
    var fresh = false

    @Flag(help: "fsync every log write before replying (survives power loss; concurrent writers share one fsync).")
    var sync = false

    @Option(name: .customLong("message-rate"), help: ArgumentHelp("Messages (BCM, SRM, SRB) a second one user may send once the burst is spent; faster senders are slowed down, never refused (0: no limit).", valueName: "per-second"))
    var messageRate: Double = ChatSettings.defaultMessageRate

    @Option(name: .customLong("message-burst"), help: ArgumentHelp("Messages one user may send at once before --message-rate applies.", valueName: "n"))
    var messageBurst: Int = ChatSettings.defaultMessageBurst

    @Option(help: ArgumentHelp("TLS certificate chain (PEM) to present instead of tls-cert.pem in the data directory; needs --tls-key.",
                               valueName: "file"))
    var tlsCert: String?

    @Option(help: ArgumentHelp("Private key (PEM) of --tls-cert.", valueName: "file"))
    var tlsKey: String?

    @Flag(help: "Refuse plaintext connections (original-protocol clients, toom client --plaintext) with a one-line error.")
    var requireTLS = false

    @OptionGroup(title: "Several servers on one database")
    var store: StoreOption

    @OptionGroup(title: "Limits")
    var limits: LimitOptions

    // A timer fixed for users that the end-to-end tests shorten, so that no test waits for
    // it to run out; --help does not show it (--help-hidden does).
    @Option(name: .customLong("lease-seconds"),
            help: ArgumentHelp("With --store: how long this server's users stay online for the other servers after its last renewal (every third of it).",
                               valueName: "seconds", visibility: .hidden))
    var leaseSeconds: Double = PostgresChatStore.defaultLease

    /// The database, from --store or TOOM_STORE; nil for the files.
    var storeLocation: PostgresLocation? { get throws { try store.optionalLocation() } }

    func validate() throws {
        guard (0...65535).contains(port) else {
            throw ValidationError("Invalid port: \(port). The port must be an integer from 0 to 65535")
        }
        guard let n = Int(attempts), (1...5).contains(n) else {
            Self.reportInvalidAttempts(attempts)
            throw ExitCode(64)
        }
        guard (tlsCert == nil) == (tlsKey == nil) else {
            throw ValidationError("--tls-cert and --tls-key go together: give both, or neither to use the data directory's")
        }
        guard ByteCount.parse(relayRate) != nil else {
            throw ValidationError("Invalid --relay-rate: '\(relayRate)'. Use bytes a second, optionally with K, M, G or T, e.g. 10M (0 turns the relay off)")
        }
        guard blockSeconds > 0, blockSeconds <= 86_400 else {
            throw ValidationError("Invalid --block-seconds: \(blockSeconds). It must be more than 0 and at most 86400")
        }
        guard messageRate >= 0, messageRate <= 1_000_000 else {
            throw ValidationError("Invalid --message-rate: \(messageRate). It must be 0 (no limit) or more, at most 1000000")
        }
        guard leaseSeconds >= 1, leaseSeconds <= 3600 else {
            throw ValidationError("Invalid --lease-seconds: \(leaseSeconds). It must be from 1 to 3600")
        }
        guard messageBurst >= 1, messageBurst <= 1_000_000 else {
            throw ValidationError("Invalid --message-burst: \(messageBurst). It must be from 1 to 1000000")
        }
        if try storeLocation != nil {
            if fresh { throw ValidationError("--fresh applies to the data directory's files, not to --store") }
            if sync { throw ValidationError("--sync applies to the data directory's files; with --store every reply follows a commit") }
        }
    }

    /// Opens the database; while it cannot be reached, says so once and tries again every two seconds.
    static func open(_ location: PostgresLocation, lease: Double = PostgresChatStore.defaultLease,
                     output: ServerOutput) async throws -> PostgresChatStore {
        let logger = Logger.server(output)
        var told = false
        while true {
            do {
                let store = try await PostgresChatStore.open(location, logger: Logger(label: "toom.postgres") { _ in SwiftLogNoOpLogHandler() }, lease: lease,
                                                             warn: { logger.warning("\($0)") })
                if told { logger.info("the database at \(location) is reachable; starting") }
                return store
            } catch let error as PostgresChatStore.Refused {
                throw error
            } catch {
                if !told {
                    logger.warning("cannot reach the database at \(location): \(PostgresChatStore.describe(error)); trying again every 2 seconds")
                    told = true
                }
                try await Task.sleep(for: .seconds(2))
            }
        }
    }

    static func reportInvalidAttempts(_ value: String) {
        FileHandle.standardError.write(Data("Invalid number of allowed failed consecutive attempt: \(value). The valid value of argument number is an integer between 1 and 5\n".utf8))
    }

    /// glibc gives each contending thread a heap (arena) of its own, up to 8 per core; the
    /// server's few threads then leave freed memory resident in several heaps, and each idle
    /// session costs some 10% more memory than with two (the `sessions` scenario of
    /// toom-bench, docs/BENCHMARKS.md). `mallopt` is not in Swift's Glibc module.
    static func limitMallocArenas() {
        #if os(Linux)
        guard let symbol = dlsym(nil, "mallopt") else { return }
        let mallopt = unsafeBitCast(symbol, to: (@convention(c) (Int32, Int32) -> Int32).self)
        let arenaMax: Int32 = -8  // M_ARENA_MAX, malloc.h
        _ = mallopt(arenaMax, 2)
        #endif
    }

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        Self.limitMallocArenas()
        var configuration = ServerConfiguration(
            host: host, port: port, attempts: Int(attempts)!, dataDirectory: dataDirectory,
            blockDuration: .duration(seconds: blockSeconds), fresh: fresh, sync: sync, limits: limits.limits,
            messageRate: messageRate, messageBurst: messageBurst)
        configuration.relayRate = ByteCount.parse(relayRate) ?? ServerConfiguration.defaultRelayRate
        // With a terminal on standard input the server's terminal is the operator console.
        let console = isatty(0) == 1 ? OperatorConsole(dataDirectory: dataDirectory) : nil
        let output: ServerOutput = console ?? StandardServerOutput()
        if let warning = limits.raiseOpenFileLimit() { Logger.server(output).warning("\(warning)") }
        let server: ChatServer
        do {
            try await AdminChannel.claim(dataDirectory: dataDirectory)
            // The record first: a database it cannot use is refused before anything is created.
            var record: ChatStore?
            if let location = try storeLocation { record = try await Self.open(location, lease: leaseSeconds, output: output) }
            configuration.tls = try ServerTLS(dataDirectory: dataDirectory, certificatePath: tlsCert, keyPath: tlsKey,
                                              requireTLS: requireTLS, notice: output.diagnostic)
            server = try ChatServer(configuration: configuration, output: output, store: record)
        } catch {
            Logger.server(output).error("cannot start: \(error)")
            throw ExitCode.failure
        }
        let actions = OperatorActions(server: server)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: ServerService(server: server, output: output)),
        ]
        do {
            services.append(.init(service: try await AdminChannel.bind(dataDirectory: dataDirectory, actions: actions)))
        } catch {
            Logger.server(output).warning("\(error); toom admin will not reach this server")
        }
        if let console {
            services.append(.init(service: ConsoleService(console: console, actions: actions),
                                  successTerminationBehavior: .gracefullyShutdownGroup))
        }
        let logger = Logger.server(output)
        let group = ServiceGroup(configuration: .init(
            services: services,
            // With a console, a hang-up of its terminal also stops the server gracefully.
            gracefulShutdownSignals: console == nil ? [.sigterm, .sigint] : [.sigterm, .sigint, .sighup],
            logger: logger))
        do {
            try await group.run()
        } catch let error as ServerService.StartError {
            Logger.server(output).error("\(error.message)")
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
            throw StartError(message: "cannot listen on \(configuration.host) port \(configuration.port): \(describeError(error))")
        }
        output.events(["Server listening on \(address.ipAddress ?? server.configuration.host) port \(address.port ?? 0)"])
        if let tls = server.configuration.tls {
            output.events(["TLS certificate fingerprint \(tls.fingerprint)" + (tls.requireTLS ? " (plaintext refused)" : "")])
        }
        try await withGracefulShutdownHandler {
            try await server.waitUntilClosed()
        } onGracefulShutdown: {
            Task { await server.shutdown() }
        }
        await server.releaseEventLoops()
        server.logger.info("Server stopped")
    }
}
