import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import NIOTLS
import ToomCore

/// Why a TLS connection to the server was not made. The client prints `description` and exits.
public enum ClientTLSError: Error, CustomStringConvertible, Sendable {
    /// The certificate differs from the one remembered in `known_servers`.
    case changed(server: String, expected: String, presented: String, file: String)
    /// The certificate differs from `--fingerprint`.
    case pinMismatch(server: String, expected: String, presented: String)
    /// The server answered in plaintext before any handshake (full, address refused, or a
    /// server without TLS).
    case refused(code: ErrorCode, messages: [String])
    case handshake(String)

    public var description: String {
        switch self {
        case .changed(let server, let expected, let presented, let file):
            return """
            The TLS certificate fingerprint of \(server) has CHANGED: it was \(expected) and is now \(presented). \
            Someone may be intercepting the connection, or the server has a new certificate. \
            If the operator confirms the new fingerprint, delete the line for \(server) from \(file) and connect again. \
            Nothing was sent.
            """
        case .pinMismatch(let server, let expected, let presented):
            return "The TLS certificate fingerprint of \(server) is \(presented), not \(expected) as --fingerprint says. Nothing was sent."
        case .refused(let code, let messages):
            if code == .badFrame {
                return (messages + ["The server did not accept a TLS connection; it may be a toom server without TLS (try --plaintext)."])
                    .joined(separator: "\n")
            }
            return messages.joined(separator: "\n")
        case .handshake(let reason):
            return "The TLS handshake with the server failed: \(reason)"
        }
    }

    /// Whether the server said why it refused: the client treats that like a refused login.
    public var isRefusal: Bool {
        if case .refused(let code, _) = self { return code != .badFrame }
        return false
    }
}

/// The client's side of TLS (spec §9), for one connection: trust on first use through
/// `known_servers`, or a pinned fingerprint. The certificate is checked during the handshake,
/// before the client sends anything of its own.
public final class ClientTLS: Sendable {
    let host: String
    let port: Int
    let pinned: String?
    let knownServers: KnownServers
    let notice: @Sendable (String) -> Void
    let context: NIOSSLContext
    private let failure = NIOLockedValueBox<ClientTLSError?>(nil)
    private let handshake = NIOLockedValueBox<EventLoopPromise<Void>?>(nil)

    /// `pinned` is a `SHA256:...` fingerprint to require instead of `known_servers`;
    /// `notice` gets the first-use line (the client writes it on standard error).
    public init(host: String, port: Int, pinned: String? = nil,
                knownServers: KnownServers = KnownServers(path: KnownServers.defaultPath()),
                notice: @escaping @Sendable (String) -> Void) throws {
        self.host = host
        self.port = port
        self.pinned = pinned
        self.knownServers = knownServers
        self.notice = notice
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        // The custom callback replaces chain and name checks: the fingerprint is the identity.
        configuration.certificateVerification = .noHostnameVerification
        configuration.trustRoots = .certificates([])
        context = try NIOSSLContext(configuration: configuration)
    }

    var server: String { KnownServers.key(host: host, port: port) }

    static let handshakeTimeout: TimeAmount = .seconds(10)

    /// The one hook for the connection's pipeline: call first in the channel initializer,
    /// before the line decoder; then await `established`.
    public func configure(_ channel: Channel) throws {
        let promise = channel.eventLoop.makePromise(of: Void.self)
        handshake.withLockedValue { $0 = promise }
        let isAddress = (try? SocketAddress(ipAddress: host, port: 0)) != nil
        let ssl = try NIOSSLClientHandler(context: context, serverHostname: isAddress ? nil : host,
                                          customVerificationCallback: { [self] chain, result in
            result.succeed(check(chain))
        })
        // A server without TLS may wait for the rest of a "line" that never comes.
        let timeout = channel.eventLoop.scheduleTask(in: Self.handshakeTimeout) { [failure] in
            failure.withLockedValue {
                $0 = $0 ?? .handshake("no TLS answer within \(Self.handshakeTimeout.nanoseconds / 1_000_000_000) seconds; if the server has no TLS, try --plaintext")
            }
            channel.close(promise: nil)
        }
        promise.futureResult.whenComplete { _ in timeout.cancel() }
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(PlaintextRefusalDetector(promise: promise), position: .first)
        try sync.addHandler(ssl, position: .after(sync.handler(type: PlaintextRefusalDetector.self)))
        try sync.addHandler(HandshakeWaiter(promise: promise, failure: failure), position: .after(ssl))
    }

