import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What the local routing table says about a destination.
enum Route {
    /// The largest UDP payload the route to `address` carries unfragmented: its MTU (the
    /// outgoing interface's, or a smaller one the kernel learned on the way) less the IP
    /// and UDP headers, at most `TransferPacket.maxDatagram`. Nil when the system does
    /// not say. A connected UDP socket asks the kernel without sending anything.
    static func datagramLimit(to address: SocketAddress) -> Int? {
        #if os(Linux)
        let (family, level, option, headers): (Int32, Int32, Int32, Int)
        switch address {
        case .v4: (family, level, option, headers) = (AF_INET, Int32(IPPROTO_IP), IP_MTU, 20 + 8)
        case .v6: (family, level, option, headers) = (AF_INET6, Int32(IPPROTO_IPV6), IPV6_MTU, 40 + 8)
        default: return nil
        }
        let fd = socket(family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        let connected = address.withSockAddr { pointer, length in connect(fd, pointer, socklen_t(length)) }
        guard connected == 0 else { return nil }
        var mtu: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, level, option, &mtu, &size) == 0, Int(mtu) > headers else { return nil }
        return min(Int(mtu) - headers, TransferPacket.maxDatagram)
        #else
        return nil
        #endif
    }
}
