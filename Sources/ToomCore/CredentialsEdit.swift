/// Rewrites of `credentials.txt` for `toom passwd`, on bytes: every line not changed stays
/// byte for byte (even one that is not valid UTF-8), line endings included.
public enum CredentialsEdit {
    /// The file with `user`'s first line replaced by `user <password>`, or that line appended.
    public static func setting(_ password: String, for user: String, in file: [UInt8]) -> (file: [UInt8], created: Bool) {
        var lines = split(file)
        let replacement = Array("\(user) \(password)".utf8)
        for i in lines.indices {
            if case .account(user, _) = Credentials.parseLine(text(of: lines[i].content)) {
                lines[i].content = replacement
                return (join(lines), false)
            }
        }
        lines.append(Line(content: replacement, ending: [0x0A]))
        return (join(lines), true)
    }

    /// The file with every plaintext password replaced by `hash(password)`; the number replaced.
    public static func hashingAll(in file: [UInt8], _ hash: (String) throws -> String) rethrows -> (file: [UInt8], hashed: Int) {
        var lines = split(file)
        var hashed = 0
        for i in lines.indices {
            if case .account(let user, .plain(let password)) = Credentials.parseLine(text(of: lines[i].content)) {
                lines[i].content = Array("\(user) \(try hash(password))".utf8)
                hashed += 1
            }
        }
        return (join(lines), hashed)
    }

    struct Line {
        var content: [UInt8]
        /// `\n`, `\r\n`, or for a last line without a newline `\r` or nothing.
        var ending: [UInt8]
    }

    static func split(_ file: [UInt8]) -> [Line] {
        var lines: [Line] = []
        var start = 0
        for (i, byte) in file.enumerated() where byte == 0x0A {
            var end = i
            if end > start, file[end - 1] == 0x0D { end -= 1 }
            lines.append(Line(content: Array(file[start..<end]), ending: Array(file[end...i])))
            start = i + 1
        }
        if start < file.count {
            // As `Text.lines` reads it: a last line's trailing `\r` is not part of the password.
            var end = file.count
            if file[end - 1] == 0x0D { end -= 1 }
            lines.append(Line(content: Array(file[start..<end]), ending: Array(file[end...])))
        }
        return lines
    }

    static func join(_ lines: [Line]) -> [UInt8] {
        var out: [UInt8] = []
        for (i, line) in lines.enumerated() {
            out += line.content
            out += line.ending
            // A line added after a last line that had no newline needs one between them.
            if line.ending.last != 0x0A, i < lines.count - 1 { out.append(0x0A) }
        }
        return out
    }

    private static func text(of bytes: [UInt8]) -> Substring {
        Substring(String(decoding: bytes, as: UTF8.self))
    }
}
