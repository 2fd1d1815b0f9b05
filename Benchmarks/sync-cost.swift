// What `--sync` costs: broadcasts per second and reply latency with and without it, for one
// client and for many, against a bare append+fsync loop on the same disk (the reference).
//
//   swift build -c release --product toom
//   swiftc -O Benchmarks/sync-cost.swift -o .build/sync-cost
//   .build/sync-cost [--toom .build/release/toom] [--dir .build/sync-cost-data] [--seconds 5] [--clients 1,50]
//
// The data directory must be on the disk being measured (not tmpfs, where fsync is free).
// Each client is a raw TCP connection speaking the wire protocol (docs/PROTOCOL.md):
// it logs in, then sends BCM and waits for each reply, for the given time.
import Foundation

struct Options {
    var toom = ".build/release/toom"
    var directory = ".build/sync-cost-data"
    var seconds = 5.0
    var clientCounts = [1, 50]

    init(_ arguments: [String]) {
        var rest = arguments[...]
        while let flag = rest.popFirst() {
            guard let value = rest.popFirst() else { fail("\(flag) needs a value") }
            switch flag {
            case "--toom": toom = value
            case "--dir": directory = value
            case "--seconds": seconds = Double(value) ?? seconds
            case "--clients": clientCounts = value.split(separator: ",").compactMap { Int($0) }
            default: fail("unknown option \(flag)")
            }
        }
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("sync-cost: \(message)\n".utf8))
    exit(1)
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// A blocking TCP connection to the server on loopback.
final class Connection: @unchecked Sendable {
    let fd: Int32
    private var buffer: [UInt8] = []

    init(port: Int) {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if result != 0 { fail("cannot connect to port \(port)") }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { close(fd) }

    func send(_ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { fail("the server closed the connection") }
            bytes = bytes.dropFirst(n)
        }
    }

    func readLine() -> String {
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = recv(fd, &chunk, chunk.count, 0)
            if n <= 0 { fail("the server closed the connection") }
            buffer += chunk[..<n]
        }
    }

    func request(_ text: String) -> String {
        send(text)
        return readLine()
    }
}

struct Result {
    var messages = 0
    var latencies: [Double] = []
    var seconds = 0.0
    var fsyncLine = ""

    var perSecond: Double { Double(messages) / seconds }

    func percentile(_ p: Double) -> Double {
        let sorted = latencies.sorted()
        guard !sorted.isEmpty else { return 0 }
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] * 1000
    }
}

/// The clients' results, gathered from their threads.
final class Totals: @unchecked Sendable {
    private let lock = NSLock()
    private var sum = Result()

    func add(_ part: Result) {
        lock.withLock {
            sum.messages += part.messages
            sum.latencies += part.latencies
        }
    }

    var result: Result { lock.withLock { sum } }
}

let options = Options(Array(CommandLine.arguments.dropFirst()))
let users = (1...(options.clientCounts.max() ?? 1)).map { "bench\($0)" }

/// A bare `write` + `fsync` of a log-sized line, in a loop: what one durable write costs on this disk.
func bareFsync(seconds: Double) -> Result {
    let path = options.directory + "/bare-fsync.txt"
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0o644)
    defer { close(fd); unlink(path) }
    var result = Result()
    let line = Array("1; 1 Jun 2022 21:30:04; bench1; a message of about the usual length\n".utf8)
    let start = now()
    while now() - start < seconds {
        let t0 = now()
        _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        fsync(fd)
        result.latencies.append(now() - t0)
        result.messages += 1
    }
    result.seconds = now() - start
    return result
}

func run(clients: Int, sync: Bool) -> Result {
    let data = options.directory + "/data-\(clients)-\(sync ? "sync" : "plain")"
    try? FileManager.default.removeItem(atPath: data)
    try! FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
    try! users.map { "\($0) pw\n" }.joined().write(toFile: data + "/credentials.txt", atomically: true, encoding: .utf8)
    let server = Process()
    server.executableURL = URL(fileURLWithPath: options.toom)
    server.arguments = ["server", "0", "3", "--host", "127.0.0.1", "--data-dir", data] + (sync ? ["--sync"] : [])
    _ = FileManager.default.createFile(atPath: data + "/out.txt", contents: nil)
    _ = FileManager.default.createFile(atPath: data + "/err.txt", contents: nil)
    server.standardOutput = FileHandle(forWritingAtPath: data + "/out.txt")!
    server.standardError = FileHandle(forWritingAtPath: data + "/err.txt")!
    do { try server.run() } catch { fail("cannot run \(options.toom): \(error)") }
    var port = 0
    let deadline = now() + 20
    while port == 0 {
        let out = (try? String(contentsOfFile: data + "/out.txt", encoding: .utf8)) ?? ""
        if let first = out.split(separator: "\n").first, first.hasPrefix("Server listening") {
            port = Int(first.split(separator: " ").last!)!
        } else if now() > deadline || !server.isRunning {
            fail("the server did not start: " + ((try? String(contentsOfFile: data + "/err.txt", encoding: .utf8)) ?? ""))
        } else {
            usleep(10_000)
        }
    }

    let connections = users.prefix(clients).map { user -> Connection in
        let connection = Connection(port: port)
        _ = connection.request("HELLO\t1\tsync-cost\n")
        _ = connection.request("USER\t\(user)\n")
        guard connection.request("PASS\tpw\t9\n").hasPrefix("OK\tLOGIN") else { fail("login refused") }
        return connection
    }
    let total = Totals()
    let group = DispatchGroup()
    let start = now()
    for connection in connections {
        group.enter()
        Thread {
            var mine = Result()
            while now() - start < options.seconds {
                let t0 = now()
                guard connection.request("BCM\ta message of about the usual length\n").hasPrefix("OK\tBCM") else { fail("BCM refused") }
                mine.latencies.append(now() - t0)
                mine.messages += 1
            }
            total.add(mine)
            group.leave()
        }.start()
    }
    group.wait()
    var result = total.result
    result.seconds = now() - start
    server.terminate()
    server.waitUntilExit()
    let err = (try? String(contentsOfFile: data + "/err.txt", encoding: .utf8)) ?? ""
    result.fsyncLine = err.split(separator: "\n").first { $0.hasPrefix("--sync:") }.map(String.init) ?? ""
    try? FileManager.default.removeItem(atPath: data)
    return result
}

try! FileManager.default.createDirectory(atPath: options.directory, withIntermediateDirectories: true)
func row(_ name: String, _ result: Result, reference: Double) {
    let cells = [name.padding(toLength: 30, withPad: " ", startingAt: 0),
                 String(format: "%10.0f", result.perSecond),
                 String(format: "%8.3f", result.percentile(0.5)),
                 String(format: "%8.3f", result.percentile(0.99)),
                 String(format: "%8.3f", result.percentile(0.999)),
                 String(format: "%8.2f", result.perSecond / reference)]
    print(cells.joined(separator: " ") + (result.fsyncLine.isEmpty ? "" : "   " + result.fsyncLine))
}
print("scenario                          msgs/s  p50 ms   p99 ms  p99.9 ms  × bare fsync/s")
let bare = bareFsync(seconds: options.seconds)
row("bare write+fsync (reference)", bare, reference: bare.perSecond)
for clients in options.clientCounts {
    for sync in [false, true] {
        row("BCM, \(clients) client\(clients == 1 ? "" : "s")\(sync ? ", --sync" : "")", run(clients: clients, sync: sync), reference: bare.perSecond)
    }
}
