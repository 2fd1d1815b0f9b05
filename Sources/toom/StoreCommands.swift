import ArgumentParser
import Foundation
import ToomPostgres
import ToomStore

/// The database of `--store`, or of TOOM_STORE when the option is not given.
struct StoreOption: ParsableArguments {
    @Option(name: .customLong("store"), help: ArgumentHelp("The PostgreSQL database (also read from TOOM_STORE; the password may come from PGPASSWORD instead of the URL).", valueName: "postgres://USER[:PASSWORD]@HOST:PORT/DB"))
    var url: String?

    func location() throws -> PostgresLocation {
        guard let location = try optionalLocation() else {
            throw ValidationError("Missing --store postgres://USER[:PASSWORD]@HOST:PORT/DB (or TOOM_STORE)")
        }
        return location
    }

    /// Nil when neither --store nor TOOM_STORE is given.
    func optionalLocation() throws -> PostgresLocation? {
        try Self.location(url ?? ProcessInfo.processInfo.environment["TOOM_STORE"].flatMap { $0.isEmpty ? nil : $0 })
    }

    /// Runs a command's work on the database; whatever goes wrong is one line on standard
    /// error and exit status 1. A refusal or a file's error says itself; anything else is the
    /// database's.
    static func using(_ location: PostgresLocation, for command: String, _ body: () async throws -> Void) async throws {
        do { try await body() } catch let error as PostgresChatStore.Refused {
            FileHandle.standardError.write(Data("toom \(command): \(error)\n".utf8))
            throw ExitCode.failure
        } catch let error as StorageError {
            FileHandle.standardError.write(Data("toom \(command): \(error)\n".utf8))
            throw ExitCode.failure
        } catch {
            FileHandle.standardError.write(Data("toom \(command): cannot use the database at \(location): \(PostgresChatStore.describe(error))\n".utf8))
            throw ExitCode.failure
        }
    }

    static func location(_ url: String?) throws -> PostgresLocation? {
        guard let url else { return nil }
        do { return try PostgresLocation(url: url) } catch let error as PostgresLocation.Invalid {
            throw ValidationError(error.description)
        }
    }
}

struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Move a data directory's accounts, rooms and logs into a PostgreSQL store.",
        discussion: """
        Reads credentials.txt, rooms.txt, messagelog.txt and every SR_<id>_messageLog.txt of the \
        directory and writes them into the database in one transaction, keeping every number and \
        timestamp. A database that already holds accounts, rooms or messages is refused unless \
        --replace is given. Lines that do not parse are reported on standard error and left out.
        """
    )

    @Argument(help: ArgumentHelp("The server's data directory.", valueName: "dir"))
    var directory: String

    @OptionGroup var store: StoreOption

    @Flag(help: "Empty a database that is not empty first (its accounts, rooms and messages are lost).")
    var replace = false

    func validate() throws { _ = try store.location() }

    func run() async throws {
        let location = try store.location()
        try await StoreOption.using(location, for: "import") {
            let summary = try await PostgresImport.run(directory: directory, into: location, replace: replace)
            for line in summary.skipped { FileHandle.standardError.write(Data("skipped: \(line)\n".utf8)) }
            print("\(summary) into \(location)")
        }
    }
}

struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a PostgreSQL store's accounts, rooms and logs as a data directory's files.",
        discussion: """
        Writes credentials.txt, rooms.txt, messagelog.txt, every SR_<id>_messageLog.txt and an \
        empty userlog.txt into the directory, byte for byte as the file store would have \
        written them, from one consistent snapshot of the database. A directory that already \
        holds any of these files is refused unless --replace is given.
        """
    )

    @OptionGroup var store: StoreOption

    @Argument(help: ArgumentHelp("The directory to write (created if needed).", valueName: "dir"))
    var directory: String

    @Flag(help: "Overwrite the files a directory already holds.")
    var replace = false

    func validate() throws { _ = try store.location() }

    func run() async throws {
        let location = try store.location()
        try await StoreOption.using(location, for: "export") {
            let summary = try await PostgresExport.run(from: location, to: directory, replace: replace)
            print("\(summary) into \(directory)")
        }
    }
}
