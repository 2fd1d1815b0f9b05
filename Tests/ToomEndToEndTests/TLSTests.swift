import Foundation
import Testing
import ToomCore
import ToomTestSupport

/// Spec §9: TLS on the server's one port beside plaintext, trust on first use in the
/// client, pinning, --require-tls, --plaintext; all with the real binaries on loopback.
@Suite struct TLSTests {
    @Test func clientUsesTLSAndTrustsOnFirstUse() async throws {
        let server = try await TestServer()
        let fingerprint = try await server.fingerprint()
        let hans = try await server.login("hans")
        // The notice names the server and the fingerprint the server printed, on stderr only.
        try await eventually("the first-use notice") { hans.stderr.contains("First connection to 127.0.0.1:\(server.port)") }
        #expect(hans.stderr.contains(fingerprint))
        #expect(!hans.stdout.contains("SHA256:"))
        let known = try String(contentsOf: hans.knownServers, encoding: .utf8)
        #expect(known == "127.0.0.1:\(server.port) \(fingerprint)\n")
        #expect(try mode(of: hans.knownServers) == 0o600)
        #expect(try mode(of: hans.knownServers.deletingLastPathComponent()) == 0o700)
        #expect(try await hans.command("BCM over TLS").first?.hasPrefix("Broadcast message, #1 broadcast at") == true)
        hans.send("OUT")
        #expect(try await hans.waitForExit() == 0)

        // Later connections check silently.
        let again = try ToomProcess(["client", "127.0.0.1", String(server.port), "0"], in: hans.directory)
        again.send("hans")
        again.send(passwords["hans"]!)
        try await again.expect(Messages.welcome)
        again.closeInput()
        #expect(try await again.waitForExit() == 0)
        #expect(again.stderr.isEmpty, "\(again.stderr)")
    }

    @Test func changedCertificateStopsTheClientBeforeItSendsAnything() async throws {
        let server = try await TestServer()
        let old = try await server.fingerprint()
        let hans = try await server.login("hans")
        hans.send("OUT")
        #expect(try await hans.waitForExit() == 0)

        // The operator (or an attacker) presents another certificate on the same address.
        #expect(try await server.stop() == 0)
        for file in ["tls-cert.pem", "tls-key.pem"] { try FileManager.default.removeItem(at: server.data.appendingPathComponent(file)) }
        try await server.restart()
        let new = try await server.fingerprint()
        #expect(new != old)

        let client = try ToomProcess(["client", "127.0.0.1", String(server.port), "0"], in: hans.directory)
        client.send("hans")
        client.send(passwords["hans"]!)
        #expect(try await client.waitForExit() == 5)
        #expect(client.stderr.contains("fingerprint"))
        #expect(client.stderr.contains(old) && client.stderr.contains(new))
        #expect(client.stderr.contains(hans.knownServers.path))
        // Stopped before the login dialogue: no prompt, and the server saw no login.
        #expect(!client.stdout.contains(Messages.usernamePrompt))
        #expect(!server.process.stdout.contains("hans login"))
        #expect(try String(contentsOf: hans.knownServers, encoding: .utf8).contains(old))
    }

    @Test func pinnedFingerprint() async throws {
        let server = try await TestServer()
        let fingerprint = try await server.fingerprint()
        let pinned = try await server.login("hans", extra: ["--fingerprint", fingerprint])
        #expect(pinned.stderr.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: pinned.knownServers.path))

        let wrong = "SHA256:" + String(repeating: "A", count: 42) + "E"
        let client = try server.client(extra: ["--fingerprint", wrong])
        #expect(try await client.waitForExit() == 5)
        #expect(client.stderr.contains("fingerprint") && client.stderr.contains(wrong) && client.stderr.contains(fingerprint))
        #expect(!client.stdout.contains(Messages.usernamePrompt))

        let malformed = try server.client(extra: ["--fingerprint", "SHA256:nope"])
        #expect(try await malformed.waitForExit() != 0)
        #expect(malformed.stderr.contains("Invalid fingerprint"))
    }

    @Test func plaintextClientStillWorks() async throws {
        let server = try await TestServer()
        let client = try await server.login("yoda", extra: ["--plaintext"])
        #expect(try await client.command("BCM in the clear").first?.hasPrefix("Broadcast message, #1") == true)
        #expect(client.stderr.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: client.knownServers.path))
        // A v1 peer speaking the wire protocol by hand, too.
        let raw = try RawConnection(port: server.port)
        raw.send("HELLO\t1\traw\n")
        #expect(raw.readLine() == "HELLO\t1")
    }

    @Test func requireTLSRefusesPlaintextWithOneLine() async throws {
        let server = try await TestServer(extra: ["--require-tls"])
        try await server.process.expect("(plaintext refused)")
        let raw = try RawConnection(port: server.port)
        raw.send("HELLO\t1\traw\n")
        #expect(raw.readLine() == "ERR\ttls_required\tThis server accepts only TLS connections. Please connect without --plaintext")
        #expect(await raw.isClosedByServer())

        let plain = try server.client(extra: ["--plaintext"])
        #expect(try await plain.waitForExit() == 1)
        #expect(plain.stdout.contains("This server accepts only TLS connections"))

        _ = try await server.login("yoda")
    }

