import ArgumentParser
import Foundation
import CEpoll
import Glibc

/// The echo reference without NIO: one thread, epoll and the system calls, as ngircd is
/// built. Against the NIO echo server it shows what NIO's channel pipeline costs per
/// message, i.e. what an event loop of toom's own could save at most.
struct PlainEchoServerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "plain-echo-server", abstract: "The echo reference without NIO (used by the benchmarks).", shouldDisplay: false)

    func run() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard listener >= 0 else { throw BenchError("socket: errno \(errno)") }
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) == 0 && listen(listener, 1024) == 0
                && getsockname(listener, $0, &length) == 0 }
        }
        guard bound else { throw BenchError("bind: errno \(errno)") }
        let epoll = epoll_create1(0)
        watch(epoll, listener)
        FileHandle.standardOutput.write(Data("Plain echo server listening on 127.0.0.1 port \(UInt16(bigEndian: address.sin_port))\n".utf8))

        // The start of a line whose newline has not come yet, per connection.
        var partial: [Int32: [UInt8]] = [:]
        var events = [epoll_event](repeating: epoll_event(), count: 256)
        var input = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let ready = epoll_wait(epoll, &events, Int32(events.count), -1)
            if ready < 0 { if errno == EINTR { continue }; throw BenchError("epoll_wait: errno \(errno)") }
            for event in events.prefix(Int(ready)) {
                let fd = event.data.fd
                if fd == listener {
                    while case let client = accept(listener, nil, nil), client >= 0 {
                        _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
                        setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                        watch(epoll, client)
                    }
                    continue
                }
                let count = read(fd, &input, input.count)
                if count < 0, errno == EAGAIN || errno == EINTR { continue }
                guard count > 0 else {
                    close(fd)  // also leaves the epoll set
                    partial[fd] = nil
                    continue
                }
                // Every whole line of the read goes back in one write, as it came; only the
                // start of a line still without its newline is kept.
                guard let last = input[..<count].lastIndex(of: 0x0A) else {
                    partial[fd, default: []].append(contentsOf: input[..<count])
                    continue
                }
                if var start = partial.removeValue(forKey: fd) {
                    start.append(contentsOf: input[...last])
                    start.withUnsafeBytes { send(fd, $0) }
                } else {
                    input.withUnsafeBytes { send(fd, UnsafeRawBufferPointer(rebasing: $0[...last])) }
                }
                if last + 1 < count { partial[fd] = Array(input[(last + 1)..<count]) }
            }
        }
    }

    /// A line per request: the socket always has room for the answer here, so there is no
    /// queue for a client that does not read.
    private func send(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) {
        var sent = 0
        while sent < bytes.count {
            let n = write(fd, bytes.baseAddress! + sent, bytes.count - sent)
            if n <= 0 { return }
            sent += n
        }
    }

    private func watch(_ epoll: Int32, _ fd: Int32) {
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.fd = fd
        epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event)
    }
}
