/// How records are written (docs/REPLAY.md).
public enum ReplayFormat: String, CaseIterable, Sendable {
    /// `1 Jun 2022 21:30:04 [broadcast #3] hans: hello`, `... [room 2 #5] ...`
    case text
    /// One JSON object per line.
    case json
    /// RFC 4180: a header, CRLF line ends, fields quoted when they hold `,`, `"`, CR or LF.
    case csv

    /// Text written before the first record.
    public var header: String {
        self == .csv ? "source,room,number,timestamp,user,message\r\n" : ""
    }

    public func render(_ r: ReplayRecord, into out: inout String) {
        let m = r.record
        switch self {
        case .text:
            out += m.timestamp
            switch r.kind {
            case .broadcast: out += " [broadcast #"
            case .room(let id): out += " [room \(id) #"
            }
            out += String(m.number)
            out += "] "
            out += m.user
            out += ": "
            out += m.message
            out += "\n"
        case .json:
            out += "{\"source\":"
            switch r.kind {
            case .broadcast: out += "\"broadcast\",\"room\":null"
            case .room(let id): out += "\"room\",\"room\":\(id)"
            }
            out += ",\"number\":\(m.number),\"timestamp\":"
            Self.appendJSONString(m.timestamp, to: &out)
            out += ",\"time\":\(r.time),\"user\":"
            Self.appendJSONString(m.user, to: &out)
            out += ",\"message\":"
            Self.appendJSONString(m.message, to: &out)
            out += "}\n"
        case .csv:
            switch r.kind {
            case .broadcast: out += "broadcast,,"
            case .room(let id): out += "room,\(id),"
            }
            out += String(m.number)
            out += ","
            Self.appendCSVField(m.timestamp, to: &out)
            out += ","
            Self.appendCSVField(m.user, to: &out)
            out += ","
            Self.appendCSVField(m.message, to: &out)
            out += "\r\n"
        }
    }

    static func appendJSONString(_ text: String, to out: inout String) {
        out += "\""
        var plainStart = text.unicodeScalars.startIndex
        let scalars = text.unicodeScalars
        var i = scalars.startIndex
        while i < scalars.endIndex {
            let c = scalars[i]
            let escape: String?
            switch c {
            case "\"": escape = "\\\""
            case "\\": escape = "\\\\"
            case "\n": escape = "\\n"
            case "\r": escape = "\\r"
            case "\t": escape = "\\t"
            default:
                if c.value < 0x20 {
                    let hex = String(c.value, radix: 16)
                    escape = "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    escape = nil
                }
            }
            if let escape {
                out += String(scalars[plainStart..<i])
                out += escape
                plainStart = scalars.index(after: i)
            }
            i = scalars.index(after: i)
        }
        out += String(scalars[plainStart...])
        out += "\""
    }

    static func appendCSVField(_ text: String, to out: inout String) {
        guard text.utf8.contains(where: { $0 == 0x2C || $0 == 0x22 || $0 == 0x0A || $0 == 0x0D }) else {
            out += text
            return
        }
        out += "\""
        var rest = Substring(text)
        while let quote = rest.firstIndex(of: "\"") {
            out += rest[...quote]
            out += "\""
            rest = rest[rest.index(after: quote)...]
        }
        out += rest
        out += "\""
    }
}
