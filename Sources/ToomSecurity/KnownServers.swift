import Foundation

/// `~/.toom/known_servers`: one `host:port SHA256:<base64>` line per server the user has
/// trusted, as ssh's known_hosts. `$HOME` decides where `~` is.
public struct KnownServers: Sendable {
    public let path: String

    public init(path: String) { self.path = path }

    /// `$HOME/.toom/known_servers` (the password database's home when `$HOME` is unset).
    public static func defaultPath() -> String {
        let home = ProcessInfo.processInfo.environment["HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? NSHomeDirectory()
        return home + "/.toom/known_servers"
    }

    /// How a server is named in the file: host as typed (lower-cased), IPv6 in brackets.
    public static func key(host: String, port: Int) -> String {
        let host = host.lowercased()
        return (host.contains(":") ? "[\(host)]" : host) + ":\(port)"
    }

    /// The fingerprint remembered for `key`, if any. Lines that are not `key fingerprint`
    /// (comments, damage) are ignored.
    public func fingerprint(for key: String) throws -> String? {
        guard let bytes = try AtomicFile.read(path) else { return nil }
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.count == 2, fields[0] == key, Fingerprint.isValid(String(fields[1])) { return String(fields[1]) }
        }
        return nil
    }

    /// Adds or replaces the line for `key`, leaving the others as they were; the directory is
    /// created mode 0700 and the file written atomically, mode 0600.
    public func remember(_ fingerprint: String, for key: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        if mkdir(directory, 0o700) != 0, errno != EEXIST {
            throw FileError(path: directory, operation: "create directory", code: errno)
        }
        let old = try AtomicFile.read(path).map { String(decoding: $0, as: UTF8.self) } ?? ""
        var lines = old.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        lines.removeAll { $0.split(separator: " ").first.map(String.init) == key }
        lines.append("\(key) \(fingerprint)")
        try AtomicFile.write(path, Array((lines.joined(separator: "\n") + "\n").utf8), mode: 0o600)
    }
}
