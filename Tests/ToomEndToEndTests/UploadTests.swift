import Foundation
import ToomTestSupport
import Testing
import ToomCore
import ToomTestSupport
import ToomTransfer

/// UPD (spec §6) between real clients on real sockets: what arrives is compared byte for
/// byte with what was sent.
@Suite struct UploadTests {
    @Test func filesOfEverySizeArriveIntact() async throws {
        let server = try await TestServer()
        let hans = try await server.login("hans")
        let yoda = try await server.login("yoda")
        let window = TransferConfiguration().receiveWindowBytes
        let sizes = [("empty.bin", 0), ("one.bin", 1), ("window.bin", window), ("big.bin", 50 << 20)]
        for (name, size) in sizes {
            let sent = try randomFile(in: hans, name, size: size)
            // A small file may be uploaded before the prompt is back: the line comes either side of it.
            hans.send("UPD yoda \(name)")
            try await hans.expect(Messages.uploaded(name))
            try await yoda.expect(Messages.received(name, from: "hans"))
            #expect(try Data(contentsOf: yoda.directory.appendingPathComponent("hans_\(name)")) == sent, "\(name)")
        }
        #expect(try files(in: yoda).sorted() == sizes.map { "hans_\($0.0)" }.sorted())
        #expect(!hans.lines.contains { $0.contains("failed") || $0.contains("Error") }, "\(hans.lines)")
        #expect(hans.unexpectedStderr.isEmpty && yoda.unexpectedStderr.isEmpty)
    }

    @Test func threeTransfersAtOnceInBothDirections() async throws {
        let server = try await TestServer()
        let hans = try await server.login("hans")
        let yoda = try await server.login("yoda")
        let vader = try await server.login("vader")
        let a = try randomFile(in: hans, "a.bin", size: 6 << 20)
        let b = try randomFile(in: yoda, "b.bin", size: 6 << 20)
        let c = try randomFile(in: vader, "c.bin", size: 6 << 20)
        hans.send("UPD yoda a.bin")
        yoda.send("UDP hans b.bin")
        vader.send("UPD yoda c.bin")
        try await hans.expect(Messages.uploaded("a.bin"))
        try await yoda.expect(Messages.uploaded("b.bin"))
        try await vader.expect(Messages.uploaded("c.bin"))
        try await eventually("both files at yoda and one at hans") {
            yoda.lines.contains(Messages.received("a.bin", from: "hans"))
                && yoda.lines.contains(Messages.received("c.bin", from: "vader"))
                && hans.lines.contains(Messages.received("b.bin", from: "yoda"))
        }
        #expect(try Data(contentsOf: yoda.directory.appendingPathComponent("hans_a.bin")) == a)
        #expect(try Data(contentsOf: hans.directory.appendingPathComponent("yoda_b.bin")) == b)
        #expect(try Data(contentsOf: yoda.directory.appendingPathComponent("vader_c.bin")) == c)
    }

    /// The transfer is held up in a relay while both users keep typing: every reply comes,
    /// and the file still arrives once the relay lets it through.
    @Test func promptStaysUsableWhileATransferRuns() async throws {
        let pair = try await hansAndYodaBehindARelay(pauseAfter: 256 << 10, hans: Self.patient, yoda: Self.patient)
        let sent = try randomFile(in: pair.hans, "held.bin", size: 3 << 20)
        #expect(try await pair.hans.command("UPD yoda held.bin") == [])
        try await eventually("the transfer to start and be held") { pair.relay.paused }
        for n in 1...5 {
            let reply = try await pair.yoda.command("BCM typing \(n)")
            #expect(reply.count == 1 && reply[0].hasPrefix("Broadcast message, #"), "\(reply)")
            #expect(try await pair.yoda.command("ATU").first?.hasPrefix("hans, 127.0.0.1, ") == true)
        }
        #expect(try await pair.hans.command("RDM b 1 Jan 2020 00:00:00").count == 5)
        #expect(!pair.hans.lines.contains(Messages.uploaded("held.bin")))
        pair.relay.paused = false
        try await pair.hans.expect(Messages.uploaded("held.bin"))
        try await pair.yoda.expect(Messages.received("held.bin", from: "hans"))
        #expect(try Data(contentsOf: pair.yoda.directory.appendingPathComponent("hans_held.bin")) == sent)
    }

