import Crypto
import Foundation
import NIOCore
import NIOSSL
import NIOTLS
import ToomCore
import X509

/// The server's side of TLS (spec §9): its certificate, and the first-byte detector that
/// puts TLS in front of a connection that starts a handshake.
public final class ServerTLS: Sendable {
    public static let certificateFile = "tls-cert.pem"
    public static let keyFile = "tls-key.pem"

    /// `SHA256:<base64>` of the certificate the server presents.
    public let fingerprint: String
    /// Refuse connections that do not start a TLS handshake.
    public let requireTLS: Bool
    /// How long a connection may take from its first handshake byte to a finished handshake.
    public let handshakeTimeout: TimeAmount
    let context: NIOSSLContext

    public struct SetupError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Uses `certificatePath` and `keyPath` when given, else `tls-cert.pem` and `tls-key.pem`
    /// in the data directory, creating them on first start. `notice` gets a line for the
    /// operator when something was created or looks unsafe.
    public init(dataDirectory: String, certificatePath: String? = nil, keyPath: String? = nil,
                requireTLS: Bool = false, handshakeTimeout: TimeAmount = .seconds(10),
                notice: (String) -> Void = { _ in }) throws {
        let certPath = certificatePath ?? dataDirectory + "/" + Self.certificateFile
        let keyPath = keyPath ?? dataDirectory + "/" + Self.keyFile
        if certificatePath == nil {
            try Self.createIfMissing(certPath: certPath, keyPath: keyPath, notice: notice)
        }
        var info = stat()
        if stat(keyPath, &info) == 0, info.st_mode & 0o077 != 0 {
            notice("warning: \(keyPath) can be read by other users (mode \(String(info.st_mode & 0o777, radix: 8))); chmod 600 it")
        }
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certPath)
        } catch {
            throw SetupError(description: "cannot read the TLS certificate \(certPath): \(Self.describe(error))")
        }
        do {
            key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
        } catch {
            throw SetupError(description: "cannot read the TLS key \(keyPath): \(Self.describe(error))")
        }
        guard let leaf = chain.first else { throw SetupError(description: "no certificate in \(certPath)") }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        configuration.shutdownTimeout = .seconds(1)
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw SetupError(description: "the TLS key \(keyPath) does not match the certificate \(certPath), or cannot be used: \(Self.describe(error))")
        }
        fingerprint = Fingerprint.of(der: try leaf.toDERBytes())
        self.requireTLS = requireTLS
        self.handshakeTimeout = handshakeTimeout
    }

    /// The one hook for a new connection: call first in the child channel initializer, before
    /// the line decoder. Whatever comes after sees plaintext frames either way.
    public func configure(_ channel: Channel) throws {
        try channel.pipeline.syncOperations.addHandler(TLSDetector(tls: self), position: .first)
    }

    /// The frame a plaintext connection gets with `--require-tls`, before it is closed.
    public static let plaintextRefused = ServerFrame.error(
        code: .tlsRequired, messages: ["This server accepts only TLS connections. Please connect without --plaintext"])

    // MARK: Certificate

    /// A key without its certificate is the trace of a start interrupted between the two
    /// writes: the certificate is made again for that key.
    private static func createIfMissing(certPath: String, keyPath: String, notice: (String) -> Void) throws {
        let haveCert = access(certPath, F_OK) == 0
        let haveKey = access(keyPath, F_OK) == 0
        if haveCert && haveKey { return }
        if haveCert {
            throw SetupError(description: "\(certPath) exists but its key \(keyPath) does not; restore the key, or remove the certificate to make a new pair")
        }
        do {
            let key: P256.Signing.PrivateKey
            if haveKey {
                guard let bytes = try AtomicFile.read(keyPath) else { throw FileError(path: keyPath, operation: "open", code: ENOENT) }
                key = try P256.Signing.PrivateKey(pemRepresentation: String(decoding: bytes, as: UTF8.self))
            } else {
                key = P256.Signing.PrivateKey()
                try AtomicFile.write(keyPath, Array(key.pemRepresentation.utf8), mode: 0o600)
            }
            let pem = try selfSigned(key).serializeAsPEM().pemString + "\n"
            try AtomicFile.write(certPath, Array(pem.utf8), mode: 0o644)
        } catch let error as FileError {
            throw SetupError(description: "cannot create the TLS certificate: \(error)")
        } catch {
            throw SetupError(description: "cannot create the TLS certificate in \(certPath): \(error)")
        }
        notice("Created a self-signed TLS certificate \(certPath) and its key \(keyPath)")
    }

    private static func selfSigned(_ key: P256.Signing.PrivateKey) throws -> Certificate {
        let name = try DistinguishedName { CommonName("toom server \(ProcessInfo.processInfo.hostName)") }
        let now = Date()
        return try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(),
            publicKey: .init(key.publicKey),
            notValidBefore: now - 3600, notValidAfter: now + 20 * 365 * 86_400,
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
            },
            issuerPrivateKey: .init(key))
    }

    static func describe(_ error: Error) -> String {
        if let error = error as? NIOSSLError, case .failedToLoadCertificate = error { return "not a PEM certificate" }
        if let error = error as? NIOSSLError, case .failedToLoadPrivateKey = error { return "not a PEM private key" }
        if let error = error as? IOError { return String(cString: strerror(error.errnoCode)) }
        return "\(error)"
    }
}

/// Looks at a connection's first byte: 0x16 (a TLS handshake record) puts a TLS handler in
/// front of the rest of the pipeline; anything else is the original plaintext protocol, or
/// is refused with `--require-tls`. Then it leaves the pipeline.
final class TLSDetector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let tls: ServerTLS

    init(tls: ServerTLS) { self.tls = tls }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        switch ConnectionStart.server(buffer.readableBytesView, requireTLS: tls.requireTLS) {
        case .wait:
            return
        case .refuse:
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: ServerTLS.plaintextRefused.encoded)))
                .whenComplete { _ in channel.close(promise: nil) }
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        case .tls:
            let channel = context.channel
            let timeout = context.eventLoop.scheduleTask(in: tls.handshakeTimeout) { channel.close(promise: nil) }
            do {
                let ssl = NIOSSLServerHandler(context: tls.context)
                try context.pipeline.syncOperations.addHandler(ssl, position: .after(self))
                try context.pipeline.syncOperations.addHandler(HandshakeDeadline(timeout: timeout), position: .after(ssl))
            } catch {
                context.close(promise: nil)
                return
            }
        case .plaintext:
            break
        }
        context.fireChannelRead(data)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

/// Cancels the handshake timeout once the handshake is done, then leaves the pipeline.
final class HandshakeDeadline: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    private let timeout: Scheduled<Void>

    init(timeout: Scheduled<Void>) { self.timeout = timeout }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted? = event as? TLSUserEvent {
            timeout.cancel()
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timeout.cancel()
        context.fireChannelInactive()
    }
}
