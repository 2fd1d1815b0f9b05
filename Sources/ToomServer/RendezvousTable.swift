import NIOCore
import ToomChat
import ToomCore
import ToomSecurity

/// What the server's UDP port does with each datagram (spec §12), pure: the sessions'
/// registrations and the transfers it introduced go in, a datagram and the time go in,
/// and out comes what to send where. The port (`RendezvousPort`) carries it out.
///
/// - A REGISTER authenticated with its session's secret, with a number larger than the
///   last, records where the client's UDP port was seen and the addresses it listed, and
///   is answered with that address (never more bytes than it had).
/// - A transfer datagram (`TF`) of a transfer the server introduced, from one of its two
///   clients' registered addresses, is forwarded unchanged to the other, within the relay's
///   byte rate, while the transfer is in use (`relayIdle` after its last datagram at most).
/// - Everything else gets no answer at all: nothing here reflects or amplifies.
struct RendezvousTable {
    struct Registration {
        let session: SessionID
        let secret: RendezvousSecret
        var number: UInt64 = 0
        /// Where the client's port was seen, as this server's socket reports it.
        var address: SocketAddress?
        var candidates: [TransferCandidate] = []
        /// Relays this session's transfers hold, oldest first.
        var relays: [UInt64] = []
    }

    struct Relay {
        let presenter: UInt64
        let audience: UInt64
        var lastUsed: Duration
    }

    enum Outcome: Equatable {
        case drop
        /// An answer to a registration; `changed` when the session's candidates changed.
        case reply([UInt8], to: SocketAddress, changed: Changed?)
        /// The datagram goes on, unchanged.
        case forward(to: SocketAddress)
    }

    struct Changed: Equatable {
        let session: SessionID
        let candidates: [TransferCandidate]
    }

    /// A relay unused this long is gone: a running transfer sends at least every few seconds.
    static let relayIdle: Duration = .seconds(30)
    /// Relays one session's transfers hold at once; a new one replaces the oldest.
    static let relaysPerSession = 32

    private(set) var registrations: [UInt64: Registration] = [:]
    private var bySession: [SessionID: UInt64] = [:]
    private(set) var relays: [UInt64: Relay] = [:]
    private var budget: ByteBudget
    /// Bytes relayed, and datagrams dropped for the rate, since the start.
    private(set) var relayedBytes: UInt64 = 0
    private(set) var overBudget: UInt64 = 0

    /// `relayRate` bytes a second for all relayed transfers together; 0: no relay.
    init(relayRate: UInt64) {
        budget = ByteBudget(rate: relayRate)
    }

    // MARK: From the chat rules

    mutating func apply(_ change: RendezvousChange, now: Duration) {
        switch change {
        case .open(let session, let id, let secret):
            close(session)
            registrations[id] = Registration(session: session, secret: RendezvousSecret(bytes: secret))
            bySession[session] = id
        case .close(let session):
            close(session)
        case .introduce(let transfer, let presenter, let audience):
            guard budget.rate > 0, let from = bySession[presenter], let to = bySession[audience] else { return }
            if let old = relays[transfer] { forget(transfer, old) }
            relays[transfer] = Relay(presenter: from, audience: to, lastUsed: now)
            registrations[from]?.relays.append(transfer)
            if let held = registrations[from]?.relays, held.count > Self.relaysPerSession, let oldest = relays[held[0]] {
                forget(held[0], oldest)
            }
        }
    }

    private mutating func close(_ session: SessionID) {
        guard let id = bySession.removeValue(forKey: session), let registration = registrations.removeValue(forKey: id)
        else { return }
        for transfer in registration.relays { if let relay = relays[transfer] { forget(transfer, relay) } }
        // Relays this session was the audience of go too.
        for (transfer, relay) in relays where relay.audience == id { forget(transfer, relay) }
    }

    private mutating func forget(_ transfer: UInt64, _ relay: Relay) {
        relays[transfer] = nil
        registrations[relay.presenter]?.relays.removeAll { $0 == transfer }
    }

    // MARK: Datagrams

    mutating func receive(_ bytes: UnsafeRawBufferPointer, from source: SocketAddress, now: Duration) -> Outcome {
        if RendezvousDatagram.isRendezvous(bytes) { return register(bytes, from: source) }
        return relay(bytes, from: source, now: now)
    }

    private mutating func register(_ bytes: UnsafeRawBufferPointer, from source: SocketAddress) -> Outcome {
        guard let header = RendezvousDatagram.header(bytes), header.kind == .register,
              var registration = registrations[header.id], header.number > registration.number,
              let listed = RendezvousDatagram.openRegister(bytes, secret: registration.secret),
              let observed = TransferCandidate(source)
        else { return .drop }
        registration.number = header.number
        registration.address = source
        var candidates = [observed]
        for candidate in listed where candidate.isUsefulElsewhere && !candidates.contains(candidate) {
            candidates.append(candidate)
        }
        let changed = candidates == registration.candidates ? nil : Changed(session: registration.session, candidates: candidates)
        registration.candidates = candidates
        registrations[header.id] = registration
        let answer = RendezvousDatagram.registered(id: header.id, number: header.number, observed: observed,
                                                   secret: registration.secret)
        guard answer.count <= bytes.count else { return .drop }
        return .reply(answer, to: source, changed: changed)
    }

    private mutating func relay(_ bytes: UnsafeRawBufferPointer, from source: SocketAddress, now: Duration) -> Outcome {
        // A transfer datagram: magic `TF`, version, type, then its transfer id.
        guard bytes.count >= 20, bytes[0] == 0x54, bytes[1] == 0x46 else { return .drop }
        var transfer: UInt64 = 0
        for index in 4..<12 { transfer = transfer << 8 | UInt64(bytes[index]) }
        guard var relay = relays[transfer] else { return .drop }
        if now - relay.lastUsed > Self.relayIdle {
            forget(transfer, relay)
            return .drop
        }
        guard let presenter = registrations[relay.presenter]?.address,
              let audience = registrations[relay.audience]?.address else { return .drop }
        let target: SocketAddress
        if source == presenter {
            target = audience
        } else if source == audience {
            target = presenter
        } else {
            return .drop
        }
        guard budget.take(bytes.count, now: now) else {
            overBudget += 1
            return .drop
        }
        relay.lastUsed = now
        relays[transfer] = relay
        relayedBytes += UInt64(bytes.count)
        return .forward(to: target)
    }
}

/// The relay's byte rate for every transfer together, as a token bucket holding 50 ms of
/// it (at least two of the largest datagrams, which loopback paths carry).
struct ByteBudget {
    let rate: UInt64
    private let capacity: Double
    private var credit: Double
    private var updated: Duration?

    init(rate: UInt64) {
        self.rate = rate
        capacity = max(Double(rate) / 20, 2 * 65_536)
        credit = capacity
    }

    mutating func take(_ bytes: Int, now: Duration) -> Bool {
        guard rate > 0 else { return false }
        if let updated, now > updated {
            let (seconds, attoseconds) = (now - updated).components
            credit = min(capacity, credit + (Double(seconds) + Double(attoseconds) / 1e18) * Double(rate))
        }
        updated = now
        guard credit >= Double(bytes) else { return false }
        credit -= Double(bytes)
        return true
    }
}
