import Foundation
import ToomTestSupport

/// Plain TCP sockets on 127.0.0.1 (or another local address), for what NIO is not wanted for.
enum Loopback {
    /// A TCP socket bound to 127.0.0.1 on a port the kernel picks, listening if asked; the caller closes it.
    static func boundSocket(listening: Bool, host: String = "127.0.0.1",
                            type: Int32 = Int32(SOCK_STREAM.rawValue)) throws -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, type, 0)
        guard fd >= 0 else { throw BenchError("socket: \(String(cString: strerror(errno)))") }
        var address = self.address(host: host, port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && (!listening || listen(fd, 1) == 0) && getsockname(fd, $0, &length) == 0
            }
        }
        guard bound else {
            let problem = String(cString: strerror(errno))
            close(fd)
            throw BenchError("bind: \(problem)")
        }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    /// A port that nothing listens on now, for a server that must be told its port.
    static func freePort() throws -> Int {
        let (fd, port) = try boundSocket(listening: false)
        close(fd)
        return port
    }

    /// Connects `fd` to `host` `port`; true on success.
    static func connect(_ fd: Int32, host: String = "127.0.0.1", port: Int) -> Bool {
        var address = self.address(host: host, port: port)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Foundation.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

    /// Both ends of a fresh TCP connection on 127.0.0.1 (client, server); the caller closes them.
    static func connectedPair() throws -> (client: Int32, server: Int32) {
        try connectedPair(server: boundSocket(listening: true), host: "127.0.0.1",
                          client: socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0))
    }

    /// Both ends of a fresh TCP connection across a routed path: the client in the
    /// sender's namespace, the server in the receiver's.
    static func connectedPair(across path: RoutedPath) throws -> (client: Int32, server: Int32) {
        let host = path.receiverAddress
        let listener = try path.receiver.enter { try boundSocket(listening: true, host: host) }
        let client = try path.sender.enter { socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0) }
        return try connectedPair(server: listener, host: host, client: client)
    }

    private static func connectedPair(server listener: (fd: Int32, port: Int), host: String,
                                      client: Int32) throws -> (client: Int32, server: Int32) {
        let (listener, port) = listener
        defer { Foundation.close(listener) }
        guard client >= 0 else { throw BenchError("socket: \(String(cString: strerror(errno)))") }
        guard connect(client, host: host, port: port) else {
            Foundation.close(client)
            throw BenchError("connect: \(String(cString: strerror(errno)))")
        }
        let server = accept(listener, nil, nil)
        guard server >= 0 else {
            Foundation.close(client)
            throw BenchError("accept: \(String(cString: strerror(errno)))")
        }
        return (client, server)
    }

    /// Whether something accepts TCP connections on 127.0.0.1 `port`.
    static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return connect(fd, port: port)
    }

    private static func address(host: String, port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr(host)
        return address
    }
}
