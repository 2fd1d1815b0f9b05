import NIOCore
import Testing
import ToomChat
import ToomCore
import ToomSecurity
@testable import ToomServer

/// The server's UDP port's rules (spec §12), with a test clock.
@Suite struct RendezvousTableTests {
    let hans = SessionID(1), yoda = SessionID(2)
    let hansSecret = Array(repeating: UInt8(1), count: 32), yodaSecret = Array(repeating: UInt8(2), count: 32)
    let hansAddress = try! SocketAddress(ipAddress: "198.18.1.2", port: 5000)
    let yodaAddress = try! SocketAddress(ipAddress: "198.18.2.2", port: 6000)
    let stranger = try! SocketAddress(ipAddress: "198.18.3.3", port: 7000)
    let transfer: UInt64 = 0x0102_0304_0506_0708

    func table(rate: UInt64 = 1 << 20) -> RendezvousTable {
        var table = RendezvousTable(relayRate: rate)
        table.apply(.open(hans, registration: 11, secret: hansSecret), now: .seconds(0))
        table.apply(.open(yoda, registration: 22, secret: yodaSecret), now: .seconds(0))
        return table
    }

    func register(_ table: inout RendezvousTable, id: UInt64, number: UInt64, secret: [UInt8],
                  from source: SocketAddress, listing: [TransferCandidate] = []) -> RendezvousTable.Outcome {
        let bytes = RendezvousDatagram.register(id: id, number: number, candidates: listing,
                                                secret: RendezvousSecret(bytes: secret))
        return bytes.withUnsafeBytes { table.receive($0, from: source, now: .seconds(1)) }
    }

    func datagram(size: Int = 100, id: UInt64? = nil) -> [UInt8] {
        var bytes: [UInt8] = [0x54, 0x46, 2, 2]
        withUnsafeBytes(of: (id ?? transfer).bigEndian) { bytes += $0 }
        return bytes + [UInt8](repeating: 9, count: size - bytes.count)
    }

    @Test func aRegistrationIsAnsweredWithWhatWasSeenAndNoMore() throws {
        var table = table()
        let lan = try #require(TransferCandidate("100.64.1.2:5000"))
        let outcome = register(&table, id: 11, number: 1, secret: hansSecret, from: hansAddress, listing: [lan])
        guard case .reply(let answer, let target, let changed) = outcome else { Issue.record("\(outcome)"); return }
        #expect(target == hansAddress && answer.count <= RendezvousDatagram.registerSize)
        let seen = try #require(TransferCandidate(hansAddress))
        #expect(changed == .init(session: hans, candidates: [seen, lan]))
        let opened = answer.withUnsafeBytes { RendezvousDatagram.openRegistered($0, secret: RendezvousSecret(bytes: hansSecret)) }
        #expect(opened?.observed == seen)
        // The same again changes nothing the rules need to hear.
        guard case .reply(_, _, nil) = register(&table, id: 11, number: 2, secret: hansSecret, from: hansAddress, listing: [lan])
        else { Issue.record("a repeat is news"); return }
    }

    @Test func forgedReplayedAndUnknownRegistrationsGetNoAnswer() {
        var table = table()
        #expect(register(&table, id: 11, number: 1, secret: yodaSecret, from: stranger) == .drop, "another's secret")
        #expect(register(&table, id: 99, number: 1, secret: hansSecret, from: stranger) == .drop, "unknown id")
        guard case .reply = register(&table, id: 11, number: 5, secret: hansSecret, from: hansAddress) else {
            Issue.record("the real one"); return
        }
        #expect(register(&table, id: 11, number: 5, secret: hansSecret, from: stranger) == .drop, "a replay")
        #expect(register(&table, id: 11, number: 4, secret: hansSecret, from: stranger) == .drop, "an older one")
        #expect(table.registrations[11]?.address == hansAddress)
        let noise: [UInt8] = Array("TR noise noise noise noise noise noise".utf8)
        #expect(noise.withUnsafeBytes { table.receive($0, from: stranger, now: .seconds(1)) } == .drop)
    }

    @Test func anIntroducedTransferIsRelayedBetweenItsTwoClientsOnly() {
        var table = table()
        _ = register(&table, id: 11, number: 1, secret: hansSecret, from: hansAddress)
        _ = register(&table, id: 22, number: 1, secret: yodaSecret, from: yodaAddress)
        let bytes = datagram()
        func send(_ bytes: [UInt8], from source: SocketAddress, at seconds: Int64 = 2) -> RendezvousTable.Outcome {
            bytes.withUnsafeBytes { table.receive($0, from: source, now: .seconds(seconds)) }
        }
        #expect(send(bytes, from: hansAddress) == .drop, "not introduced yet")
        table.apply(.introduce(transfer: transfer, presenter: hans, audience: yoda), now: .seconds(2))
        #expect(send(bytes, from: hansAddress) == .forward(to: yodaAddress))
        #expect(send(bytes, from: yodaAddress) == .forward(to: hansAddress))
        #expect(send(bytes, from: stranger) == .drop)
        #expect(send(datagram(id: 77), from: hansAddress) == .drop, "another transfer")
        #expect(table.relayedBytes == 200)
        // Unused for longer than relayIdle, it is gone.
        #expect(send(bytes, from: hansAddress, at: 2 + 31) == .drop)
        #expect(table.relays.isEmpty)
    }

    @Test func aSessionThatEndsTakesItsRelaysWithIt() {
        var table = table()
        _ = register(&table, id: 11, number: 1, secret: hansSecret, from: hansAddress)
        _ = register(&table, id: 22, number: 1, secret: yodaSecret, from: yodaAddress)
        table.apply(.introduce(transfer: transfer, presenter: hans, audience: yoda), now: .seconds(2))
        table.apply(.close(yoda), now: .seconds(3))
        #expect(table.relays.isEmpty && table.registrations[22] == nil)
        #expect(datagram().withUnsafeBytes { table.receive($0, from: hansAddress, now: .seconds(3)) } == .drop)
    }

    @Test func theRelayKeepsToItsRate() {
        var table = table(rate: 1_000_000)
        _ = register(&table, id: 11, number: 1, secret: hansSecret, from: hansAddress)
        _ = register(&table, id: 22, number: 1, secret: yodaSecret, from: yodaAddress)
        table.apply(.introduce(transfer: transfer, presenter: hans, audience: yoda), now: .seconds(2))
        let bytes = datagram(size: 10_000)
        var forwarded = 0
        // Two seconds of 100 datagrams a millisecond: the budget allows 1 MB a second and a burst.
        for tick in 0..<2000 {
            for _ in 0..<100 {
                if case .forward = bytes.withUnsafeBytes({ table.receive($0, from: hansAddress,
                                                                         now: .seconds(2) + .milliseconds(tick)) }) {
                    forwarded += 1
                }
            }
        }
        let limit = (2 * 1_000_000 + 2 * 65_536) / 10_000 + 1
        #expect(forwarded <= limit && forwarded >= 150, "\(forwarded) forwarded")
        #expect(table.overBudget > 0)
    }

    @Test func aRelayRateOfZeroRelaysNothing() {
        var table = table(rate: 0)
        _ = register(&table, id: 11, number: 1, secret: hansSecret, from: hansAddress)
        _ = register(&table, id: 22, number: 1, secret: yodaSecret, from: yodaAddress)
        table.apply(.introduce(transfer: transfer, presenter: hans, audience: yoda), now: .seconds(2))
        #expect(table.relays.isEmpty)
        #expect(datagram().withUnsafeBytes { table.receive($0, from: hansAddress, now: .seconds(2)) } == .drop)
    }
}
