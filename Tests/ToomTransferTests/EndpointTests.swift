import ToomCore
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import Testing
import ToomTestSupport
@testable import ToomTransfer

/// Two endpoints of this process on loopback, sending real files through real sockets.
@Suite struct EndpointTests {
    /// A receiving endpoint in a fresh directory, with what it reported.
    final class Audience: @unchecked Sendable {
        let directory: URL
        let endpoint: TransferEndpoint
        let events = NIOLockedValueBox<[IncomingEvent]>([])

        init(configuration: TransferConfiguration = .init(), dropping percent: Int = 0) async throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("toom-transfer-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            var configuration = configuration
            configuration.directory = directory.path
            let events = self.events
            @Sendable func record(_ event: IncomingEvent) { events.withLockedValue { $0.append(event) } }
            @Sendable func addDropper(_ channel: any Channel) throws {
                try channel.pipeline.syncOperations.addHandler(Dropper(percent: percent))
            }
            endpoint = try await TransferEndpoint.bind(host: "127.0.0.1", port: 0, configuration: configuration,
                                                       events: record, addHandlers: percent == 0 ? nil : addDropper)
        }

        deinit { try? FileManager.default.removeItem(at: directory) }

        func offer(_ name: String, saveAs: String? = nil) -> TransferToken {
            let token = TransferToken.random()
            #expect(endpoint.expect(IncomingOffer(token: token, fileName: name, saveAs: saveAs ?? "got_" + name, sender: "test")) == nil)
            return token
        }

