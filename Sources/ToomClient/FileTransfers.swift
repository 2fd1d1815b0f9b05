import NIOConcurrencyHelpers
import NIOCore
import ToomCore
import ToomSecurity
import ToomTransfer

/// UPD at both ends (spec §6, docs/TRANSFER.md) for one client: the transfer endpoint on
/// the client's UDP port, uploads running in the background while the prompt stays
/// usable, the offers the server announces, and what the user sees of all that.
final class FileTransfers: Sendable {
    private struct Upload {
        let transfer: OutgoingTransfer
        let audience: String
        let started: ContinuousClock.Instant
        /// Smoothed rate in bytes per second, and the sample it was last updated from.
        var rate: Double = 0
        var sampledBytes: UInt64 = 0
        var sampledAt: ContinuousClock.Instant
    }

    private struct State {
        var uploads: [Int: Upload] = [:]
        var nextUpload = 0
        var ticker: Task<Void, Never>?
        /// Every upload's task, so that logging out waits for their last lines.
        var tasks: [Task<Void, Never>] = []
    }

    let endpoint: TransferEndpoint
    /// This client's half of every file key it agrees with another client (spec §12).
    let keys = TransferKeyPair()
    let registrar = Registrar()
    private let screen: ClientScreen
    private let state = NIOLockedValueBox(State())

    static let progressInterval: Duration = .milliseconds(250)
    /// How an agreed key's public half travels in OFFER and in UPD's reply.
    static let keyPrefix = "x25519:"

    /// Binds the UDP port, IPv6 and IPv4; incoming files are saved in the working directory.
    init(port: Int, maxIncomingSize: UInt64?, timeout: TimeAmount, screen: ClientScreen) async throws {
        var configuration = TransferConfiguration()
        configuration.maxIncomingSize = maxIncomingSize
        configuration.timeout = timeout
        self.screen = screen
        endpoint = try await TransferEndpoint.bindDualStack(port: port, configuration: configuration,
                                                            foreign: { [registrar] in registrar.answer($0, from: $1) }) { event in
            switch event {
            case .received(let offer, _):
                screen.say(Messages.received(offer.fileName, from: offer.sender))
            case .refused(let offer, let reason):
                screen.say(Messages.receiveRefused(offer.fileName, from: offer.sender, reason: reason))
            case .failed(let offer, let reason):
                screen.say(Messages.receiveFailed(offer.fileName, from: offer.sender, reason: reason))
            }
        }
    }

    // MARK: Audience

    /// Registers the UDP port with the server under the login's registration (spec §12).
    func register(_ fields: [String], server: SocketAddress?) {
        guard fields.count == 3, let id = Hex.decode(fields[1], count: 8), let secret = RendezvousSecret(hex: fields[2]),
              let server = server.flatMap(TransferCandidate.init)?.socketAddress(forIPv6Socket: endpoint.isIPv6)
        else { return }
        registrar.start(id: id.reduce(0) { $0 << 8 | UInt64($1) }, secret: secret, server: server, endpoint: endpoint)
    }

    /// The addresses of an offer or a reply, as this port sends to them.
    private func addresses(_ fields: some Sequence<String>) -> [SocketAddress] {
        fields.compactMap { TransferCandidate($0) }.filter { endpoint.isIPv6 || !$0.isIPv6 }
            .compactMap { $0.socketAddress(forIPv6Socket: endpoint.isIPv6) }
    }

