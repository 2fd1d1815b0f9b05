import Foundation
import NIOCore
import NIOPosix

/// What one client, or many, may hold of the server. Each limit ends with a one-line
/// error to the client where the client can still read it (docs/SECURITY.md).
public struct ServerLimits: Sendable {
    /// A connection must be logged in this long after it opens, or it is told and closed.
    public var loginTimeout: TimeAmount
    /// Open connections at most; one more is refused with a one-line error.
    public var maxConnections: Int
    /// Reply bytes a client may leave unread. A client asking for more while it has this
    /// much unread is disconnected: it is not reading, and its replies would pile up here.
    public var maxUnreadBytes: Int
    /// Failed logins (unknown usernames and wrong passwords, any account) one address may
    /// make within `addressWindow`; reaching it refuses that address for
    /// `addressBlockDuration`. 0 turns the limit off.
    public var maxAddressFailures: Int
    public var addressWindow: TimeAmount
    public var addressBlockDuration: TimeAmount

    public init(loginTimeout: TimeAmount = .seconds(60), maxConnections: Int = 1024, maxUnreadBytes: Int = 1 << 20,
                maxAddressFailures: Int = 20, addressWindow: TimeAmount = .seconds(60),
                addressBlockDuration: TimeAmount = .seconds(60)) {
        self.loginTimeout = loginTimeout
        self.maxConnections = maxConnections
        self.maxUnreadBytes = maxUnreadBytes
        self.maxAddressFailures = maxAddressFailures
        self.addressWindow = addressWindow
        self.addressBlockDuration = addressBlockDuration
    }
}

extension ServerBootstrap {
    /// Probes idle connections (TCP keepalive: after 60 s of silence, every 10 s, 6 times),
    /// so a client that vanished without closing, its network cut or its machine off, is
    /// noticed within about two minutes and its user logged out.
    func probingIdleConnections() -> ServerBootstrap {
        let bootstrap = childChannelOption(.socketOption(.so_keepalive), value: 1)
        #if os(Linux)
        func tcp(_ name: Int32) -> ChannelOptions.Types.SocketOption {
            ChannelOptions.Types.SocketOption(level: .tcp, name: NIOBSDSocket.Option(rawValue: name))
        }
        return bootstrap
            .childChannelOption(tcp(TCP_KEEPIDLE), value: 60)
            .childChannelOption(tcp(TCP_KEEPINTVL), value: 10)
            .childChannelOption(tcp(TCP_KEEPCNT), value: 6)
        #else
        return bootstrap
        #endif
    }
}