    @Test func reorderedAndDuplicatedDatagramsStillGiveTheFile() async throws {
        let pair = try await hansAndYodaBehindARelay(reorder: true, duplicate: true)
        // 256 datagrams of 64 KiB: the relay duplicates one in 20 at random, and 4 MiB (64 of
        // them) went through without a duplicate once in about 40 runs.
        let sent = try randomFile(in: pair.hans, "shuffled.bin", size: 16 << 20)
        pair.hans.send("UPD yoda shuffled.bin")
        try await pair.hans.expect(Messages.uploaded("shuffled.bin"))
        try await pair.yoda.expect(Messages.received("shuffled.bin", from: "hans"))
        #expect(try Data(contentsOf: pair.yoda.directory.appendingPathComponent("hans_shuffled.bin")) == sent)
        let counters = pair.relay.snapshot
        #expect(counters.reordered > 0 && counters.duplicated > 0, "\(counters)")
    }

    /// 10% of the datagrams to the audience's port are dropped by the kernel (nftables in a
    /// network namespace, where the server and both clients run).
    @Test(.enabled(if: NetworkNamespace.isAvailable, "needs root, ip and nft (Debian: iproute2, nftables)"))
    func tenPercentLossInANetworkNamespace() async throws {
        let audiencePort = 40000
        let namespace = try NetworkNamespace.lossy(dropping: 10, ofUDPTo: audiencePort)
        defer { namespace.remove() }
        let server = try await TestServer(launcher: namespace.launcher)
        let hans = try await server.login("hans")
        let yoda = try await server.login("yoda", udpPort: audiencePort)
        let sent = try randomFile(in: hans, "lossy.bin", size: 20 << 20)
        hans.send("UPD yoda lossy.bin")
        try await hans.expect(Messages.uploaded("lossy.bin"))
        try await yoda.expect(Messages.received("lossy.bin", from: "hans"))
        #expect(try Data(contentsOf: yoda.directory.appendingPathComponent("hans_lossy.bin")) == sent)
        #expect(try namespace.droppedPackets() > 0)
    }

