import Foundation
import NIOCore
import NIOPosix
import Testing
import ToomCore
@testable import ToomSecurity

@Suite struct PasswordCheckTests {
    @Test func hashVerifiesOnlyItsPassword() throws {
        let hash = try PasswordCheck.hash("correct horse", log2Rounds: 4, blockSize: 8, parallelism: 1)
        #expect(hash.salt.count == 16 && hash.hash.count == 32)
        #expect(PasswordCheck.verify("correct horse", against: .scrypt(hash)))
        #expect(!PasswordCheck.verify("correct horse ", against: .scrypt(hash)))
        #expect(!PasswordCheck.verify("", against: .scrypt(hash)))
        // Salted: the same password hashes differently each time.
        #expect(try PasswordCheck.hash("correct horse", log2Rounds: 4).text != hash.text)
        // The line form parses back and still verifies.
        guard case .success(let parsed) = ScryptHash.parse(hash.text) else { Issue.record("no parse"); return }
        #expect(PasswordCheck.verify("correct horse", against: .scrypt(parsed)))
    }

    @Test func knownScryptVector() throws {
        // RFC 7914 §12, second vector: P = "password", S = "NaCl", N = 1024, r = 8, p = 16; first 32 bytes.
        let expected: [UInt8] = [0xfd, 0xba, 0xbe, 0x1c, 0x9d, 0x34, 0x72, 0x00, 0x78, 0x56, 0xe7, 0x19, 0x0d, 0x01, 0xe9, 0xfe,
                                 0x7c, 0x6a, 0xd7, 0xcb, 0xc8, 0x23, 0x78, 0x30, 0xe7, 0x73, 0x76, 0x63, 0x4b, 0x37, 0x31, 0x62]
        let key = try PasswordCheck.derive("password", salt: Array("NaCl".utf8), outputBytes: 64, log2Rounds: 10,
                                           blockSize: 8, parallelism: 16)
        #expect(Array(key.prefix(32)) == expected)
    }

    @Test func plaintextComparison() {
        #expect(PasswordCheck.verify("wise@!man", against: .plain("wise@!man")))
        #expect(!PasswordCheck.verify("wise@!ma", against: .plain("wise@!man")))
        #expect(!PasswordCheck.verify("wise@!man", against: .plain("Wise@!man")))
    }

    @Test func verifierAnswersOnTheCallersEventLoop() async throws {
        let verifier = PasswordVerifier(threads: 2)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let hash = try PasswordCheck.hash("pw", log2Rounds: 4)
        let right = verifier.verify("pw", against: .scrypt(hash), on: loop)
        let wrong = verifier.verify("px", against: .scrypt(hash), on: loop)
        #expect(right.eventLoop === loop)
        #expect(try await right.get())
        #expect(try await !wrong.get())
        #expect(try await verifier.verify("a", against: .plain("a"), on: loop).get())
        await verifier.shutdown()
        try await group.shutdownGracefully()
    }
}

@Suite struct FilesTests {
    private func scratch() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("toom-sec-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    private func mode(_ path: String) -> mode_t {
        var info = stat()
        stat(path, &info)
        return info.st_mode & 0o777
    }

    @Test func atomicWriteReplacesWithTheModeAndLeavesNoTemporaryFile() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try AtomicFile.write(dir + "/f", Array("one\n".utf8), mode: 0o600)
        try AtomicFile.write(dir + "/f", Array("two\n".utf8), mode: 0o640)
        #expect(try AtomicFile.read(dir + "/f") == Array("two\n".utf8))
        #expect(mode(dir + "/f") == 0o640)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["f"])
        #expect(try AtomicFile.read(dir + "/missing") == nil)
    }

    @Test func knownServersRemembersPerHostAndPort() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let known = KnownServers(path: dir + "/.toom/known_servers")
        let a = Fingerprint.of(der: [1]), b = Fingerprint.of(der: [2])
        #expect(try known.fingerprint(for: "h:1") == nil)
        try known.remember(a, for: "h:1")
        try known.remember(b, for: KnownServers.key(host: "::1", port: 1))
        try known.remember(b, for: "h:1")
        #expect(try known.fingerprint(for: "h:1") == b)
        #expect(try known.fingerprint(for: "[::1]:1") == b)
        #expect(try known.fingerprint(for: "h:2") == nil)
        #expect(mode(known.path) == 0o600)
        #expect(mode(dir + "/.toom") == 0o700)
        #expect(String(decoding: try AtomicFile.read(known.path)!, as: UTF8.self) == "[::1]:1 \(b)\nh:1 \(b)\n")
    }

    @Test func fingerprintForm() {
        let fingerprint = Fingerprint.of(der: Array("abc".utf8))
        // SHA-256("abc") = ba7816bf..., base64 without padding.
        #expect(fingerprint == "SHA256:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0")
        #expect(Fingerprint.isValid(fingerprint))
        #expect(!Fingerprint.isValid(fingerprint + "="))
        #expect(!Fingerprint.isValid("SHA256:abc"))
        #expect(!Fingerprint.isValid("MD5:" + fingerprint.dropFirst(7)))
    }

    @Test func serverCertificateIsCreatedOnceWithAPrivateKey() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var notices: [String] = []
        let first = try ServerTLS(dataDirectory: dir, notice: { notices.append($0) })
        #expect(notices.count == 1 && notices[0].contains("Created a self-signed TLS certificate"))
        #expect(mode(dir + "/tls-key.pem") == 0o600)
        #expect(Fingerprint.isValid(first.fingerprint))
        let second = try ServerTLS(dataDirectory: dir, notice: { notices.append($0) })
        #expect(second.fingerprint == first.fingerprint && notices.count == 1)

        // Interrupted between the two writes: the certificate is made again for the same key.
        let key = try AtomicFile.read(dir + "/tls-key.pem")
        try FileManager.default.removeItem(atPath: dir + "/tls-cert.pem")
        let third = try ServerTLS(dataDirectory: dir)
        #expect(try AtomicFile.read(dir + "/tls-key.pem") == key)
        #expect(third.fingerprint != first.fingerprint)

        // A certificate without its key is the operator's to sort out.
        try FileManager.default.removeItem(atPath: dir + "/tls-key.pem")
        #expect(throws: ServerTLS.SetupError.self) { try ServerTLS(dataDirectory: dir) }

        // A readable key is reported.
        let other = try scratch()
        defer { try? FileManager.default.removeItem(atPath: other) }
        _ = try ServerTLS(dataDirectory: other)
        chmod(other + "/tls-key.pem", 0o644)
        var warnings: [String] = []
        _ = try ServerTLS(dataDirectory: other, notice: { warnings.append($0) })
        #expect(warnings.contains { $0.contains("chmod 600") })
    }

    @Test func givenFilesThatAreNotPEMAreOneLineErrors() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Array("not a certificate".utf8).withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: dir + "/c")) }
        _ = try ServerTLS(dataDirectory: dir)
        do {
            _ = try ServerTLS(dataDirectory: dir, certificatePath: dir + "/c", keyPath: dir + "/tls-key.pem")
            Issue.record("accepted")
        } catch let error as ServerTLS.SetupError {
            #expect(error.description.contains("cannot read the TLS certificate") && !error.description.contains("\n"))
        }
        do {
            _ = try ServerTLS(dataDirectory: dir, certificatePath: dir + "/tls-cert.pem", keyPath: dir + "/c")
            Issue.record("accepted")
        } catch let error as ServerTLS.SetupError {
            #expect(error.description.contains("cannot read the TLS key"))
        }
    }
}