    @Test func stalledHandshakeCostsOnlyItsConnection() async throws {
        // The first bytes of a TLS record, then nothing: closed at the 10 s handshake timeout.
        // The login timeout is far longer than the tests wait, so only the handshake's can
        // have closed them.
        let server = try await TestServer(extra: ["--login-timeout", "3600"])
        let stalled = try RawConnection(port: server.port)
        stalled.send([0x16, 0x03, 0x01])
        let garbage = try RawConnection(port: server.port)
        garbage.send([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5])
        _ = try await server.login("yoda")
        #expect(await garbage.isClosedByServer())
        #expect(await stalled.isClosedByServer())
    }

    @Test func silentServerEndsTheHandshakeWithAHint() async throws {
        // A listening socket that never answers, as a server without TLS waiting for a newline.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && listen(fd, 4) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        #expect(bound)
        let directory = try TemporaryDirectory()
        let client = try ToomProcess(["client", "127.0.0.1", String(UInt16(bigEndian: address.sin_port)), "0"], in: directory.url)
        #expect(try await client.waitForExit(timeout: .seconds(10) + patience) == 3)
        #expect(client.stderr.contains("no TLS answer within 10 seconds") && client.stderr.contains("--plaintext"), "\(client.stderr)")
    }

    static let openssl = ["/usr/bin/openssl", "/usr/local/bin/openssl"].first(where: FileManager.default.isExecutableFile)
    static let tcpdump = ["/usr/bin/tcpdump", "/usr/sbin/tcpdump"].first(where: FileManager.default.isExecutableFile)

    @Test(.enabled(if: openssl != nil, "openssl is not installed"))
    func opensslSClientTalksToTheServer() async throws {
        let openssl = try #require(Self.openssl)
        let server = try await TestServer()
        let fingerprint = try await server.fingerprint()
        let session = try await run(["/bin/sh", "-c", """
            printf 'HELLO\\t1\\topenssl\\nUSER\\thans\\nPASS\\tfalcon*solo\\t9\\nOUT\\n' | \(openssl) s_client -connect 127.0.0.1:\(server.port) -quiet -ign_eof 2>/dev/null
            """])
        let (status, output) = (session.status, session.out)
        #expect(status == 0, "\(output)")
        // The whole session, to the server's goodbye that ends it.
        #expect(output == "HELLO\t1\nOK\tUSER\nOK\tLOGIN\thans\nOK\tOUT\thans\n", "\(output)")
        // openssl's view of the certificate gives the fingerprint the server printed.
        let digest = try await run(["/bin/sh", "-c", """
            \(openssl) s_client -connect 127.0.0.1:\(server.port) </dev/null 2>/dev/null | \(openssl) x509 -outform DER | \
            \(openssl) dgst -sha256 -binary | \(openssl) base64 -A | tr -d =
            """]).out
        #expect("SHA256:" + digest.trimmingCharacters(in: .whitespacesAndNewlines) == fingerprint)
    }

    @Test(.enabled(if: getuid() == 0, "capturing on loopback needs root"),
          .enabled(if: tcpdump != nil, "tcpdump is not installed (Debian package tcpdump)"))
    func captureShowsNoPasswordAndNoMessageWithTLS() async throws {
        let tcpdump = try #require(Self.tcpdump)
        let server = try await TestServer()
        let message = "the plans are in R2 unit \(UUID().uuidString)"
        func captured(_ extra: [String]) async throws -> Data {
            let file = server.root.url.appendingPathComponent("capture-\(UUID().uuidString).pcap")
            let capture = ChildProcess([tcpdump, "-i", "lo", "-U", "-n", "-s", "0", "-w", file.path, "tcp port \(server.port)"])
            try await eventually("tcpdump to start listening") { String(decoding: capture.stderr, as: UTF8.self).contains("listening on") }
            let client = try await server.login("hans", extra: extra)
            _ = try await client.command("BCM " + message)
            client.send("OUT")
            #expect(try await client.waitForExit() == 0)
            // Stopped once a marker sent after the session is in the file (-U: packet by
            // packet, in order).
            let marker = "end of capture \(UUID().uuidString)"
            let last = try RawConnection(port: server.port)
            last.send(marker + "\n")
            try await eventually("the marker in the capture") {
                (try? Data(contentsOf: file))?.range(of: Data(marker.utf8)) != nil
            }
            capture.signal(SIGKILL)
            _ = try await capture.waitForExit()
            return try Data(contentsOf: file)
        }
        let secret = Data(passwords["hans"]!.utf8)
        let plain = try await captured(["--plaintext"])
        // The capture works: in the clear, both are there.
        #expect(plain.range(of: secret) != nil && plain.range(of: Data(message.utf8)) != nil)
        let tls = try await captured([])
        #expect(tls.count > 1000)
        #expect(tls.range(of: secret) == nil)
        #expect(tls.range(of: Data(message.utf8)) == nil)
        #expect(tls.range(of: Data("R2 unit".utf8)) == nil)
    }

    private func mode(of url: URL) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: url.path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }
}

extension TestServer {
    /// The fingerprint from the server's start-up line `TLS certificate fingerprint SHA256:...`.
    func fingerprint() async throws -> String {
        var line = ""
        try await eventually("the fingerprint line") {
            let lines = process.stdout.split(separator: "\n")
            guard let found = lines.last(where: { $0.hasPrefix("TLS certificate fingerprint SHA256:") }) else { return false }
            line = String(found)
            return true
        }
        return String(line.split(separator: " ")[3])
    }
}
