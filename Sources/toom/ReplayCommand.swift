import ArgumentParser
import Foundation
import ToomCore
import ToomPostgres
import ToomReplay
import ToomStore

extension ReplayFormat: ExpressibleByArgument {}

struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Read the message logs back: broadcasts and rooms merged in time order.",
        discussion: """
        Reads messagelog.txt and every SR_<id>_messageLog.txt in the directory. Without --room \
        or --broadcasts every log is read; with them, only those chosen. Timestamps are in the \
        logs' format, e.g. "1 Jun 2022 21:30:04"; --since and --until include their second. \
        A line that does not parse is reported on standard error with its file and line \
        number, and skipped. With --store the messages are read from a PostgreSQL store \
        instead (one consistent snapshot; with --follow, then what every server adds to it).
        """
    )

    @Argument(help: ArgumentHelp("The server's data directory.", valueName: "dir"))
    var directory: String = "."

    @Option(help: ArgumentHelp("Only this room (repeatable).", valueName: "id"))
    var room: [Int] = []

    @Flag(help: "Only broadcasts (with --room: broadcasts and those rooms).")
    var broadcasts = false

    @Option(help: ArgumentHelp("Only messages by this user (repeatable).", valueName: "user"))
    var user: [String] = []

    @Option(help: ArgumentHelp("Only messages at or after this time.", valueName: "timestamp"))
    var since: String?

    @Option(help: ArgumentHelp("Only messages at or before this time.", valueName: "timestamp"))
    var until: String?

    @Option(help: "Output format: text, json (one object per line) or csv (RFC 4180).")
    var format: ReplayFormat = .text

    @Flag(help: "Keep printing messages as the server appends them, and from new rooms.")
    var follow = false

    @Option(help: ArgumentHelp("Replay with the original gaps between messages divided by N.", valueName: "N"))
    var pace: Double?

    @Option(name: .customLong("store"), help: ArgumentHelp("Read a PostgreSQL store instead of a directory (the password may come from PGPASSWORD).", valueName: "postgres://USER[:PASSWORD]@HOST:PORT/DB"))
    var store: String?

    func validate() throws {
        for id in room where id < 1 {
            throw ValidationError("Invalid --room: \(id). A room id is a positive integer")
        }
        _ = try time(since, "since")
        _ = try time(until, "until")
        if let pace, !(pace > 0 && pace.isFinite) {
            throw ValidationError("Invalid --pace: \(pace). It must be a number greater than 0")
        }
        if store != nil { _ = try StoreOption.location(store) }
    }

    private func time(_ text: String?, _ option: String) throws -> Int64? {
        guard let text else { return nil }
        guard let time = Timestamp.parse(text) else {
            throw ValidationError("Invalid --\(option): '\(text)'. Expected \(Timestamp.expectedFormat)")
        }
        return time
    }

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        let filter = ReplayFilter(rooms: Set(room), broadcasts: broadcasts, users: Set(user),
                                  since: try time(since, "since"), until: try time(until, "until"))
        // A store is read as the files it would export, into a private directory removed after.
        var source = directory
        var snapshot: String?
        var follower: Task<Void, Error>?
        var stoppers: [DispatchSourceSignal] = []
        defer {
            follower?.cancel()
            stoppers.forEach { $0.cancel() }
            if let snapshot { try? FileManager.default.removeItem(atPath: snapshot) }
        }
        if let location = try StoreOption.location(store) {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("toom-replay-\(UUID().uuidString)").path
            guard mkdir(folder, 0o700) == 0 else {
                RawOutput.write(2, "toom replay: cannot create \(folder): \(String(cString: strerror(errno)))\n")
                throw ExitCode.failure
            }
            snapshot = folder
            // Stopped by a signal (how --follow ends), the copy of the messages goes too.
            for signalNumber in [SIGINT, SIGTERM, SIGHUP] {
                signal(signalNumber, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: signalNumber)
                source.setEventHandler {
                    try? FileManager.default.removeItem(atPath: folder)
                    Foundation.exit(128 + signalNumber)
                }
                source.resume()
                stoppers.append(source)
            }
            let exported: PostgresExport.Summary
            do {
                exported = try await PostgresExport.run(from: location, to: folder, replace: true)
            } catch {
                RawOutput.write(2, "toom replay: cannot read the database at \(location): \(PostgresChatStore.describe(error))\n")
                throw ExitCode.failure
            }
            source = folder
            // Followed, the snapshot's files grow as the store does, and the replay follows them.
            if follow {
                follower = Task {
                    do {
                        try await PostgresExport.follow(from: location, in: folder, after: exported.feed) { line in
                            RawOutput.write(2, "toom replay: \(line)\n")
                        }
                    } catch let error as StorageError {
                        RawOutput.write(2, "toom replay: \(error)\n")
                        try? FileManager.default.removeItem(atPath: folder)
                        Foundation.exit(1)
                    }
                }
            }
        }
        let replay = Replay(
            options: .init(directory: source, filter: filter, format: format, follow: follow, pace: pace),
            write: { text in RawOutput.writeChecked(1, text) },
            report: { line in RawOutput.write(2, "toom replay: " + line + "\n") })
        do {
            try await replay.run()
        } catch let error as Replay.DirectoryError {
            RawOutput.write(2, "toom replay: \(error.description)\n")
            throw ExitCode.failure
        }
    }
}
