import Foundation
import Subprocess
#if canImport(System)
import System
#else
import SystemPackage
#endif

// The one way tests and toom-bench run programs, on swift-subprocess. It spawns with
// posix_spawn, closes every inherited descriptor above 2 (closefrom) and gives the child
// an empty signal mask with default handlers. Both matter for tmux: a tmux server that
// inherited another test's pipe would hold it open for good, and one started from a
// Dispatch thread (which blocks most signals) could neither reap its panes nor stop.
//
// Everything swift-subprocess does here runs on `processExecutor`, threads of its own, not
// on the cooperative pool (nor on Dispatch's threads, which the pool shares): tests block
// pool threads in plain socket reads, and meanwhile a server whose output nobody drains
// stops answering them, and a child nobody reaps looks alive.

/// What a program run to completion printed.
public struct Completed: Sendable {
    public let status: Int32
    public let out: String
    public let err: String
}

/// Put before a command that builds or fuzzes in a test: at a low priority it takes mostly
/// what the other tests leave, and cannot starve their servers past a timeout. Not the
/// lowest (19): beside two busy loops a nice-19 process gets about 1% of a core, and the
/// fuzz smoke test then took more than ten minutes for 50 s of work.
public let lowPriority = ["nice", "-n", "10"]

/// Runs a program to completion. `arguments[0]` is a path or a name looked up in PATH.
/// Standard input is /dev/null. Without `capture`, output goes to /dev/null: a daemon the
/// program leaves behind (a tmux server) must not hold a pipe that is read to its end.
public func run(_ arguments: [String], directory: URL? = nil, environment: [String: String]? = nil,
                capture: Bool = true) async throws -> Completed {
    try await Task(executorPreference: processExecutor) {
        try await runHere(arguments, directory: directory, environment: environment, capture: capture)
    }.value
}

private func runHere(_ arguments: [String], directory: URL?, environment: [String: String]?,
                     capture: Bool) async throws -> Completed {
    let (executable, rest, directory, environment) = configuration(arguments, directory, environment)
    if capture {
        let result = try await Subprocess.run(executable, arguments: rest, environment: environment,
                                              workingDirectory: directory, output: .bytes(limit: 1 << 30),
                                              error: .bytes(limit: 1 << 30))
        return Completed(status: code(result.terminationStatus),
                         out: String(decoding: result.standardOutput, as: UTF8.self),
                         err: String(decoding: result.standardError, as: UTF8.self))
    }
    let result = try await Subprocess.run(executable, arguments: rest, environment: environment,
                                          workingDirectory: directory, output: .discarded, error: .discarded)
    return Completed(status: code(result.terminationStatus), out: "", err: "")
}

/// `run` for callers that cannot await (setting up a network namespace, a `defer`): blocks
/// the calling thread until the program ends. Returns the status and standard output and
/// error together. It uses Foundation's `Process`, which needs no Swift concurrency thread:
/// a blocking wait for work that needs the cooperative pool deadlocks once every pool
/// thread (two, on a two-core machine) is blocked in such a wait. Only for short commands
/// that exit by themselves (`ip`, `nft`, `sh -c`), never for a daemon (see `run`).
public func runCapturing(_ executable: String, _ arguments: [String], directory: URL? = nil,
                         environment: [String: String]? = nil) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = directory }
    if let environment { process.environment = environment }
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// A program that runs while a test or benchmark talks to it: its standard input is a pipe
/// the caller writes to, and everything it writes to standard output and error is kept.
/// It starts at once, in the background; a program that cannot start ends with status 127
/// and the reason on `stderr`. Dropping the last reference kills it.
public final class ChildProcess: Sendable {
    public let arguments: [String]
    private let state: ChildState
    private let input: AsyncStream<[UInt8]?>.Continuation

    public init(_ arguments: [String], directory: URL? = nil, environment: [String: String]? = nil) {
        precondition(!arguments.isEmpty, "a program to run")
        self.arguments = arguments
        let state = ChildState()
        self.state = state
        let (stream, continuation) = AsyncStream<[UInt8]?>.makeStream()
        input = continuation
        // The task holds the state, not this object, so dropping the object kills the child.
        Task(executorPreference: processExecutor) { await state.run(arguments, directory, environment, input: stream) }
    }

    deinit {
        state.kill(SIGKILL)
        input.finish()
    }

    /// The process id, once it has started.
    public var processIdentifier: pid_t? { state.locked { $0.pid } }
    public var isRunning: Bool { state.exitStatus() == nil }
    /// The exit status (128 + the signal for a signal), once it has ended.
    public var terminationStatus: Int32? { state.exitStatus() }

    public var stdout: [UInt8] { state.locked { $0.out } }
    public var stderr: [UInt8] { state.locked { $0.err } }
    /// Both, under one lock, for a consistent view.
    public func output<Result>(_ body: (_ out: [UInt8], _ err: [UInt8]) -> Result) -> Result {
        state.locked { body($0.out, $0.err) }
    }