    /// Datagrams of no announced transfer, or from the wrong address, are counted and
    /// dropped; every datagram of the real transfer also arrives altered and replayed (the
    /// relay tampers): nothing of that is written, and the fakes are counted.
    @Test func forgedAlteredAndReplayedDatagramsWriteNothing() async throws {
        let pair = try await hansAndYodaBehindARelay(tamper: true, pauseAfter: 64 << 10, hans: Self.patient, yoda: Self.patient)
        let yodaPort = pair.relay.targetPort

        // Not announced at all: a START and DATA sealed with a made-up key, noise.
        let stranger = TransferToken.random()
        try UDPRelay.send(forged(.start, id: stranger.id), toPort: yodaPort)
        try UDPRelay.send(forged(.data, id: stranger.id), toPort: yodaPort)
        try UDPRelay.send(Array("not a transfer datagram".utf8), toPort: yodaPort)

        // Announced, but the forger knows only what it overheard (the id), and sends from
        // another address while the real transfer is held in the relay.
        let sent = try randomFile(in: pair.hans, "real.bin", size: 3 << 20)
        #expect(try await pair.hans.command("UPD yoda real.bin") == [])
        try await eventually("the transfer to start and be held") { pair.relay.paused }
        let id = try #require(pair.relay.snapshot.starts.first)
        for kind in [TransferPacket.Kind.start, .data, .data, .finish] {
            try UDPRelay.send(forged(kind, id: id), toPort: yodaPort)
        }
        pair.relay.paused = false
        try await pair.hans.expect(Messages.uploaded("real.bin"))
        try await pair.yoda.expect(Messages.received("real.bin", from: "hans"))
        #expect(try Data(contentsOf: pair.yoda.directory.appendingPathComponent("hans_real.bin")) == sent)
        #expect(try files(in: pair.yoda) == ["hans_real.bin"])

        pair.yoda.send("OUT")
        let goodbye = try await pair.yoda.expect("Bye, yoda!")
        let lines = goodbye.split(separator: "\n")
        let ignored = try #require(lines.first { $0.hasPrefix("Ignored ") })
        let count = try #require(Int(ignored.split(separator: " ")[1]))
        #expect(count >= 7 && ignored.hasSuffix("datagrams on UDP port \(yodaPort) that belonged to no announced transfer"),
                "\(ignored)")
        let dropped = try #require(lines.first { $0.hasPrefix("Dropped ") })
        #expect((Int(dropped.split(separator: " ")[1]) ?? 0) >= pair.relay.snapshot.tampered
                && dropped.hasSuffix("forged, altered or replayed datagrams on UDP port \(yodaPort)"), "\(dropped)")
    }

    /// A datagram of `kind` for transfer `id`, sealed with a key nobody was given.
    private func forged(_ kind: TransferPacket.Kind, id: UInt64) -> [UInt8] {
        var bytes = [UInt8](repeating: 0x41, count: 1200)
        bytes.withUnsafeMutableBytes { out in
            out.storeBytes(of: TransferPacket.magic.bigEndian, as: UInt16.self)
            out.storeBytes(of: TransferPacket.version, toByteOffset: 2, as: UInt8.self)
            out.storeBytes(of: kind.rawValue, toByteOffset: 3, as: UInt8.self)
            out.storeBytes(of: id.bigEndian, toByteOffset: 4, as: UInt64.self)
            out.storeBytes(of: UInt64(1).bigEndian, toByteOffset: 12, as: UInt64.self)
            out.storeBytes(of: UInt16(1150).bigEndian, toByteOffset: 32, as: UInt16.self)
        }
        return bytes
    }

    @Test func pathNamesAreRefusedByPresenterAndServer() async throws {
        let server = try await TestServer()
        let hans = try await server.login("hans")
        let yoda = try await server.login("yoda")
        for name in ["../secret.txt", "dir/file.txt", "..", "a..b"] {
            let reply = try await hans.command("UPD yoda \(name)")
            #expect(reply.count == 1 && reply[0].hasSuffix("is not a plain file name: '/', '..' and control characters are not allowed"),
                    "\(name): \(reply)")
        }
        // A client that skips its own check meets the server's.
        let raw = try RawConnection(port: server.port)
        raw.send("HELLO\t\(Wire.protocolVersion)\traw\nUSER\tvader\nPASS\tsithlord**\t7000\nUPD\tyoda\t../../etc/passwd\n")
        _ = raw.readLine()
        _ = raw.readLine()
        _ = raw.readLine()
        let refusal = try #require(raw.readLine())
        #expect(refusal.hasPrefix("ERR\tinvalid_argument\t") && refusal.contains("is not a plain file name"), "\(refusal)")
        #expect(try files(in: yoda).isEmpty)
        #expect(!yoda.stdout.contains("Received"))
    }

    @Test func missingFileAndOversizedFileAreRefused() async throws {
        let server = try await TestServer()
        let hans = try await server.login("hans")
        let yoda = try await server.login("yoda", extra: ["--max-upload", "1K"])
        #expect(try await hans.command("UPD yoda nothing.bin") == ["nothing.bin does not exist"])
        _ = try randomFile(in: hans, "large.bin", size: 2048)
        #expect(try await hans.command("UPD yoda large.bin") == [])
        let reason = "refused by the receiver: the file (2.0 KiB) is larger than the 1.0 KiB this receiver accepts"
        try await hans.expect(Messages.uploadFailed("large.bin", to: "yoda", reason: reason))
        try await yoda.expect(Messages.receiveRefused("large.bin", from: "hans",
                                                      reason: "the file (2.0 KiB) is larger than the 1.0 KiB this receiver accepts"))
        #expect(try files(in: yoda).isEmpty)
    }

    /// The audience vanishes mid-transfer: the presenter says so within its timeout, and no
    /// file appears under the final name. Restarted, the audience gets the rest only.
    @Test func audienceKilledMidTransferIsReportedAndResumes() async throws {
        let pair = try await hansAndYodaBehindARelay(pauseAfter: 2 << 20, hans: ["--transfer-timeout", "2"])
        let sent = try randomFile(in: pair.hans, "doomed.bin", size: 16 << 20)
        pair.hans.send("UPD yoda doomed.bin")
        try await eventually("part of the file to arrive") { pair.relay.paused }
        let record = pair.yoda.directory.appendingPathComponent(".hans_doomed.bin.part-record").path
        try await eventually("the record of what arrived to be written") {
            (try? FileManager.default.attributesOfItem(atPath: record)[.size] as? Int) == TransferEndpoint.partialRecordFileSize
        }
        pair.yoda.signal(SIGKILL)
        _ = try await pair.yoda.waitForExit()
        let clock = ContinuousClock()
        let killed = clock.now
        try await pair.hans.expect(Messages.uploadFailed("doomed.bin", to: "yoda",
                                                    reason: "the receiver stopped answering (nothing for 2 seconds)"))
        #expect(clock.now - killed < .seconds(10))
        #expect(!FileManager.default.fileExists(atPath: pair.yoda.directory.appendingPathComponent("hans_doomed.bin").path))
        #expect(try await pair.hans.command("ATU") == [Messages.noOtherActiveUser])

        let yoda = try await pair.server.login("yoda", udpPort: pair.relay.targetPort,
                                               extra: ["--public-udp-port", String(pair.relay.port)])
        pair.relay.paused = false
        pair.hans.send("UPD yoda doomed.bin")
        let percent = try await resumedPercent(pair.hans, "doomed.bin")
        #expect(percent > 0 && percent < 100, "\(percent)")
        try await pair.hans.expect(Messages.uploaded("doomed.bin"))
        try await yoda.expect(Messages.received("doomed.bin", from: "hans"))
        #expect(try Data(contentsOf: yoda.directory.appendingPathComponent("hans_doomed.bin")) == sent)
        #expect(try files(in: yoda) == ["hans_doomed.bin"])
    }

    /// The audience killed halfway through a fast loopback transfer, the moment the relay in
    /// front of it holds the rest (a fast transfer lasts well under the second the record once
    /// waited for; the relay makes the moment certain, not a race with the transfer's end):
    /// the record must already say most of what arrived (it is brought up to date every few
    /// blocks), so the same UPD to the restarted audience resumes from there.
    @Test func audienceKilledDuringAFastTransferResumesFromItsRecord() async throws {
        let size = 128 << 20
        let pair = try await hansAndYodaBehindARelay(pauseAfter: size / 2, hans: ["--transfer-timeout", "2"])
        let sent = try randomFile(in: pair.hans, "fast.bin", size: size)
        pair.hans.send("UPD yoda fast.bin")
        try await eventually("half the file to pass the relay", every: .milliseconds(1)) { pair.relay.paused }
        pair.yoda.signal(SIGKILL)
        _ = try await pair.yoda.waitForExit()
        try await pair.hans.expect(Messages.uploadFailed("fast.bin", to: "yoda",
                                                         reason: "the receiver stopped answering (nothing for 2 seconds)"))

        let restarted = try await pair.server.login("yoda", udpPort: pair.relay.targetPort,
                                                    extra: ["--public-udp-port", String(pair.relay.port)])
        pair.relay.paused = false
        pair.hans.send("UPD yoda fast.bin")
        let percent = try await resumedPercent(pair.hans, "fast.bin")
        #expect(percent >= 30 && percent < 100, "\(percent)")
        try await pair.hans.expect(Messages.uploaded("fast.bin"))
        try await restarted.expect(Messages.received("fast.bin", from: "hans"))
        #expect(try Data(contentsOf: restarted.directory.appendingPathComponent("hans_fast.bin")) == sent)
        #expect(try files(in: restarted) == ["hans_fast.bin"])
    }

    /// The presenter vanishes mid-transfer: the audience gives up after its timeout and
    /// keeps only the hidden partial file and its record. Another presenter's file of the
    /// same name is not mixed in; the restarted presenter sends only the rest.
    @Test func presenterKilledMidTransferResumesAndOtherPresentersAreNotMixedIn() async throws {
        let pair = try await hansAndYodaBehindARelay(pauseAfter: 2 << 20, yoda: ["--transfer-timeout", "1"])
        let sent = try randomFile(in: pair.hans, "orphan.bin", size: 16 << 20)
        pair.hans.send("UPD yoda orphan.bin")
        try await eventually("part of the file to arrive") { pair.relay.paused }
        pair.hans.signal(SIGKILL)
        _ = try await pair.hans.waitForExit()
        try await pair.yoda.expect(Messages.receiveFailed("orphan.bin", from: "hans",
                                                     reason: "the sender stopped sending (nothing for 1 second)"))
        try await eventually("only the partial file and its record") {
            try files(in: pair.yoda) == [".hans_orphan.bin.part", ".hans_orphan.bin.part-record"]
        }

        let vader = try await pair.server.login("vader")
        let other = try randomFile(in: vader, "orphan.bin", size: 4 << 20)
        pair.relay.paused = false
        vader.send("UPD yoda orphan.bin")
        try await vader.expect(Messages.uploaded("orphan.bin"))
        try await pair.yoda.expect(Messages.received("orphan.bin", from: "vader"))
        #expect(!vader.lines.contains { $0.hasPrefix("Resuming") })
        #expect(try Data(contentsOf: pair.yoda.directory.appendingPathComponent("vader_orphan.bin")) == other)

        let hans = try await pair.server.login("hans")
        hans.send("UPD yoda orphan.bin")
        let percent = try await resumedPercent(hans, "orphan.bin")
        #expect(percent > 0 && percent < 100, "\(percent)")
        try await hans.expect(Messages.uploaded("orphan.bin"))
        try await pair.yoda.expect(Messages.received("orphan.bin", from: "hans"))
        #expect(try Data(contentsOf: pair.yoda.directory.appendingPathComponent("hans_orphan.bin")) == sent)
        #expect(try files(in: pair.yoda) == ["hans_orphan.bin", "vader_orphan.bin"])
    }

    /// The network between them goes silent: both clients give up after their timeout,
    /// alive. The same UPD again sends only the rest.
    @Test func aTimedOutTransferResumes() async throws {
        let (pair, sent) = try await timedOutTransfer("timed.bin")
        pair.hans.send("UPD yoda timed.bin")
        let percent = try await resumedPercent(pair.hans, "timed.bin")
        #expect(percent > 0 && percent < 100, "\(percent)")
        try await pair.hans.expect(Messages.uploaded("timed.bin"))
        try await pair.yoda.expect(Messages.received("timed.bin", from: "hans"))
        #expect(try Data(contentsOf: pair.yoda.directory.appendingPathComponent("hans_timed.bin")) == sent)
        #expect(try files(in: pair.yoda) == ["hans_timed.bin"])
    }

    /// The same name and size, other bytes: the partial file is not used, the file goes whole.
    @Test func aFileChangedAfterATimeoutIsSentWhole() async throws {
        let (pair, _) = try await timedOutTransfer("edited.bin")
        let edited = try randomFile(in: pair.hans, "edited.bin", size: 16 << 20)
        pair.hans.send("UPD yoda edited.bin")
        try await pair.hans.expect(Messages.uploaded("edited.bin"))
        try await pair.yoda.expect(Messages.received("edited.bin", from: "hans"))
        #expect(!pair.hans.lines.contains { $0.hasPrefix("Resuming") })
        #expect(try Data(contentsOf: pair.yoda.directory.appendingPathComponent("hans_edited.bin")) == edited)
        #expect(try files(in: pair.yoda) == ["hans_edited.bin"])
    }

    /// A 16 MiB transfer held by the relay after 2 MiB until both sides time out (1 s);
    /// then the relay lets datagrams through again. Returns the pair and what was sent.
    private func timedOutTransfer(_ name: String) async throws -> (RelayedPair, Data) {
        let timeout = ["--transfer-timeout", "1"]
        let pair = try await hansAndYodaBehindARelay(pauseAfter: 2 << 20, hans: timeout, yoda: timeout)
        let sent = try randomFile(in: pair.hans, name, size: 16 << 20)
        pair.hans.send("UPD yoda \(name)")
        try await eventually("part of the file to arrive") { pair.relay.paused }
        // Whichever side gives up first: the audience's reason reaches the presenter as a refusal.
        try await eventually("the presenter to give up") {
            pair.hans.lines.contains { $0.hasPrefix(Messages.uploadFailed(name, to: "yoda", reason: "")) }
        }
        try await pair.yoda.expect(Messages.receiveFailed(name, from: "hans",
                                                     reason: "the sender stopped sending (nothing for 1 second)"))
        try await eventually("only the partial file and its record") {
            try files(in: pair.yoda) == [".hans_\(name).part", ".hans_\(name).part-record"]
        }
        pair.relay.paused = false
        return (pair, sent)
    }

    /// On a terminal the presenter sees a progress bar above the prompt; it is replaced by
    /// the final line.
    @Test(.enabled(if: TmuxSession.available, "needs tmux"))
    func aTerminalShowsAProgressBar() async throws {
        let pair = try await hansAndYodaBehindARelay(pauseAfter: 512 << 10, yoda: Self.patient)
        _ = try randomFile(in: pair.hans, "shown.bin", size: 8 << 20)
        pair.hans.send("OUT")
        _ = try await pair.hans.waitForExit()
        let tmux = try await TmuxSession(["client", "127.0.0.1", String(pair.server.port), "0"] + Self.patient,
                                         in: pair.hans.directory)
        try await tmux.waitFor(Messages.usernamePrompt)
        try await tmux.type("hans")
        try await tmux.press("Enter")
        try await tmux.waitFor(Messages.passwordPrompt)
        try await tmux.type(passwords["hans"]!)
        try await tmux.press("Enter")
        try await tmux.waitFor(Messages.welcome)
        try await tmux.type("UPD yoda shown.bin")
        try await tmux.press("Enter")
        let bar = #"^\[[#-]{20}\] +[0-9]+%  [0-9.]+ [kMG]B/s  ([0-9]+:[0-9]{2}|-:--) left  shown\.bin to yoda, (direct|relayed)$"#
        var lines: [String] = []
        try await tmux.waitUntil("a progress bar") { screen in
            lines = screen
            return screen.contains { $0.range(of: bar, options: .regularExpression) != nil }
        }
        // The bar is the last line above the prompt.
        let barLine = try #require(lines.lastIndex { $0.range(of: bar, options: .regularExpression) != nil })
        #expect(lines[barLine + 1].hasPrefix(Command.prompt.trimmingCharacters(in: .whitespaces)), "\(lines)")
        // On a loaded machine the bar can show before the relay holds the transfer: letting
        // it go then came first, and the hold that followed was never lifted.
        try await eventually("the relay to hold the transfer") { pair.relay.paused }
        pair.relay.paused = false
        try await tmux.waitFor(Messages.uploaded("shown.bin"))
        try await pair.yoda.expect(Messages.received("shown.bin", from: "hans"))
    }

    @Test(arguments: [(["--max-upload", "10X"], "Invalid maximum upload size: '10X'"),
                      (["--transfer-timeout", "0"], "Invalid transfer timeout: 0.0"),
                      (["--public-udp-port", "70000"], "Invalid public UDP port: 70000")])
    func badTransferOptionsAreRefused(_ options: [String], _ message: String) async throws {
        let directory = try TemporaryDirectory()
        let client = try ToomProcess(["client", "127.0.0.1", "4000", "0"] + options, in: directory.url)
        client.closeInput()
        #expect(try await client.waitForExit() != 0)
        #expect(client.stderr.contains("Error: \(message)"), "\(client.stderr)")
        #expect(!client.stderr.contains("Fatal error"))
    }

    /// Two clients cannot share a UDP port: the second would take the first one's files.
    @Test func aUDPPortInUseIsRefused() async throws {
        let server = try await TestServer()
        let (hans, port) = try await UDPRelay.withFreePort { port in (try await server.login("hans", udpPort: port), port) }
        let second = try server.client(directory: "second", udpPort: port)
        #expect(try await second.waitForExit() == 2)
        #expect(second.stdout.contains("Cannot listen for files on UDP port \(port): Address already in use"), "\(second.stdout)")
        #expect(try await hans.command("ATU") == [Messages.noOtherActiveUser])
    }

    /// A script that uploads and ends its input still delivers the file before logging out.
    @Test func endOfInputWaitsForTheUpload() async throws {
        let server = try await TestServer()
        let yoda = try await server.login("yoda")
        let hans = try server.client(directory: "hans")
        let sent = try randomFile(in: hans, "scripted.bin", size: 10 << 20)
        hans.send("hans")
        hans.send(passwords["hans"]!)
        hans.send("UPD yoda scripted.bin")
        hans.closeInput()
        #expect(try await hans.waitForExit() == 0)
        #expect(Array(hans.lines.suffix(2)) == [Messages.uploaded("scripted.bin"), "Bye, hans!"])
        try await yoda.expect(Messages.received("scripted.bin", from: "hans"))
        #expect(try Data(contentsOf: yoda.directory.appendingPathComponent("hans_scripted.bin")) == sent)
    }

    // MARK: Helpers

    /// A server, hans, and yoda behind a relay.
    final class RelayedPair {
        let server: TestServer
        let relay: UDPRelay
        let hans: ToomProcess
        let yoda: ToomProcess

        init(server: TestServer, relay: UDPRelay, hans: ToomProcess, yoda: ToomProcess) {
            self.server = server
            self.relay = relay
            self.hans = hans
            self.yoda = yoda
        }
    }

    /// For a transfer the relay holds while the test does something else: a loaded machine
    /// may take a while over it, and the transfer must outlast that.
    static let patient = ["--transfer-timeout", "120"]

    /// hans, and yoda behind a relay: what is sent to yoda goes through the relay, which is
    /// made with `reorder`, `duplicate` and `pauseAfter`. Extra client options for each.
    private func hansAndYodaBehindARelay(reorder: Bool = false, duplicate: Bool = false, tamper: Bool = false,
                                         pauseAfter: Int? = nil,
                                         hans hansOptions: [String] = [], yoda yodaOptions: [String] = [])
        async throws -> RelayedPair {
        let server = try await TestServer()
        let hans = try await server.login("hans", extra: hansOptions)
        return try await UDPRelay.withFreePort { yodaPort in
            let relay = try UDPRelay(to: yodaPort, reorder: reorder, duplicate: duplicate, tamper: tamper,
                                     pauseAfter: pauseAfter)
            let yoda = try await server.login("yoda", udpPort: yodaPort,
                                              extra: ["--public-udp-port", String(relay.port)] + yodaOptions)
            return RelayedPair(server: server, relay: relay, hans: hans, yoda: yoda)
        }
    }

    private func randomFile(in client: ToomProcess, _ name: String, size: Int) throws -> Data {
        let random = try FileHandle(forReadingFrom: URL(fileURLWithPath: "/dev/urandom"))
        defer { try? random.close() }
        let data = size == 0 ? Data() : try random.read(upToCount: size) ?? Data()
        try data.write(to: client.directory.appendingPathComponent(name))
        return data
    }

    /// The percentage in the presenter's `Resuming <file> to yoda at <percent>%` line.
    private func resumedPercent(_ presenter: ToomProcess, _ file: String) async throws -> Int {
        let prefix = "Resuming \(file) to yoda at "
        try await eventually("the resuming line") { presenter.lines.contains { $0.hasPrefix(prefix) && $0.hasSuffix("%") } }
        let line = presenter.lines.first { $0.hasPrefix(prefix) }!
        return try #require(Int(line.dropFirst(prefix.count).dropLast()))
    }

    /// Everything in a client's working directory, hidden files included.
    /// What the client wrote in its working directory (its test home, `.home`, aside).
    private func files(in client: ToomProcess) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: client.directory.path).filter { $0 != ".home" }.sorted()
    }
}
