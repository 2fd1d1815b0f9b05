import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ToomCore
import ToomSecurity
import ToomTransfer

/// Keeps this client's UDP port registered with the server while it is logged in (spec
/// §12): a REGISTER from the transfer port every 15 seconds (every second until the first
/// answer), which tells the server where the port is seen from outside, lists the
/// client's own addresses, and keeps a NAT's mapping open (most forget an idle one within
/// 30 seconds). Registered, the port can be reached by other clients' hole punching and
/// through the server's relay.
final class Registrar: Sendable {
    private struct State {
        let id: UInt64
        let secret: RendezvousSecret
        let server: SocketAddress
        var number: UInt64 = 0
        var confirmed = false
    }

    static let refresh: Duration = .seconds(15)
    static let retry: Duration = .seconds(1)

    private let state = NIOLockedValueBox<State?>(nil)
    private let task = NIOLockedValueBox<Task<Void, Never>?>(nil)

    /// The server's UDP address once the login gave a registration; the relay is there.
    var server: SocketAddress? { state.withLockedValue { $0?.server } }

    /// Whether the server answered a registration.
    var isRegistered: Bool { state.withLockedValue { $0?.confirmed ?? false } }

    /// An answer from the server on the transfer port; true if the datagram was one.
    func answer(_ bytes: UnsafeRawBufferPointer, from source: SocketAddress) -> Bool {
        guard RendezvousDatagram.isRendezvous(bytes) else { return false }
        state.withLockedValue { state in
            guard let current = state, source == current.server,
                  let answer = RendezvousDatagram.openRegistered(bytes, secret: current.secret),
                  answer.number <= current.number
            else { return }
            state?.confirmed = true
        }
        return true
    }

    /// Starts registering `endpoint`'s port with the server at `server` under the login's
    /// registration id and secret.
    func start(id: UInt64, secret: RendezvousSecret, server: SocketAddress, endpoint: TransferEndpoint) {
        state.withLockedValue { $0 = State(id: id, secret: secret, server: server) }
        let loop = Task { [self] in
            while !Task.isCancelled {
                // The interfaces are read outside the lock: an answer may arrive meanwhile.
                let candidates = Self.localCandidates(port: endpoint.port, ipv6: endpoint.isIPv6)
                let datagram = state.withLockedValue { state -> [UInt8]? in
                    guard state != nil else { return nil }
                    state!.number += 1
                    return RendezvousDatagram.register(id: state!.id, number: state!.number, candidates: candidates,
                                                       secret: state!.secret)
                }
                guard let datagram else { return }
                endpoint.sendDatagram(datagram, to: server)
                try? await Task.sleep(for: isRegistered ? Self.refresh : Self.retry)
            }
        }
        task.withLockedValue { $0 = loop }
    }

    func stop() {
        task.withLockedValue { $0?.cancel() }
    }

    /// This host's own addresses with the transfer port: what a client on the same network
    /// reaches directly. Loopback and link-local addresses are left out.
    static func localCandidates(port: Int, ipv6: Bool) -> [TransferCandidate] {
        guard let devices = try? System.enumerateDevices() else { return [] }
        var candidates: [TransferCandidate] = []
        for device in devices {
            guard let address = device.address, let host = address.ipAddress,
                  let candidate = TransferCandidate(host: host, port: port), candidate.isUsefulElsewhere,
                  ipv6 || !candidate.isIPv6, !candidates.contains(candidate)
            else { continue }
            candidates.append(candidate)
        }
        return Array(candidates.prefix(RendezvousDatagram.maxCandidates))
    }
}