        var files: [String] { ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).sorted() }
    }

    /// Loses a share of what the channel reads.
    final class Dropper: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let percent: Int
        var generator = SeededRandom(seed: 42)
        init(percent: Int) { self.percent = percent }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if Int(generator.next() % 100) >= percent { context.fireChannelRead(data) }
        }
    }

    private func sourceFile(_ bytes: [UInt8]) throws -> (SourceFile, URL) {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("toom-source-\(UUID().uuidString)")
        try Data(bytes).write(to: url)
        return (try SourceFile(path: url.path), url)
    }

    private func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var generator = SeededRandom(seed: seed)
        return (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
    }

    @Test(arguments: [0, 1, TransferPacket.segmentPayload, TransferPacket.segmentPayload + 1, 700_001])
    func aFileArrivesWhole(_ size: Int) async throws {
        let audience = try await Audience()
        let presenter = try await TransferEndpoint.bind(host: "127.0.0.1", port: 0)
        let bytes = randomBytes(size, seed: UInt64(size))
        let (file, url) = try sourceFile(bytes)
        defer { try? FileManager.default.removeItem(at: url) }
        let token = audience.offer("f.bin")
        let upload = presenter.send(file, name: "f.bin", token: token, to: audience.endpoint.localAddress)
        let summary = try await upload.result().get()
        #expect(summary.bytes == UInt64(size) && summary.digest.count == 64)
        #expect(upload.bytesAcknowledged == UInt64(size))
        await audience.endpoint.waitUntilIdle()
        #expect(try Data(contentsOf: audience.directory.appendingPathComponent("got_f.bin")) == Data(bytes))
        #expect(audience.files == ["got_f.bin"])
        let expected = IncomingOffer(token: token, fileName: "f.bin", saveAs: "got_f.bin", sender: "test")
        #expect(audience.events.withLockedValue { $0 } == [.received(expected, bytes: UInt64(size))])
        #expect(audience.endpoint.unexpectedDatagrams == 0)
    }

    @Test func aQuarterOfTheDatagramsLostStillGivesTheFile() async throws {
        var small = TransferConfiguration()
        small.segmentsPerBlock = 64
        small.receiveBufferBlocks = 4
        let audience = try await Audience(configuration: small, dropping: 25)
        let presenter = try await TransferEndpoint.bind(host: "127.0.0.1", port: 0, configuration: small)
        let bytes = randomBytes(2 << 20, seed: 9)
        let (file, url) = try sourceFile(bytes)
        defer { try? FileManager.default.removeItem(at: url) }
        let token = audience.offer("lossy.bin")
        let summary = try await presenter.send(file, name: "lossy.bin", token: token, to: audience.endpoint.localAddress).result().get()
        #expect(summary.retransmissions > 0)
        await audience.endpoint.waitUntilIdle()
        #expect(try Data(contentsOf: audience.directory.appendingPathComponent("got_lossy.bin")) == Data(bytes))
    }

    @Test func theReceiverRefusesWhatItWasNotToldOrCannotTake() async throws {
        var capped = TransferConfiguration()
        capped.maxIncomingSize = 10
        let audience = try await Audience(configuration: capped)
        let presenter = try await TransferEndpoint.bind(host: "127.0.0.1", port: 0)
        let (file, url) = try sourceFile(Array(repeating: 1, count: 11))
        defer { try? FileManager.default.removeItem(at: url) }

        let tooBig = presenter.send(file, name: "big.bin", token: audience.offer("big.bin"), to: audience.endpoint.localAddress)
        #expect(await tooBig.result() == .failure(TransferFailure("refused by the receiver: the file (11 B) is larger than the 10 B this receiver accepts")))

        let renamed = presenter.send(file, name: "other.bin", token: audience.offer("announced.bin"), to: audience.endpoint.localAddress)
        #expect(await renamed.result() == .failure(TransferFailure("refused by the receiver: the file name differs from the one announced")))

        #expect(audience.endpoint.expect(IncomingOffer(token: .random(), fileName: "../x", saveAs: "ok", sender: "t")) != nil)
        #expect(audience.endpoint.expect(IncomingOffer(token: .random(), fileName: "x", saveAs: "a/b", sender: "t")) != nil)
        #expect(audience.files.isEmpty)
        #expect(audience.events.withLockedValue { $0 }.count == 2)
    }

    @Test func anUnannouncedTransferGetsNoAnswerAndTimesOut() async throws {
        var quick = TransferConfiguration()
        quick.timeout = .milliseconds(600)
        let audience = try await Audience()
        let presenter = try await TransferEndpoint.bind(host: "127.0.0.1", port: 0, configuration: quick)
        let (file, url) = try sourceFile([1, 2, 3])
        defer { try? FileManager.default.removeItem(at: url) }
        let upload = presenter.send(file, name: "x.bin", token: .random(), to: audience.endpoint.localAddress)
        #expect(await upload.result() == .failure(TransferFailure("the receiver did not answer within 0.6 seconds")))
        #expect(audience.endpoint.unexpectedDatagrams >= 1)
        #expect(audience.files.isEmpty)
    }

    @Test func closingTheSenderCancelsAndTheReceiverCleansUp() async throws {
        var slowDisk = TransferConfiguration()
        slowDisk.segmentsPerBlock = 16
        slowDisk.receiveBufferBlocks = 2
        let audience = try await Audience(configuration: slowDisk)
        let presenter = try await TransferEndpoint.bind(host: "127.0.0.1", port: 0)
        let (file, url) = try sourceFile([UInt8](repeating: 7, count: 30 << 20))
        defer { try? FileManager.default.removeItem(at: url) }
        let upload = presenter.send(file, name: "cut.bin", token: audience.offer("cut.bin"), to: audience.endpoint.localAddress)
        let deadline = ContinuousClock.now + .seconds(20)
        while upload.bytesAcknowledged == 0 {
            try #require(ContinuousClock.now < deadline, "no byte acknowledged within 20 s")
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(await audience.endpoint.activeTransfers() == 1)
        await presenter.close()
        #expect(await upload.result() == .failure(TransferFailure("the sender closed its transfer port")))
        await audience.endpoint.waitUntilIdle()
        #expect(audience.files.isEmpty)
        guard case .failed(_, let reason)? = audience.events.withLockedValue({ $0.last }) else {
            Issue.record("no failure reported")
            return
        }
        #expect(reason == "the sender cancelled: the sender closed its transfer port")
    }
}
