import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ToomCore
import ToomSecurity
import ToomTransfer

public struct ClientConfiguration: Sendable {
    public var serverHost: String
    public var serverPort: Int
    /// The UDP port this client listens on for incoming files; 0 picks a free one.
    public var udpPort: Int
    /// The UDP port other users are told to send to, when something in front of this
    /// client forwards another port to `udpPort`; nil means `udpPort`.
    public var publicUDPPort: Int?
    /// Largest incoming file accepted, in bytes; nil for no limit.
    public var maxUpload: UInt64?
    /// How long a file transfer waits for its peer before it fails.
    public var transferTimeout: TimeAmount = .seconds(10)
    /// Ask the server for live delivery (spec §8) and print what others say as it arrives.
    public var live: Bool
    /// TLS with trust on first use, a pinned fingerprint, or the original plaintext protocol.
    public var security: ClientSecurity

    public init(serverHost: String, serverPort: Int, udpPort: Int, publicUDPPort: Int? = nil,
                maxUpload: UInt64? = nil, transferTimeout: TimeAmount = .seconds(10), live: Bool = false,
                security: ClientSecurity = .trustOnFirstUse) {
        self.serverHost = serverHost
        self.serverPort = serverPort
        self.udpPort = udpPort
        self.publicUDPPort = publicUDPPort
        self.maxUpload = maxUpload
        self.transferTimeout = transferTimeout
        self.live = live
        self.security = security
    }
}

/// Exit statuses of `toom client`.
public enum ClientExit: Int32 {
    case ok = 0
    /// The server refused the login (blocked, already logged in, protocol version).
    case loginRefused = 1
    /// A local problem: the UDP port cannot be used.
    case local = 2
    /// The server cannot be reached, or the connection was lost.
    case unreachable = 3
    /// The server ended the session: it shut down, or the operator disconnected this user.
    case disconnected = 4
    /// The server's TLS certificate is not the one remembered or pinned.
    case untrusted = 5
}

/// The TOOM client: the login dialogue and the command prompt (spec §4, §5).
public final class ChatClient: Sendable {
    let configuration: ClientConfiguration
    let input: LineInput
    private let screen: ClientScreen

    public init(configuration: ClientConfiguration, input: LineInput = PlainLineInput()) {
        self.configuration = configuration
        self.input = input
        screen = ClientScreen(input: input, showsProgress: isatty(1) == 1)
    }

