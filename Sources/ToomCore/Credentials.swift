/// `credentials.txt`: one `username password` per line, split at the first space;
/// blank lines ignored; the password is everything after that space, either as typed or
/// a scrypt hash written by `toom passwd` (`$scrypt$...`, see `ScryptHash`).
public struct Credentials: Sendable {
    public private(set) var entries: [String: StoredPassword] = [:]
    /// Lines that could not be used, with their 1-based line numbers, for the operator.
    public private(set) var problems: [(line: Int, reason: String)] = []

    public init() {}

    public init(parsing text: String) {
        var lineNumber = 0
        for line in Text.lines(text) {
            lineNumber += 1
            switch Self.parseLine(line) {
            case .blank:
                continue
            case .problem(let reason):
                problems.append((lineNumber, reason))
            case .account(let user, let password):
                if entries[user] != nil {
                    problems.append((lineNumber, "duplicate username '\(user)'; the first entry is used"))
                    continue
                }
                entries[user] = password
            }
        }
    }

    public enum Line: Sendable, Equatable {
        case blank
        case account(user: String, password: StoredPassword)
        case problem(String)
    }

    /// One line of the file, without its newline (a trailing `\r` is tolerated by `Text.lines`).
    public static func parseLine(_ line: Substring) -> Line {
        if line.unicodeScalars.allSatisfy({ $0 == " " || $0 == "\t" }) { return .blank }
        guard let space = Text.firstSpace(in: line) else {
            return .problem("no space between username and password")
        }
        let user = line[line.startIndex..<space]
        let password = line[line.unicodeScalars.index(after: space)...]
        guard Text.isValidUsername(user) else {
            return .problem("username '\(user)' is not allowed (no spaces, '/', '\\', ';', ',' or control characters)")
        }
        guard !password.isEmpty, !Text.containsControlCharacter(password) else {
            return .problem("password for '\(user)' is empty or has a control character")
        }
        guard password.hasPrefix(ScryptHash.prefix) else {
            return .account(user: String(user), password: .plain(String(password)))
        }
        switch ScryptHash.parse(password) {
        case .success(let hash): return .account(user: String(user), password: .scrypt(hash))
        case .failure(let problem): return .problem("password hash for '\(user)' is not valid: \(problem.reason)")
        }
    }

    public func password(for user: String) -> StoredPassword? { entries[user] }
    public func contains(_ user: String) -> Bool { entries[user] != nil }
    public var usernames: [String] { entries.keys.sorted() }
}

/// A password as `credentials.txt` holds it.
public enum StoredPassword: Sendable, Equatable {
    /// As typed (the original format), compared in constant time.
    case plain(String)
    case scrypt(ScryptHash)

    /// The password field of a line (what follows the username and its space), as a store
    /// other than the file keeps it; the reason when it cannot be used.
    public static func parse(field: String) -> Result<StoredPassword, CredentialsProblem> {
        switch Credentials.parseLine("x " + field[...]) {
        case .account(_, let password): return .success(password)
        case .problem(let reason): return .failure(CredentialsProblem(reason: reason))
        case .blank: return .failure(CredentialsProblem(reason: "the password is empty"))
        }
    }

    /// The field as a line of `credentials.txt` holds it.
    public var field: String {
        switch self {
        case .plain(let password): return password
        case .scrypt(let hash): return hash.text
        }
    }
}

public struct CredentialsProblem: Error, Sendable, CustomStringConvertible {
    public let reason: String
    public var description: String { reason }
}

/// `$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt>$<hash>`, salt and hash in unpadded base64: the
/// parameters travel with the hash, so they can be raised later without invalidating old lines.
public struct ScryptHash: Sendable, Equatable {
    public static let prefix = "$scrypt$"
    /// Bounds on what a line may ask for: a hostile or mistyped line cannot make a login take
    /// more than 256 MiB or minutes of work.
    public static let log2RoundsRange = 1...20
    public static let blockSizeRange = 1...32
    public static let parallelismRange = 1...16
    public static let maxMemoryBytes = 256 << 20
    public static let saltBytesRange = 8...64
    public static let hashBytesRange = 16...64

    public let log2Rounds: Int
    public let blockSize: Int
    public let parallelism: Int
    public let salt: [UInt8]
    public let hash: [UInt8]

    public struct Problem: Error, Equatable, Sendable {
        public let reason: String
    }

    public init(log2Rounds: Int, blockSize: Int, parallelism: Int, salt: [UInt8], hash: [UInt8]) throws(Problem) {
        guard Self.log2RoundsRange.contains(log2Rounds) else { throw Problem(reason: "ln must be from 1 to 20") }
        guard Self.blockSizeRange.contains(blockSize) else { throw Problem(reason: "r must be from 1 to 32") }
        guard Self.parallelismRange.contains(parallelism) else { throw Problem(reason: "p must be from 1 to 16") }
        guard 128 * (1 << log2Rounds) * blockSize * parallelism <= Self.maxMemoryBytes else {
            throw Problem(reason: "the parameters need more than 256 MiB")
        }
        guard Self.saltBytesRange.contains(salt.count) else { throw Problem(reason: "the salt must be 8 to 64 bytes") }
        guard Self.hashBytesRange.contains(hash.count) else { throw Problem(reason: "the hash must be 16 to 64 bytes") }
        self.log2Rounds = log2Rounds
        self.blockSize = blockSize
        self.parallelism = parallelism
        self.salt = salt
        self.hash = hash
    }

    public var rounds: Int { 1 << log2Rounds }

    public var text: String {
        "\(Self.prefix)ln=\(log2Rounds),r=\(blockSize),p=\(parallelism)$\(Base64.encode(salt))$\(Base64.encode(hash))"
    }

    public static func parse<S: StringProtocol>(_ text: S) -> Result<ScryptHash, Problem> {
        let text = Substring(text)
        guard text.hasPrefix(prefix) else { return .failure(Problem(reason: "it does not start with \(prefix)")) }
        let parts = text.dropFirst(prefix.count).split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 3 else { return .failure(Problem(reason: "expected \(prefix)ln=N,r=N,p=N$<salt>$<hash>")) }
        var values: [Substring: Int] = [:]
        for pair in parts[0].split(separator: ",", omittingEmptySubsequences: false) {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard kv.count == 2, ["ln", "r", "p"].contains(kv[0]), values[kv[0]] == nil,
                  kv[1].utf8.count <= 3, kv[1].utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let value = Int(kv[1])
            else { return .failure(Problem(reason: "the parameters must be ln=N,r=N,p=N")) }
            values[kv[0]] = value
        }
        guard let ln = values["ln"], let r = values["r"], let p = values["p"] else {
            return .failure(Problem(reason: "the parameters must be ln=N,r=N,p=N"))
        }
        guard let salt = Base64.decode(parts[1]), let hash = Base64.decode(parts[2]) else {
            return .failure(Problem(reason: "the salt and hash must be unpadded base64"))
        }
        do {
            return .success(try ScryptHash(log2Rounds: ln, blockSize: r, parallelism: p, salt: salt, hash: hash))
        } catch {
            return .failure(error)
        }
    }
}
