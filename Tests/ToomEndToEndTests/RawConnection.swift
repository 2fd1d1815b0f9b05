import Foundation
import ToomTestSupport

/// A plain TCP connection to the server, for speaking the wire protocol directly
/// (including what a well-behaved client never sends). One thread may send while another reads.
final class RawConnection: @unchecked Sendable {
    let fd: Int32

    /// Connects to the server on loopback; `receiveBuffer` shrinks the socket's receive
    /// buffer, for a client that reads slowly.
    init(port: Int, receiveBuffer: Int32? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError(description: "socket: \(errno)") }
        if var size = receiveBuffer {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else { close(fd); throw HarnessError(description: "connect: \(errno)") }
        // A read gives up after the tests' one patience (it was 20 s, shorter than every other wait).
        var timeout = timeval(tv_sec: Int(patience.components.seconds), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Foundation.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            offset += n
        }
    }

    func send(_ text: String) { send(Array(text.utf8)) }

    /// Reads one line (without its newline), or nil when the server closed the connection.
    func readLine() -> String? {
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while recv(fd, &byte, 1, 0) == 1 {
            if byte == 0x0A { return String(decoding: line, as: UTF8.self) }
            line.append(byte)
        }
        return nil
    }

    /// True once the server has closed the connection (reads until end of stream), waiting
    /// on a thread of its own: it may take seconds.
    func isClosedByServer() async -> Bool {
        (try? await offThePool { self.waitForClose() }) ?? false
    }

    private func waitForClose() -> Bool {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n == 0 { return true }
            // A reset is also the server closing (it had unread bytes from us).
            if n < 0 { return errno == ECONNRESET }
        }
    }

    /// Greets (asking for live delivery if `live`) and logs in, returning after the server's `OK LOGIN`.
    func login(_ user: String, _ password: String, udpPort: Int = 9, live: Bool = false) throws {
        send(live ? "HELLO\t1\ttest\tlive\n" : "HELLO\t1\ttest\n")
        guard readLine() == (live ? "HELLO\t1\tlive" : "HELLO\t1") else { throw HarnessError(description: "no HELLO") }
        send("USER\t\(user)\n")
        guard readLine() == "OK\tUSER" else { throw HarnessError(description: "USER refused") }
        send("PASS\t\(password)\t\(udpPort)\n")
        guard readLine() == "OK\tLOGIN\t\(user)" else { throw HarnessError(description: "PASS refused") }
    }
}
