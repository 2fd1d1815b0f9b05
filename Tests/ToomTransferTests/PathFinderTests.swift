import NIOCore
import Testing
import ToomCore
@testable import ToomTransfer

/// Where START goes while a transfer looks for its path (spec §12), with a test clock.
@Suite struct PathFinderTests {
    let lan = try! SocketAddress(ipAddress: "100.64.1.2", port: 6000)
    let outside = try! SocketAddress(ipAddress: "198.18.2.2", port: 6000)
    let relay = try! SocketAddress(ipAddress: "198.18.0.2", port: 4000)
    let ms: Int64 = 1_000_000

    @Test func directCandidatesAreTriedTogetherAndOftenThenTheRelay() {
        var paths = PathFinder(direct: [lan, outside, lan], relay: relay, timeout: 10_000 * ms, now: 0)
        #expect(paths.direct == [lan, outside])
        var sent: [(Int64, [SocketAddress])] = []
        for now in stride(from: Int64(0), through: 7_000 * ms, by: Int64.Stride(5 * ms)) {
            let due = paths.due(now: now)
            if !due.isEmpty { sent.append((now, due)) }
        }
        let direct = sent.filter { $0.1.contains(lan) }.map(\.0)
        // Five a second while punching (the first 5 s), then once a second.
        #expect(direct.prefix(3) == [0, 200 * ms, 400 * ms])
        #expect(direct.filter { $0 < 5_000 * ms }.count == 25)
        #expect(direct.filter { $0 >= 5_000 * ms } == [5_000 * ms, 6_000 * ms, 7_000 * ms])
        // The relay from 5 s on, backing off from 250 ms.
        let relayed = sent.filter { $0.1.contains(relay) }.map(\.0)
        #expect(relayed.first == 5_000 * ms)
        #expect(relayed.dropFirst().first == 5_250 * ms)
        #expect(paths.path(from: relay) == .relayed && paths.path(from: outside) == .direct)
        #expect(paths.isPeerToPeer)
    }

    @Test func aShortTimeoutTriesTheRelayAtItsMiddle() {
        var paths = PathFinder(direct: [outside], relay: relay, timeout: 2_000 * ms, now: 0)
        #expect(paths.due(now: 0) == [outside])
        #expect(!paths.due(now: 999 * ms).contains(relay))
        #expect(paths.due(now: 1_000 * ms).contains(relay))
    }

    @Test func aV1PeerIsOneAddressAndNoRelay() {
        var paths = PathFinder(direct: [outside], relay: nil, timeout: 10_000 * ms, now: 0)
        #expect(!paths.isPeerToPeer)
        #expect(paths.due(now: 0) == [outside])
        #expect(paths.due(now: 100 * ms).isEmpty)
    }

    @Test func bothEndsAgreeTheSameKeyAndCheck() throws {
        let hans = TransferKeyPair(), yoda = TransferKeyPair(), mallory = TransferKeyPair()
        let token = TransferToken.random()
        let presenter = try #require(hans.agree(with: yoda.publicHex, token: token, asPresenter: true))
        let audience = try #require(yoda.agree(with: hans.publicHex, token: token, asPresenter: false))
        #expect(presenter.key == audience.key && presenter.check == audience.check)
        #expect(matches(presenter.check))
        // Another token, another key.
        let again = try #require(hans.agree(with: yoda.publicHex, token: TransferToken.random(), asPresenter: true))
        #expect(again.key != presenter.key)
        // A server that swaps keys (mallory's to each) makes two different keys and checks.
        let fooledHans = try #require(hans.agree(with: mallory.publicHex, token: token, asPresenter: true))
        let fooledYoda = try #require(yoda.agree(with: mallory.publicHex, token: token, asPresenter: false))
        #expect(fooledHans.key != fooledYoda.key && fooledHans.check != fooledYoda.check)
        #expect(hans.agree(with: "zz", token: token, asPresenter: true) == nil)
        // A low-order point gives no key.
        #expect(hans.agree(with: String(repeating: "00", count: 32), token: token, asPresenter: true) == nil)
    }

    private func matches(_ check: String) -> Bool {
        check.range(of: "^[0-9]{4}-[0-9]{4}$", options: .regularExpression) != nil
    }
}
