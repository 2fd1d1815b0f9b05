import Foundation

/// What a program run to completion printed.
struct Completed {
    let status: Int32
    let out: String
    let err: String
}

/// Runs a program to completion with posix_spawn and waitpid, reading its standard output
/// and error to their end (so nothing it wrote is missed), or dropping them. Standard
/// input is /dev/null. Nothing else of the test process leaks into the child, neither file
/// descriptors nor blocked signals: a daemon it starts (tmux) would otherwise hold other
/// tests' pipes open for good.
func spawnAndWait(_ arguments: [String], capture: Bool) throws -> Completed {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    var out: [Int32] = [-1, -1], err: [Int32] = [-1, -1]
    if capture {
        for i in 0..<2 {
            var fds: [Int32] = [-1, -1]
            guard pipe(&fds) == 0 else { throw HarnessError(description: "pipe: \(String(cString: strerror(errno)))") }
            fds.forEach { _ = fcntl($0, F_SETFD, FD_CLOEXEC) }
            if i == 0 { out = fds } else { err = fds }
        }
        posix_spawn_file_actions_adddup2(&actions, out[1], 1)
        posix_spawn_file_actions_adddup2(&actions, err[1], 2)
    } else {
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    }
    guard let closeFrom = addCloseFrom else { throw HarnessError(description: "posix_spawn_file_actions_addclosefrom_np is missing") }
    _ = closeFrom(&actions, 3)
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    // The calling thread (a Dispatch worker) blocks most signals, and a child inherits that:
    // a tmux server would then never learn that its panes ended, nor stop on kill-server.
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var none = sigset_t(), all = sigset_t()
    sigemptyset(&none)
    sigfillset(&all)
    posix_spawnattr_setsigmask(&attributes, &none)
    posix_spawnattr_setsigdefault(&attributes, &all)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    let argv = arguments.map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid = pid_t()
    let spawned = posix_spawnp(&pid, arguments[0], &actions, &attributes, argv, environ)
    if capture {
        close(out[1])
        close(err[1])
    }
    guard spawned == 0 else {
        if capture { close(out[0]); close(err[0]) }
        throw HarnessError(description: "cannot run \(arguments[0]): \(String(cString: strerror(spawned)))")
    }
    var collected: [[UInt8]] = [[], []]
    if capture {
        var fds = [pollfd(fd: out[0], events: Int16(POLLIN), revents: 0), pollfd(fd: err[0], events: Int16(POLLIN), revents: 0)]
        var buffer = [UInt8](repeating: 0, count: 65536)
        while fds.contains(where: { $0.fd >= 0 }) {
            if poll(&fds, 2, -1) < 0 {
                if errno == EINTR { continue }
                break
            }
            for i in 0..<2 where fds[i].fd >= 0 && fds[i].revents != 0 {
                let n = read(fds[i].fd, &buffer, buffer.count)
                if n > 0 {
                    collected[i] += buffer[..<n]
                } else if n == 0 || errno != EINTR {
                    close(fds[i].fd)
                    fds[i].fd = -1
                }
            }
        }
    }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let exited = status & 0x7F == 0
    return Completed(status: exited ? (status >> 8) & 0xFF : 128 + (status & 0x7F),
                     out: String(decoding: collected[0], as: UTF8.self),
                     err: String(decoding: collected[1], as: UTF8.self))
}

/// Runs `toom` to completion.
func runToom(_ arguments: [String]) async throws -> Completed {
    // A blocking wait: off the cooperative pool's threads.
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            continuation.resume(with: Result { try spawnAndWait([ToomBinary.path] + arguments, capture: true) })
        }
    }
}

private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
/// glibc 2.34's posix_spawn_file_actions_addclosefrom_np, which Swift's Glibc module does not declare.
private let addCloseFrom: AddCloseFrom? = dlsym(dlopen(nil, RTLD_NOW), "posix_spawn_file_actions_addclosefrom_np")
    .map { unsafeBitCast($0, to: AddCloseFrom.self) }