    /// `EVENT OFFER <presenter> <file> <token> <key>` from the server, or with `p2p`
    /// `EVENT OFFER <presenter> <file> <token> x25519:<public key> <relay> <address>...`.
    func offer(_ fields: [String]) {
        guard fields.count >= 4, let token = TransferToken(hex: fields[2]) else { return }
        let presenter = fields[0]
        let file = fields[1]
        let key: TransferKey
        var targets: [SocketAddress] = []
        if fields[3].hasPrefix(Self.keyPrefix) {
            guard fields.count >= 5,
                  let agreed = keys.agree(with: fields[3].dropFirst(Self.keyPrefix.count), token: token, asPresenter: false)
            else { return }
            key = agreed.key
            // Only where the server saw the presenter: that is the NAT to open, and a presenter
            // cannot make this client send to addresses of its own choosing.
            targets = addresses(fields.dropFirst(5).prefix(1))
            screen.note(Messages.keyCheck(file, from: presenter, code: agreed.check))
        } else {
            guard fields.count == 4, let minted = TransferKey(hex: fields[3]) else { return }
            key = minted
        }
        let offer = IncomingOffer(token: token, key: key, fileName: file,
                                  saveAs: Messages.savedName(file, from: presenter), sender: presenter,
                                  punchTargets: targets)
        if let problem = endpoint.expect(offer) {
            screen.say(Messages.receiveRefused(file, from: presenter, reason: problem))
        }
    }

    // MARK: Presenter

    /// `UPD <audience> <file>`: checks the name, asks the server (through `request`),
    /// opens the file, and starts the upload in the background.
    func upload(_ audience: String, _ file: String, request: ([String]) async -> [ServerFrame]) async {
        if let problem = TransferName.problem(file) {
            screen.say(problem)
            return
        }
        let frames = await request(["UPD", audience, file])
        guard case .ok("UPD", let fields)? = frames.last, fields.count >= 5, let port = Int(fields[2]),
              let token = TransferToken(hex: fields[3])
        else {
            screen.say(ReplyRenderer.lines(for: frames))
            return
        }
        // v1: `<ip> <port> <token> <key>`; p2p: then the audience's key, the relay and its addresses.
        let key: TransferKey
        var candidates: [SocketAddress] = []
        var relay: SocketAddress?
        var check: String?
        if fields[4].hasPrefix(Self.keyPrefix), fields.count >= 6,
           let agreed = keys.agree(with: fields[4].dropFirst(Self.keyPrefix.count), token: token, asPresenter: true) {
            key = agreed.key
            check = agreed.check
            candidates = addresses(fields.dropFirst(6))
            if fields[5] == "relay" { relay = registrar.server }
        } else if fields.count == 5, let minted = TransferKey(hex: fields[4]) {
            key = minted
        } else {
            screen.say(ReplyRenderer.lines(for: frames))
            return
        }
        let source: SourceFile
        do {
            source = try SourceFile(path: file)
        } catch {
            screen.say(error.reason)
            return
        }
        if candidates.isEmpty {
            guard let address = addresses(["\(fields[1].contains(":") ? "[\(fields[1])]" : fields[1]):\(port)"]).first else {
                screen.say(Messages.uploadFailed(file, to: audience, reason: "the server gave an unusable address, \(fields[1])"))
                return
            }
            candidates = [address]
        }
        if let check { screen.note(Messages.keyCheck(file, to: audience, code: check)) }
        let size = source.size
        let transfer = endpoint.send(source, name: file, token: token, key: key, candidates: candidates,
                                     relay: relay) { [screen] resumeFrom in
            screen.say(Messages.resuming(file, to: audience, percent: Int(resumeFrom * 100 / max(size, 1))))
        }
        let now = ContinuousClock.now
        let id = state.withLockedValue { state in
            defer { state.nextUpload += 1 }
            state.uploads[state.nextUpload] = Upload(transfer: transfer, audience: audience, started: now, sampledAt: now)
            return state.nextUpload
        }
        let task = Task { [self] in
            let result = await transfer.result()
            let line: String
            switch result {
            case .success: line = Messages.uploaded(file)
            case .failure(let failure): line = Messages.uploadFailed(file, to: audience, reason: failure.reason)
            }
            state.withLockedValue { _ = $0.uploads.removeValue(forKey: id) }
            screen.showProgress(progressBars(), draw: false)
            screen.say(line)
        }
        state.withLockedValue { $0.tasks.append(task) }
        startTicker()
    }

