import Foundation
import Crypto
import NIOCore
import NIOPosix
import ToomCore
import _CryptoExtras

/// Hashing and checking passwords (spec §9). scrypt, from swift-crypto's `_CryptoExtras`
/// (BoringSSL's), because it is memory-hard and ships with the crypto library toom already uses.
public enum PasswordCheck {
    /// N = 2^15, r = 8, p = 1: 32 MiB and tens of milliseconds per check. Stored in each line,
    /// so raising them later leaves older lines valid.
    public static let log2Rounds = 15
    public static let blockSize = 8
    public static let parallelism = 1
    static let saltBytes = 16
    static let hashBytes = 32

    /// A new salted hash of `password`, ready for a `credentials.txt` line (`.text`).
    public static func hash(_ password: String, log2Rounds: Int = log2Rounds, blockSize: Int = blockSize,
                            parallelism: Int = parallelism) throws -> ScryptHash {
        var generator = SystemRandomNumberGenerator()
        let salt = (0..<saltBytes).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let key = try derive(password, salt: salt, outputBytes: hashBytes, log2Rounds: log2Rounds,
                             blockSize: blockSize, parallelism: parallelism)
        return try ScryptHash(log2Rounds: log2Rounds, blockSize: blockSize, parallelism: parallelism, salt: salt, hash: key)
    }

    /// Whether `candidate` is the password, in time that does not depend on where they differ.
    /// Slow for a hash (that is the point): call it off the event loops (`PasswordVerifier`).
    public static func verify(_ candidate: String, against stored: StoredPassword) -> Bool {
        switch stored {
        case .plain(let password):
            // Digests first, so that neither the length nor the content shows in the timing.
            return equalInConstantTime(Array(SHA256.hash(data: Array(candidate.utf8))),
                                       Array(SHA256.hash(data: Array(password.utf8))))
        case .scrypt(let stored):
            guard let key = try? derive(candidate, salt: stored.salt, outputBytes: stored.hash.count,
                                        log2Rounds: stored.log2Rounds, blockSize: stored.blockSize,
                                        parallelism: stored.parallelism)
            else { return false }
            return equalInConstantTime(key, stored.hash)
        }
    }

    static func derive(_ password: String, salt: [UInt8], outputBytes: Int, log2Rounds: Int,
                               blockSize: Int, parallelism: Int) throws -> [UInt8] {
        let key = try KDF.Scrypt.deriveKey(from: Array(password.utf8), salt: salt, outputByteCount: outputBytes,
                                           rounds: 1 << log2Rounds, blockSize: blockSize, parallelism: parallelism)
        return key.withUnsafeBytes { Array($0) }
    }

    static func equalInConstantTime(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in a.indices { difference |= a[i] ^ b[i] }
        return difference == 0
    }
}

/// Checks passwords on threads of its own, below the event loops' priority, so a burst of
/// logins never delays other users' messages. A plaintext line is checked at once (it is cheap).
public final class PasswordVerifier: Sendable {
    private let pool: NIOThreadPool

    public init(threads: Int = System.coreCount) {
        pool = NIOThreadPool(numberOfThreads: max(1, threads))
        pool.start()
    }

    /// Completes on `eventLoop` with whether `candidate` matches.
    public func verify(_ candidate: String, against stored: StoredPassword, on eventLoop: EventLoop) -> EventLoopFuture<Bool> {
        if case .plain = stored { return eventLoop.makeSucceededFuture(PasswordCheck.verify(candidate, against: stored)) }
        return pool.runIfActive(eventLoop: eventLoop) {
            Self.lowerThreadPriority()
            return PasswordCheck.verify(candidate, against: stored)
        }
    }

    public func shutdown() async {
        try? await pool.shutdownGracefully()
    }

    private static func lowerThreadPriority() {
        #if os(Linux)
        // On Linux `who` 0 is the calling thread only; nice 10 leaves the event loops ahead.
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)
        #endif
    }
}
