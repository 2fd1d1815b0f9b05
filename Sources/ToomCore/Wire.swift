/// The client-server wire format (docs/PROTOCOL.md): a frame is one line of UTF-8
/// ending in "\n", its fields separated by "\t". No field may hold a control character,
/// so no escaping is needed.
public enum Wire {
    public static let protocolVersion = 1
    /// Largest frame in bytes, newline included. A longer one closes the connection.
    public static let maxFrameBytes = 16 * 1024

    public static func encode(_ fields: [String]) -> String {
        var out = fields.joined(separator: "\t")
        out += "\n"
        return out
    }

    /// Splits a frame (without its newline) into fields. A trailing "\r" is tolerated.
    public static func fields(_ line: Substring) -> [Substring] {
        var line = line
        if line.utf8.last == 0x0D { line = line.dropLast() }
        var fields: [Substring] = []
        var start = line.startIndex
        var i = line.utf8.startIndex
        while i < line.utf8.endIndex {
            if line.utf8[i] == 0x09 {
                fields.append(line[start..<i])
                start = line.utf8.index(after: i)
            }
            line.utf8.formIndex(after: &i)
        }
        fields.append(line[start...])
        return fields
    }
}

/// What the client sends before it is logged in.
public enum LoginFrame {
    /// `HELLO <version> <agent> [<capability> ...]`: the first frame of every connection.
    public static func hello(agent: String = "toom", capabilities: [String] = []) -> [String] {
        ["HELLO", String(Wire.protocolVersion), agent] + capabilities
    }
    /// `USER <username>`
    public static func user(_ name: String) -> [String] { ["USER", name] }
    /// `PASS <password> <udp_port> [<x25519 public key>]`: the key only with `p2p` granted.
    public static func password(_ password: String, udpPort: Int, transferKey: String? = nil) -> [String] {
        ["PASS", password, String(udpPort)] + (transferKey.map { [$0] } ?? [])
    }
}

/// Error codes carried by `ERR` frames. The client acts on the code and prints the messages.
public enum ErrorCode: String, Sendable, CaseIterable {
    case unsupportedVersion = "unsupported_version"
    case badFrame = "bad_frame"
    case invalidUsername = "invalid_username"
    case invalidPassword = "invalid_password"
    case accountBlocked = "account_blocked"
    case blocked = "blocked"
    case alreadyLoggedIn = "already_logged_in"
    case notLoggedIn = "not_logged_in"
    case invalidCommand = "invalid_command"
    case usage = "usage"
    case invalidArgument = "invalid_argument"
    case noSuchUser = "no_such_user"
    case offline = "offline"
    case selfReference = "self"
    case roomExists = "room_exists"
    case noSuchRoom = "no_such_room"
    case notMember = "not_member"
    case storage = "storage"
    case limit = "limit"
    case loginTimeout = "login_timeout"
    case addressBlocked = "address_blocked"
    /// A plaintext connection to a server started with `--require-tls`.
    case tlsRequired = "tls_required"
    case unknown = "unknown"

    /// Errors after which the server closes the connection.
    public var endsSession: Bool {
        switch self {
        case .unsupportedVersion, .badFrame, .accountBlocked, .blocked, .alreadyLoggedIn, .limit, .loginTimeout, .addressBlocked,
             .tlsRequired:
            return true
        default: return false
        }
    }
}

/// A frame from the server, decoded.
public enum ServerFrame: Equatable, Sendable {
    /// `HELLO <version> [<capability> ...]`: the server accepts the protocol version and
    /// grants the capabilities listed (those the client asked for and the server has).
    case hello(version: Int, capabilities: [String] = [])
    /// `ITEM <kind> ...`: one entry of a list reply; a final `OK` or `ERR` follows.
    case item(kind: String, fields: [String])
    /// `OK <kind> ...`: the request succeeded.
    case ok(kind: String, fields: [String])
    /// `ERR <code> <message> [<message> ...]`: the request failed; each message is one line for the user.
    case error(code: ErrorCode, messages: [String])
    /// `EVENT <kind> ...`: unsolicited news (the server stops, the operator disconnects you, ...).
    case event(kind: String, fields: [String])