    /// Before logging out: lets every running transfer, in either direction, finish or
    /// fail (each fails by itself after its timeout at the latest).
    func finish() async {
        let running = await endpoint.activeTransfers()
        if running > 0 {
            screen.say("Waiting for \(running) file transfer\(running == 1 ? "" : "s") to finish")
        }
        let tasks = state.withLockedValue { $0.tasks }
        for task in tasks { await task.value }
        await endpoint.waitUntilIdle()
        let dropped = endpoint.unexpectedDatagrams
        if dropped > 0 {
            screen.say("Ignored \(dropped) datagram\(dropped == 1 ? "" : "s") on UDP port \(endpoint.port) that belonged to no announced transfer")
        }
        let rejected = endpoint.rejectedDatagrams
        if rejected > 0 {
            screen.say("Dropped \(rejected) forged, altered or replayed datagram\(rejected == 1 ? "" : "s") on UDP port \(endpoint.port)")
        }
    }

    // MARK: Progress

    /// Redraws the bars a few times a second while uploads run on a terminal.
    private func startTicker() {
        guard screen.showsProgress else { return }
        state.withLockedValue { current in
            guard current.ticker == nil else { return }
            current.ticker = Task { [self] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: Self.progressInterval)
                    let bars = progressBars()
                    if bars.isEmpty {
                        let stop = state.withLockedValue { state in
                            guard state.uploads.isEmpty else { return false }
                            state.ticker = nil
                            return true
                        }
                        if stop { return }
                    }
                    screen.showProgress(bars)
                }
            }
        }
    }

    private func progressBars() -> [String] {
        let now = ContinuousClock.now
        return state.withLockedValue { state in
            state.uploads.keys.sorted().compactMap { id -> String? in
                guard var upload = state.uploads[id] else { return nil }
                let bytes = upload.transfer.bytesAcknowledged
                let interval = (now - upload.sampledAt).seconds
                if interval > 0 {
                    let instant = Double(bytes - min(bytes, upload.sampledBytes)) / interval
                    upload.rate = upload.sampledBytes == 0 ? instant : 0.7 * upload.rate + 0.3 * instant
                    upload.sampledBytes = bytes
                    upload.sampledAt = now
                    state.uploads[id] = upload
                }
                return Self.bar(name: upload.transfer.name, audience: upload.audience, done: bytes,
                                size: upload.transfer.size, rate: upload.rate, path: upload.transfer.path)
            }
        }
    }

    /// `[#########-----------]  45%  812.3 MB/s  0:03 left  video.mp4 to yoda, direct`
    static func bar(name: String, audience: String, done: UInt64, size: UInt64, rate: Double,
                    path: TransferPath? = nil) -> String {
        let fraction = size == 0 ? 1 : Double(done) / Double(size)
        let width = 20
        let filled = min(width, Int(fraction * Double(width)))
        let percent = Int(fraction * 100)
        var left = "-:--"
        // A stalled transfer's rate decays towards zero: past 100 hours the estimate says
        // nothing (and would not fit an Int much further on).
        let estimate = (Double(size - min(size, done)) / rate).rounded(.up)
        if rate > 0, estimate < 100 * 3600 {
            let seconds = Int(estimate)
            left = seconds >= 3600 ? "\(seconds / 3600):\(pad(seconds / 60 % 60)):\(pad(seconds % 60))"
                : "\(seconds / 60):\(pad(seconds % 60))"
        }
        return "[\(String(repeating: "#", count: filled))\(String(repeating: "-", count: width - filled))] "
            + "\(String(repeating: " ", count: max(0, 3 - String(percent).count)))\(percent)%  "
            + "\(ByteCount.rate(rate))  \(left) left  \(name) to \(audience)" + (path.map { ", \($0.word)" } ?? "")
    }

    private static func pad(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
}

extension Duration {
    var seconds: Double {
        let (whole, fraction) = components
        return Double(whole) + Double(fraction) / 1e18
    }
}
