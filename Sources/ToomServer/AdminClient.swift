import Foundation
import NIOCore
import NIOExtras
import NIOPosix
import ToomCore

/// The other end of the admin channel, for `toom admin`: checks that the socket is the
/// caller's own and private before using it, sends one request, reads the reply.
public enum AdminClient {
    public enum Failure: Error, Equatable {
        /// Nothing answers: no server runs with this data directory (exit status 2).
        case noServer(String)
        /// The request, or the socket, was refused (exit status 1).
        case refused(String)
    }

    public static func send(_ command: OperatorCommand, dataDirectory: String,
                            timeout: TimeAmount = .seconds(10)) async -> Result<(report: OperatorReport, reply: OperatorReply), Failure> {
        guard let request = AdminFrame.request(command) else { return .failure(.refused("\(command) is a console command")) }
        let path = AdminChannel.socketPath(dataDirectory: dataDirectory)
        if let problem = checkSocket(path, dataDirectory: dataDirectory) { return .failure(problem) }
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(unixDomainSocketPath: path) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            ByteToMessageHandler(LineBasedFrameDecoder(), maximumBufferSize: Wire.maxFrameBytes))
                        return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            if let error = error as? IOError, error.errnoCode == EACCES || error.errnoCode == EPERM {
                return .failure(.refused("Permission denied: cannot connect to \(path)"))
            }
            return .failure(.noServer("No toom server is running in \(dataDirectory) (\(path) does not answer)"))
        }
        let frames: [[Substring]]?
        do {
            frames = try await withThrowingTaskGroup(of: [[Substring]]?.self) { group in
                group.addTask {
                    try await channel.executeThenClose { inbound, outbound in
                        try await outbound.write(ByteBuffer(string: Wire.encode(request)))
                        var frames: [[Substring]] = []
                        for try await line in inbound {
                            frames.append(Wire.fields(String(decoding: line.readableBytesView, as: UTF8.self)[...]))
                        }
                        return frames
                    }
                }
                group.addTask {
                    try await Task.sleep(nanoseconds: UInt64(timeout.nanoseconds))
                    return nil
                }
                let first = try await group.next() ?? nil
                group.cancelAll()
                channel.channel.close(promise: nil)
                return first
            }
        } catch {
            frames = []
        }
        guard let frames else {
            return .failure(.noServer("The toom server in \(dataDirectory) did not answer within \(timeout.nanoseconds / 1_000_000_000) seconds"))
        }
        guard let answer = AdminFrame.parseReply(frames) else {
            return .failure(.noServer("The toom server in \(dataDirectory) closed the connection without an answer"))
        }
        guard answer.reply.done else {
            return .failure(.refused(answer.reply.lines.joined(separator: "; ")))
        }
        return .success(answer)
    }

    /// The socket must be a socket, owned by the caller, and mode 0600.
    static func checkSocket(_ path: String, dataDirectory: String) -> Failure? {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT || errno == ENOTDIR {
                return .noServer("No toom server is running in \(dataDirectory) (no \(path))")
            }
            return .refused("Cannot use \(path): \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & S_IFMT == S_IFSOCK else {
            return .refused("Refusing to use \(path): it is not a socket")
        }
        guard info.st_uid == getuid() else {
            return .refused("Refusing to use \(path): it belongs to uid \(info.st_uid), not to you (uid \(getuid()))")
        }
        let mode = info.st_mode & 0o777
        guard mode == 0o600 else {
            return .refused("Refusing to use \(path): its mode is \(String(mode, radix: 8)), not 600 (only the server's owner may use it)")
        }
        return nil
    }
}