    public static func decode(_ line: Substring) -> ServerFrame? {
        let parts = Wire.fields(line)
        guard let tag = parts.first else { return nil }
        let rest = parts.dropFirst().map(String.init)
        switch tag {
        case "HELLO":
            guard let v = rest.first.flatMap({ Int($0) }) else { return nil }
            return .hello(version: v, capabilities: Array(rest.dropFirst()))
        case "ITEM", "OK", "EVENT":
            guard let kind = rest.first else { return nil }
            let fields = Array(rest.dropFirst())
            switch tag {
            case "ITEM": return .item(kind: kind, fields: fields)
            case "OK": return .ok(kind: kind, fields: fields)
            default: return .event(kind: kind, fields: fields)
            }
        case "ERR":
            guard let code = rest.first else { return nil }
            return .error(code: ErrorCode(rawValue: code) ?? .unknown, messages: Array(rest.dropFirst()))
        default:
            return nil
        }
    }

    public var fields: [String] {
        switch self {
        case .hello(let version, let capabilities): return ["HELLO", String(version)] + capabilities
        case .item(let kind, let fields): return ["ITEM", kind] + fields
        case .ok(let kind, let fields): return ["OK", kind] + fields
        case .error(let code, let messages): return ["ERR", code.rawValue] + messages
        case .event(let kind, let fields): return ["EVENT", kind] + fields
        }
    }

    public var encoded: String {
        var text = ""
        append(to: &text)
        return text
    }

    /// Appends the encoded frame, newline included, without building its field list.
    public func append(to text: inout String) {
        var first = true
        visit { field in
            if !first { text += "\t" }
            first = false
            text += field
        }
        text += "\n"
    }

    /// Calls `body` with each field in order, without building the field list.
    public func visit(_ body: (String) -> Void) {
        func each(_ tag: String, _ second: String, _ rest: [String]) {
            body(tag)
            body(second)
            for field in rest { body(field) }
        }
        switch self {
        case .hello(let version, let capabilities): each("HELLO", String(version), capabilities)
        case .item(let kind, let fields): each("ITEM", kind, fields)
        case .ok(let kind, let fields): each("OK", kind, fields)
        case .error(let code, let messages): each("ERR", code.rawValue, messages)
        case .event(let kind, let fields): each("EVENT", kind, fields)
        }
    }
}

/// Event kinds the server may send at any time after login.
public enum EventKind {
    /// `EVENT SHUTDOWN <message>`: the server is stopping; the connection closes next.
    public static let shutdown = "SHUTDOWN"
    /// `EVENT KICKED <message>`: the operator disconnected this user; the connection closes next.
    public static let kicked = "KICKED"
    /// `EVENT TOO_SLOW <message>`: the client left too much unread; the connection closes next.
    public static let tooSlow = "TOO_SLOW"
    /// Live delivery (capability `live`): `EVENT B <n> <ts> <user> <message>`.
    public static let broadcast = "B"
    /// Live delivery: `EVENT S <room> <n> <ts> <user> <message>`.
    public static let roomMessage = "S"
    /// Live delivery: `EVENT SRB <id> <issuer> <member> ...`, a room that includes this user.
    public static let roomBuilt = "SRB"

    /// Kinds after which the server closes the connection.
    public static let endingSession: Set<String> = [shutdown, kicked, tooSlow]
}

/// Capabilities a client may ask for in HELLO, after its agent field.
public enum Capability {
    /// Live delivery (spec §8): the server sends new messages as `EVENT B`/`S`/`SRB` frames.
    public static let live = "live"
    /// Transfers between any two users (spec §12): the client registers its UDP address
    /// with the server, the two clients agree the file key themselves (X25519) and are
    /// given each other's candidate addresses and the server's relay.
    public static let p2p = "p2p"
}
