import ArgumentParser
import Foundation
import ToomCore
import ToomPostgres
import ToomSecurity

struct PasswdCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "passwd",
        abstract: "Set a user's password in credentials.txt, as a salted scrypt hash.",
        discussion: """
        Creates the account if it is new. On a terminal the password is read without echo, twice; \
        from a pipe, one line. credentials.txt is rewritten atomically and every other line stays as \
        it was; a running server sees the change at the next login. With --hash-all, every \
        plaintext password in the file is replaced by its hash. With --store (or TOOM_STORE) the \
        accounts of that PostgreSQL store are changed instead, and every server on it sees the \
        change within seconds.
        """
    )

    @Argument(help: ArgumentHelp("The account to create or change.", valueName: "user"))
    var user: String?

    @Flag(help: "Hash every plaintext password in credentials.txt instead of setting one.")
    var hashAll = false

    @Option(name: .customLong("data-dir"), help: ArgumentHelp("Directory with credentials.txt.", valueName: "dir"))
    var dataDirectory: String = "."

    @OptionGroup var store: StoreOption

    func validate() throws {
        switch (user, hashAll) {
        case (nil, false): throw ValidationError("Give a user, or --hash-all")
        case (_?, true): throw ValidationError("Give a user or --hash-all, not both")
        case (let user?, false):
            guard Text.isValidUsername(user) else {
                throw ValidationError("Invalid username: '\(user)'. A username has no spaces, '/', '\\', ';', ',' or control characters")
            }
        case (nil, true): break
        }
        _ = try store.optionalLocation()
    }

    func run() async throws {
        let path = dataDirectory + "/credentials.txt"
        do {
            if let location = try store.optionalLocation() {
                try await run(on: location)
            } else if let user {
                let password = try readPassword(for: user)
                let hash = try PasswordCheck.hash(password).text
                let created = try rewrite(path) { CredentialsEdit.setting(hash, for: user, in: $0) }.1
                print(created ? "Account \(user) created" : "Password of \(user) changed")
            } else {
                let hashed = try rewrite(path) { try CredentialsEdit.hashingAll(in: $0) { try PasswordCheck.hash($0).text } }.1
                print(hashed == 0 ? "No plaintext password in \(path)" : "Hashed \(hashed) plaintext password\(hashed == 1 ? "" : "s") in \(path)")
            }
        } catch let error as PasswdError {
            FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
            throw ExitCode.failure
        } catch let exit as ExitCode {
            throw exit
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }

    struct PasswdError: Error { let message: String }

    /// The same on the accounts of a PostgreSQL store.
    private func run(on location: PostgresLocation) async throws {
        if let user {
            let hash = try PasswordCheck.hash(try readPassword(for: user)).text
            try await StoreOption.using(location, for: "passwd") {
                let created = try await PostgresAccounts.set(user, field: hash, at: location)
                print(created ? "Account \(user) created" : "Password of \(user) changed")
            }
        } else {
            try await StoreOption.using(location, for: "passwd") {
                let hashed = try await PostgresAccounts.hashAll(at: location) { try PasswordCheck.hash($0).text }
                print(hashed == 0 ? "No plaintext password in \(location)"
                                  : "Hashed \(hashed) plaintext password\(hashed == 1 ? "" : "s") in \(location)")
            }
        }
    }

    /// Reads, edits and replaces the file under a lock on its directory, so two `toom passwd`
    /// at once do not lose each other's change. A new file is private (0600); an existing one
    /// keeps its mode and owner.
    private func rewrite<T>(_ path: String, _ edit: ([UInt8]) throws -> (file: [UInt8], T)) throws -> (file: [UInt8], T) {
        let directory = open(dataDirectory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directory >= 0 else { throw PasswdError(message: "cannot open the data directory \(dataDirectory): \(String(cString: strerror(errno)))") }
        defer { close(directory) }
        guard flock(directory, LOCK_EX) == 0 else { throw PasswdError(message: "cannot lock \(dataDirectory): \(String(cString: strerror(errno)))") }
        let old = try AtomicFile.read(path)
        if old == nil, hashAll { throw PasswdError(message: "\(path) does not exist") }
        var info = stat()
        let exists = stat(path, &info) == 0
        let result = try edit(old ?? [])
        try AtomicFile.write(path, result.file, mode: exists ? info.st_mode & 0o7777 : 0o600,
                             owner: exists ? (info.st_uid, info.st_gid) : nil)
        return result
    }

    private func readPassword(for user: String) throws -> String {
        guard isatty(0) == 1 else {
            guard let line = readLine(strippingNewline: true) else { throw PasswdError(message: "no password on standard input") }
            return try checked(line.hasSuffix("\r") ? String(line.dropLast()) : line)
        }
        let first = try checked(try readHidden("New password for \(user): "))
        guard try readHidden("Retype the password: ") == first else {
            throw PasswdError(message: "the passwords do not match; nothing changed")
        }
        return first
    }

    private func checked(_ password: String) throws -> String {
        guard !password.isEmpty else { throw PasswdError(message: "the password is empty; nothing changed") }
        guard !Text.containsControlCharacter(password) else {
            throw PasswdError(message: "the password has a control character; nothing changed")
        }
        return password
    }

    /// One line from the terminal with echo off; the prompt goes to standard error.
    private func readHidden(_ prompt: String) throws -> String {
        FileHandle.standardError.write(Data(prompt.utf8))
        var saved = termios()
        tcgetattr(0, &saved)
        var quiet = saved
        quiet.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(0, TCSAFLUSH, &quiet)
        let line = readLine(strippingNewline: true)
        tcsetattr(0, TCSAFLUSH, &saved)
        FileHandle.standardError.write(Data("\n".utf8))
        guard let line else { throw PasswdError(message: "no password given; nothing changed") }
        return line
    }
}