    public func write(_ bytes: [UInt8]) { input.yield(bytes) }
    /// End of input for the program.
    public func closeInput() { input.yield(nil) }

    /// Sends a signal (at once, or as soon as the process has started).
    public func signal(_ signal: Int32) { state.kill(signal) }

    /// Waits until the program has ended and all its output is read; returns the status.
    public func waitForExit(timeout: Duration = patience) async throws -> Int32 {
        try await eventually("\(arguments.joined(separator: " ")) to exit", timeout: timeout) { !isRunning }
        return terminationStatus!
    }
}

private final class ChildState: @unchecked Sendable {
    struct Values {
        var pid: pid_t?
        var status: Int32?
        var out: [UInt8] = []
        var err: [UInt8] = []
        var pendingSignals: [Int32] = []
        /// Both output pipes have been read to their end.
        var outputDone = false
    }

    private let lock = NSLock()
    private var values = Values()

    func locked<Result>(_ body: (inout Values) -> Result) -> Result { lock.withLock { body(&values) } }

    /// The status once the child has ended and its output is read. swift-subprocess reports
    /// the end only after some of its work ran on the cooperative pool, which tests can keep
    /// busy for long, so the child is also asked directly, without reaping it.
    func exitStatus() -> Int32? {
        locked { values in
            if let status = values.status { return status }
            guard values.outputDone, let pid = values.pid else { return nil }
            var info = siginfo_t()
            guard waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0,
                  info._sifields._sigchld.si_pid == pid else { return nil }
            let code = info._sifields._sigchld.si_status
            values.status = info.si_code == CLD_EXITED ? code : 128 + code
            return values.status
        }
    }

    func kill(_ signal: Int32) {
        locked { values in
            guard values.status == nil else { return }
            if let pid = values.pid { _ = Foundation.kill(pid, signal) } else { values.pendingSignals.append(signal) }
        }
    }

    func run(_ arguments: [String], _ directory: URL?, _ environment: [String: String]?,
             input: AsyncStream<[UInt8]?>) async {
        let (executable, rest, directory, environment) = configuration(arguments, directory, environment)
        do {
            let result = try await Subprocess.run(executable, arguments: rest, environment: environment,
                                                  workingDirectory: directory, input: .inputWriter,
                                                  output: .sequence, error: .sequence) { execution in
                let pid = execution.processIdentifier.value
                locked { values in
                    values.pid = pid
                    for signal in values.pendingSignals { _ = Foundation.kill(pid, signal) }
                    values.pendingSignals = []
                }
                let writer = execution.standardInputWriter
                let feeding = Task(executorPreference: processExecutor) {
                    for await chunk in input {
                        guard let chunk else { break }
                        _ = try? await writer.write(chunk)
                    }
                    try? await writer.finish()
                }
                async let out: Void = collect(execution.standardOutput, \.out)
                async let err: Void = collect(execution.standardError, \.err)
                _ = await (out, err)
                locked { $0.outputDone = true }
                // Both pipes closed: the program is gone, and nothing more can be written.
                feeding.cancel()
            }
            let status = code(result.terminationStatus)
            locked { $0.status = $0.status ?? status }
        } catch {
            locked { values in
                values.err += Array("cannot run \(arguments[0]): \(error)\n".utf8)
                values.status = 127
            }
        }
    }

    private func collect(_ sequence: SubprocessOutputSequence, _ field: WritableKeyPath<Values, [UInt8]>) async {
        do {
            for try await buffer in sequence {
                let bytes = buffer.withUnsafeBytes { Array($0) }
                locked { $0[keyPath: field] += bytes }
            }
        } catch {}
    }
}

private func configuration(_ arguments: [String], _ directory: URL?, _ environment: [String: String]?)
    -> (Executable, Arguments, FilePath?, Environment) {
    let executable: Executable = arguments[0].contains("/") ? .path(FilePath(arguments[0])) : .name(arguments[0])
    let env: Environment = environment.map { variables in
        .custom(Dictionary(uniqueKeysWithValues: variables.map { (Environment.Key(stringLiteral: $0.key), $0.value) }))
    } ?? .inherit
    return (executable, Arguments(Array(arguments.dropFirst())), directory.map { FilePath($0.path) }, env)
}

private func code(_ status: TerminationStatus) -> Int32 {
    switch status {
    case .exited(let code): return code
    case .signaled(let signal): return 128 + signal
    }
}

/// Runs tasks on a few threads of its own. The jobs are short (swift-subprocess waits with
/// epoll on a thread of its own), so a few threads serve any number of children.
private final class ThreadTaskExecutor: TaskExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []

    init(threads: Int) {
        for _ in 0..<threads { Thread.detachNewThread { [self] in work() } }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.withLock {
            jobs.append(job)
            condition.signal()
        }
    }

    private func work() {
        while true {
            let job = condition.withLock {
                while jobs.isEmpty { condition.wait() }
                return jobs.removeFirst()
            }
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}

private let processExecutor = ThreadTaskExecutor(threads: 4)
