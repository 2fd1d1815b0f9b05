import Foundation
import Testing
import ToomCore
import ToomTestSupport

/// The client's side of `EVENT TOO_SLOW` (docs/PROTOCOL.md §8): it prints the reason and
/// exits with status 4. A scripted server sends it, so the client is tested on its own.
@Suite struct TooSlowTests {
    @Test func aClientCutOffForReadingTooSlowlySaysWhyAndExits() async throws {
        let reason = "You were disconnected: more than 1048576 bytes of messages waited unread"
        let server = try ScriptedServer { frame in
            switch frame.split(separator: "\t").first {
            case "HELLO": return ["HELLO\t1\tlive"]
            case "USER": return ["OK\tUSER"]
            case "PASS": return ["OK\tLOGIN\tyoda", "EVENT\tB\t1\t21 Nov 2026 06:19:34\thans\thi", "EVENT\tTOO_SLOW\t\(reason)"]
            default: return []
            }
        }
        let root = try TemporaryDirectory()
        let client = try ToomProcess(["client", "127.0.0.1", String(server.port), "0", "--live", "--plaintext"], in: root.url)
        client.send("yoda")
        client.send("wise@!man")
        #expect(try await client.waitForExit() == 4)
        #expect(client.lines.suffix(3) == [Messages.welcome, "#1; hans: \"hi\" broadcast at 21 Nov 2026 06:19:34.", reason])
        #expect(server.received.first == "HELLO\t1\ttoom\tlive\tp2p")
    }
}

/// A one-connection TCP server on loopback that answers each frame from a script and
/// closes after the last answer of the script's final step (an empty answer list).
final class ScriptedServer: @unchecked Sendable {
    let port: Int
    private let listener: Int32
    private let lock = NSLock()
    private var frames: [String] = []

    var received: [String] { lock.withLock { frames } }

    init(answer: @escaping @Sendable (String) -> [String]) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && listen(fd, 1) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard bound else { close(fd); throw HarnessError(description: "cannot listen: \(errno)") }
        listener = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { [self] in
            let connection = accept(fd, nil, nil)
            guard connection >= 0 else { return }
            defer { close(connection) }
            var line: [UInt8] = []
            var byte: UInt8 = 0
            while recv(connection, &byte, 1, 0) == 1 {
                guard byte == 0x0A else { line.append(byte); continue }
                let frame = String(decoding: line, as: UTF8.self)
                line = []
                lock.withLock { frames.append(frame) }
                let answers = answer(frame)
                for answer in answers {
                    _ = (answer + "\n").utf8CString.withUnsafeBufferPointer {
                        send(connection, $0.baseAddress, $0.count - 1, Int32(MSG_NOSIGNAL))
                    }
                }
                if answers.last?.hasPrefix("EVENT\tTOO_SLOW") == true { return }
            }
        }
    }

    deinit { close(listener) }
}