    /// Completes once the handshake is done and the certificate trusted; throws `ClientTLSError`.
    public func established() async throws {
        guard let promise = handshake.withLockedValue({ $0 }) else { return }
        try await promise.futureResult.get()
    }

    private func check(_ chain: [NIOSSLCertificate]) -> NIOSSLVerificationResult {
        guard let leaf = chain.first, let der = try? leaf.toDERBytes() else {
            failure.withLockedValue { $0 = .handshake("the server sent no certificate") }
            return .failed
        }
        let presented = Fingerprint.of(der: der)
        if let pinned {
            if presented == pinned { return .certificateVerified }
            failure.withLockedValue { $0 = .pinMismatch(server: server, expected: pinned, presented: presented) }
            return .failed
        }
        let known: String?
        do {
            known = try knownServers.fingerprint(for: server)
        } catch {
            failure.withLockedValue { $0 = .handshake("cannot read \(knownServers.path): \(error)") }
            return .failed
        }
        switch known {
        case presented?:
            return .certificateVerified
        case let expected?:
            failure.withLockedValue { $0 = .changed(server: server, expected: expected, presented: presented, file: knownServers.path) }
            return .failed
        case nil:
            do {
                try knownServers.remember(presented, for: server)
                notice("First connection to \(server): its TLS certificate fingerprint is \(presented). Remembered in \(knownServers.path).")
            } catch {
                notice("First connection to \(server): its TLS certificate fingerprint is \(presented). Not remembered: \(error)")
            }
            return .certificateVerified
        }
    }
}

/// Before the handshake the server may answer in plaintext (`ERR ...`: full, address refused,
/// or a server without TLS rejecting the handshake as a bad frame): `ConnectionStart.client`.
final class PlaintextRefusalDetector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    private let promise: EventLoopPromise<Void>
    private var pending: ByteBuffer?

    init(promise: EventLoopPromise<Void>) { self.promise = promise }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        pending.setOrWriteBuffer(&buffer)
        switch ConnectionStart.client(pending!.readableBytesView) {
        case .wait:
            return
        case .tls:
            context.fireChannelRead(wrapInboundOut(pending!))
            pending = nil
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        case .plaintext(.error(let code, let messages)?):
            promise.fail(ClientTLSError.refused(code: code, messages: messages))
            context.close(promise: nil)
        case .plaintext:
            promise.fail(ClientTLSError.handshake("the server answered with something that is neither TLS nor toom"))
            context.close(promise: nil)
        }
    }
}

/// Completes the handshake promise: success once the handshake is done, or the reason it
/// failed. Until then it keeps errors and the close from the handlers behind it: the
/// connection was never up, and the caller of `established` reports why.
final class HandshakeWaiter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    private let promise: EventLoopPromise<Void>
    private let failure: NIOLockedValueBox<ClientTLSError?>

    init(promise: EventLoopPromise<Void>, failure: NIOLockedValueBox<ClientTLSError?>) {
        self.promise = promise
        self.failure = failure
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted? = event as? TLSUserEvent {
            promise.succeed()
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        promise.fail(failure.withLockedValue { $0 } ?? ClientTLSError.handshake("\(error)"))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(failure.withLockedValue { $0 } ?? ClientTLSError.handshake("the server closed the connection"))
    }
}
