#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization
import ToomCore

/// Reads standard input line by line with no editing: for a terminal without libedit.
/// The terminal echoes what is typed; output from other threads is written as it comes.
public final class PlainLineReader: LineReader {
    private struct State {
        var pending: [UInt8] = []
        var atEnd = false
    }
    private let state = Mutex(State())
    private let wakeRead: Int32
    private let wakeWrite: Int32

    public init() {
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) != 0 { fds = [-1, -1] }
        wakeRead = fds[0]
        wakeWrite = fds[1]
    }

    public func read(prompt: String) -> LineRead {
        write(prompt, fd: 1)
        return state.withLock { state in
            while true {
                if let newline = state.pending.firstIndex(of: 0x0A) {
                    var line = Array(state.pending[..<newline])
                    state.pending.removeSubrange(...newline)
                    if line.last == 0x0D { line.removeLast() }
                    return .line(String(decoding: line, as: UTF8.self))
                }
                if state.atEnd {
                    guard !state.pending.isEmpty else { return .end }
                    defer { state.pending.removeAll() }
                    return .line(String(decoding: state.pending, as: UTF8.self))
                }
                var fds = [pollfd(fd: 0, events: Int16(POLLIN), revents: 0),
                           pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
                if poll(&fds, 2, -1) < 0 {
                    if errno == EINTR { continue }
                    return .end
                }
                if fds[1].revents != 0 { return .stopped }
                var buffer = [UInt8](repeating: 0, count: 4096)
                let n = systemRead(0, &buffer, buffer.count)
                if n > 0 {
                    state.pending.append(contentsOf: buffer[..<n])
                } else if n == 0 || (errno != EINTR && errno != EAGAIN) {
                    state.atEnd = true
                }
            }
        }
    }

    public func readSecret(prompt: String) -> LineRead {
        var saved = termios()
        let hide = tcgetattr(0, &saved) == 0
        if hide {
            var quiet = saved
            quiet.c_lflag &= ~tcflag_t(ECHO)
            tcsetattr(0, TCSADRAIN, &quiet)
        }
        let result = read(prompt: prompt)
        if hide {
            tcsetattr(0, TCSADRAIN, &saved)
            write("\n", fd: 1)
        }
        return result
    }

    public func printAbove(_ text: String, fd: Int32) { write(text, fd: fd) }
    public func addHistory(_ line: String) {}

    public func stop() {
        var byte: UInt8 = 0x78
        _ = systemWrite(wakeWrite, &byte, 1)
    }

    public func close() {}
    public func restoreForExit() {}

    private func write(_ text: String, fd: Int32) { RawOutput.write(fd, text) }
}

#if canImport(Glibc)
private let systemRead = Glibc.read
private let systemWrite = Glibc.write
#elseif canImport(Darwin)
private let systemRead = Darwin.read
private let systemWrite = Darwin.write
#endif