    /// Runs the whole session and returns the exit status.
    public func run() async -> ClientExit {
        let group = MultiThreadedEventLoopGroup.singleton
        let input = self.input
        let screen = self.screen
        let transfers: FileTransfers
        do {
            transfers = try await FileTransfers(port: configuration.udpPort,
                                                maxIncomingSize: configuration.maxUpload,
                                                timeout: configuration.transferTimeout, screen: screen)
        } catch {
            say("Cannot listen for files on UDP port \(configuration.udpPort): \(Self.describe(error))")
            return .local
        }
        let udpPort = configuration.publicUDPPort ?? transfers.endpoint.port
        let live = LiveDisplay(screen: screen)

        let connection: ServerConnection
        do {
            connection = try await ServerConnection.connect(
                host: configuration.serverHost, port: configuration.serverPort, tls: try makeTLS(), group: group,
                onEvent: { frame in
                    // An unsolicited refusal (the login timed out) ends the session even at a prompt.
                    if case .error(_, let messages) = frame { return live.end { Self.end(messages, .loginRefused, input) } }
                    guard case .event(let kind, let fields) = frame else { return }
                    if kind == EventKind.offer {
                        transfers.offer(fields)
                        return
                    }
                    guard EventKind.endingSession.contains(kind) else { return live.deliver(frame) }
                    live.end { Self.end(fields.isEmpty ? [Messages.serverShutdown] : fields, .disconnected, input) }
                },
                onLost: { Self.end([Messages.connectionLost], .unreachable, input) })
        } catch let error as ClientTLSError {
            return refused(error)
        } catch {
            say("Cannot connect to the server at \(configuration.serverHost) port \(configuration.serverPort): \(Self.describe(error))")
            return .unreachable
        }
        var replies = connection.replies.makeAsyncIterator()

        func request(_ fields: [String]) async -> [ServerFrame] {
            live.replyPending()
            connection.send(fields)
            var frames: [ServerFrame] = []
            while let frame = await replies.next() {
                frames.append(frame)
                if ReplyRenderer.isFinal(frame) {
                    (input as? ReplyObserver)?.observe(frames)
                    return frames
                }
            }
            live.endWithoutReply()
            Self.end([Messages.connectionLost], .unreachable, input)
        }

        // What the server said unasked is shown before the next prompt.
        func readLine(prompt: String, secret: Bool) async -> String? {
            live.replyShown()
            return await input.readLine(prompt: prompt, secret: secret)
        }

        // Version handshake.
        let hello = LoginFrame.hello(capabilities: (configuration.live ? [Capability.live] : []) + [Capability.p2p])
        let greeting = await request(hello).last
        if case .error(_, let messages)? = greeting {
            say(messages)
            return .loginRefused
        }
        // With `p2p` the client sends its X25519 key and registers its UDP port (spec §12).
        var transferKey: String?
        if case .hello(_, let granted)? = greeting, granted.contains(Capability.p2p) { transferKey = transfers.keys.publicHex }

        // Login: the username until it is known, then the password until it is right.
        login: while true {
            guard let name = await readLine(prompt: Messages.usernamePrompt, secret: false) else {
                return quietly(connection)
            }
            switch await request(LoginFrame.user(name)).last {
            case .ok?:
                break
            case .error(let code, let messages)?:
                say(messages)
                if code == .invalidUsername { continue login }
                return .loginRefused
            default:
                return .unreachable
            }
            while true {
                guard let password = await readLine(prompt: Messages.passwordPrompt, secret: true) else {
                    return quietly(connection)
                }
                switch await request(LoginFrame.password(password, udpPort: udpPort, transferKey: transferKey)).last {
                case .ok(_, let fields)?:
                    say(Messages.welcome)
                    // A port forwarded by hand (--public-udp-port) is where others send: nothing to register.
                    if transferKey != nil, configuration.publicUDPPort == nil {
                        transfers.register(fields, server: connection.channel.remoteAddress)
                    }
                    break login
                case .error(let code, let messages)?:
                    say(messages)
                    if code == .invalidPassword { continue }
                    if code == .invalidUsername { continue login }
                    return .loginRefused
                default:
                    return .unreachable
                }
            }
        }

        // Commands until OUT or end of input.
        while true {
            guard let line = await readLine(prompt: Command.prompt, secret: false) else {
                await transfers.finish()
                connection.expectClose()
                say(ReplyRenderer.lines(for: await request(["OUT"])))
                return .ok
            }
            screen.lineEntered()
            switch CommandParser.parse(line) {
            case .empty:
                continue
            case .error(let message):
                say(message)
            case .command(let command):
                if case .upload(let audience, let file) = command {
                    await transfers.upload(audience, file) { fields in
                        let frames = await request(fields)
                        if case .error(let code, let messages)? = frames.last, code.endsSession {
                            Self.end(messages, .disconnected, input)
                        }
                        return frames
                    }
                    continue
                }
                if case .logout = command {
                    await transfers.finish()
                    connection.expectClose()
                }
                let frames = await request([command.word] + command.arguments)
                if case .error(let code, let messages)? = frames.last, code.endsSession {
                    Self.end(messages, .disconnected, input)
                }
                say(ReplyRenderer.lines(for: frames))
                if case .logout = command { return .ok }
            }
        }
    }

    private static let ending = NIOLockedValueBox(false)

    /// Prints the last lines and exits, once, whichever path (a reply, the event loop) gets here first.
    static func end(_ lines: [String], _ status: ClientExit, _ input: LineInput) -> Never {
        ending.withLockedValue { alreadyEnding in
            if !alreadyEnding {
                alreadyEnding = true
                input.printAbove(lines)
                input.restoreTerminal()
                // Not exit(3): it takes every stdio stream's lock, and the input thread holds
                // standard input's while it waits for a line that may never come (a pipe kept
                // open). The client writes with write(2), so there is nothing to flush.
                _exit(status.rawValue)
            }
        }
        // Another thread is exiting.
        while true { pause() }
    }

    private func quietly(_ connection: ServerConnection) -> ClientExit {
        connection.expectClose()
        connection.channel.close(promise: nil)
        return .ok
    }

    func say(_ lines: [String]) { screen.say(lines) }
    func say(_ line: String) { screen.say([line]) }

    static func describe(_ error: Error) -> String {
        if let error = error as? IOError { return String(cString: strerror(error.errnoCode)) }
        if let error = error as? NIOConnectionError {
            if let first = error.connectionErrors.first { return describe(first.error) }
            return "cannot resolve the address"
        }
        if let error = error as? ChannelError, case .connectTimeout = error { return "timed out" }
        return "\(error)"
    }
}
