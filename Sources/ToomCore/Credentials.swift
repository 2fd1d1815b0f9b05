/// `credentials.txt`: one `username password` per line, split at the first space;
/// blank lines ignored; the password is everything after that space.
public struct Credentials: Sendable {
    public private(set) var passwords: [String: String] = [:]
    /// Lines that could not be used, with their 1-based line numbers, for the operator.
    public private(set) var problems: [(line: Int, reason: String)] = []

    public init() {}

    public init(parsing text: String) {
        var lineNumber = 0
        for line in Text.lines(text) {
            lineNumber += 1
            if line.unicodeScalars.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
            guard let space = Text.firstSpace(in: line) else {
                problems.append((lineNumber, "no space between username and password"))
                continue
            }
            let user = line[line.startIndex..<space]
            let password = line[line.unicodeScalars.index(after: space)...]
            guard Text.isValidUsername(user) else {
                problems.append((lineNumber, "username '\(user)' is not allowed (no spaces, '/', '\\', ';', ',' or control characters)"))
                continue
            }
            guard !password.isEmpty, !Text.containsControlCharacter(password) else {
                problems.append((lineNumber, "password for '\(user)' is empty or has a control character"))
                continue
            }
            if passwords[String(user)] != nil {
                problems.append((lineNumber, "duplicate username '\(user)'; the first entry is used"))
                continue
            }
            passwords[String(user)] = String(password)
        }
    }

    public func password(for user: String) -> String? { passwords[user] }
    public func contains(_ user: String) -> Bool { passwords[user] != nil }
    public var usernames: [String] { passwords.keys.sorted() }
}
