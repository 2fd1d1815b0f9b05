#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One address where a client may be reached for a transfer (spec §12): an IP address and
/// a UDP port, written `198.18.0.7:6001` or `[2001:db8::7]:6001` in frames. An IPv4
/// address mapped into IPv6 (`::ffff:198.18.0.7`, how a dual-stack socket sees an IPv4
/// peer) is kept as the IPv4 address it is.
public struct TransferCandidate: Hashable, Sendable, CustomStringConvertible {
    /// Candidates one offer lists at most, and one registration carries.
    public static let maxListed = 8

    /// 4 bytes for IPv4, 16 for IPv6, in network order.
    public let address: [UInt8]
    public let port: UInt16

    public init?(address: [UInt8], port: UInt16) {
        guard port != 0 else { return nil }
        if address.count == 16, address[0..<10].allSatisfy({ $0 == 0 }), address[10] == 0xff, address[11] == 0xff {
            self.address = Array(address[12...])
        } else if address.count == 4 || address.count == 16 {
            self.address = address
        } else {
            return nil
        }
        self.port = port
    }

    /// An address in its text form (`198.18.0.7`, `2001:db8::7`, no brackets) and a port.
    public init?(host: some StringProtocol, port: Int) {
        guard (1...65535).contains(port), let bytes = Self.parse(String(host)) else { return nil }
        self.init(address: bytes, port: UInt16(port))
    }

    /// `198.18.0.7:6001` or `[2001:db8::7]:6001`.
    public init?(_ text: some StringProtocol) {
        let text = String(text)
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else { return nil }
        var host = text[..<colon]
        if host.hasPrefix("[") {
            guard host.hasSuffix("]") else { return nil }
            host = host.dropFirst().dropLast()
            guard host.contains(":") else { return nil }
        } else if host.contains(":") {
            return nil
        }
        self.init(host: host, port: port)
    }

    public var isIPv6: Bool { address.count == 16 }

    /// The address alone, as `ATU` shows it.
    public var host: String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        address.withUnsafeBytes { raw in
            _ = inet_ntop(isIPv6 ? AF_INET6 : AF_INET, raw.baseAddress, &text, socklen_t(text.count))
        }
        return String(cString: text)
    }

    public var description: String { isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Loopback, link-local and unspecified addresses mean nothing to another host.
    public var isUsefulElsewhere: Bool {
        if isIPv6 {
            if address.allSatisfy({ $0 == 0 }) || address == [UInt8](repeating: 0, count: 15) + [1] { return false }
            return !(address[0] == 0xfe && address[1] & 0xc0 == 0x80)
        }
        return address[0] != 127 && address[0] != 0 && !(address[0] == 169 && address[1] == 254)
    }

    private static func parse(_ host: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    /// The address as `ATU` and `userlog.txt` show it: an IPv4 peer of a dual-stack socket
    /// (`::ffff:127.0.0.1`) as plain IPv4; anything else as it is.
    public static func plainAddress(_ text: String) -> String {
        guard text.hasPrefix("::ffff:"), text.contains("."), let candidate = TransferCandidate(host: text, port: 1)
        else { return text }
        return candidate.host
    }
}
