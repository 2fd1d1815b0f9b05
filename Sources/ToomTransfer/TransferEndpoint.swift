import ToomCore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// One UDP port that sends files and receives announced ones, several at a time in both
/// directions (docs/TRANSFER.md). Thread-safe: every call hops to the port's event loop.
public final class TransferEndpoint: Sendable {
    let engine: TransferEngine
    public let localAddress: SocketAddress
    /// A dual-stack IPv6 socket, which reaches IPv4 addresses in their mapped form.
    public var isIPv6: Bool { if case .v6 = localAddress { return true } else { return false } }

    private init(engine: TransferEngine, localAddress: SocketAddress) {
        self.engine = engine
        self.localAddress = localAddress
    }

    /// An endpoint nobody holds any more closes its port, as `close` does.
    deinit {
        let engine = self.engine
        engine.eventLoop.execute { _ = engine.close() }
    }

    /// Binds the UDP port. `events` hears what becomes of incoming transfers, on the
    /// port's event loop, before `waitUntilIdle` returns. `addHandlers` may put handlers
    /// in front of the transfer handler (the benchmark uses it to lose datagrams).
    public static func bind(host: String, port: Int, configuration: TransferConfiguration = .init(),
                            group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                            threadPool: NIOThreadPool = .singleton,
                            events: @escaping @Sendable (IncomingEvent) -> Void = { _ in },
                            foreign: (@Sendable (UnsafeRawBufferPointer, SocketAddress) -> Bool)? = nil,
                            addHandlers: (@Sendable (Channel) throws -> Void)? = nil) async throws -> TransferEndpoint {
        let ipv6 = (try? SocketAddress(ipAddress: host, port: port)).map { if case .v6 = $0 { true } else { false } } ?? false
        return try await open(configuration: configuration, group: group, threadPool: threadPool, events: events,
                              foreign: foreign, ipv6: ipv6, addHandlers: addHandlers) { $0.bind(host: host, port: port) }
    }

    /// Binds `port` on every interface, IPv6 and IPv4 together (`::`), or on IPv4 alone
    /// where the system has no IPv6.
    public static func bindDualStack(port: Int, configuration: TransferConfiguration = .init(),
                                     foreign: (@Sendable (UnsafeRawBufferPointer, SocketAddress) -> Bool)? = nil,
                                     events: @escaping @Sendable (IncomingEvent) -> Void = { _ in })
        async throws -> TransferEndpoint {
        do {
            return try await bind(host: "::", port: port, configuration: configuration, events: events, foreign: foreign)
        } catch let error as IOError where error.errnoCode == EAFNOSUPPORT || error.errnoCode == EADDRNOTAVAIL {
            return try await bind(host: "0.0.0.0", port: port, configuration: configuration, events: events, foreign: foreign)
        }
    }

    /// The same on a UDP socket the caller bound (the benchmark makes it in another
    /// network namespace); the endpoint owns it from now on.
    public static func adopt(socket: NIOBSDSocket.Handle, configuration: TransferConfiguration = .init(),
                             group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                             threadPool: NIOThreadPool = .singleton,
                             events: @escaping @Sendable (IncomingEvent) -> Void = { _ in },
                             addHandlers: (@Sendable (Channel) throws -> Void)? = nil) async throws -> TransferEndpoint {
        try await open(configuration: configuration, group: group, threadPool: threadPool, events: events,
                       foreign: nil, ipv6: false, addHandlers: addHandlers) { $0.withBoundSocket(socket) }
    }

    private static func open(configuration: TransferConfiguration, group: any EventLoopGroup, threadPool: NIOThreadPool,
                             events: @escaping @Sendable (IncomingEvent) -> Void,
                             foreign: (@Sendable (UnsafeRawBufferPointer, SocketAddress) -> Bool)?, ipv6: Bool,
                             addHandlers: (@Sendable (Channel) throws -> Void)?,
                             channel open: (DatagramBootstrap) -> EventLoopFuture<Channel>) async throws -> TransferEndpoint {
        let eventLoop = group.next()
        let offload = configuration.segmentationOffload
        let receiveOffload = offload && System.supportsUDPReceiveOffload
        let engine = TransferEngine(configuration: configuration, eventLoop: eventLoop, threadPool: threadPool,
                                    events: events, foreign: foreign,
                                    datagramsPerWrite: offload && System.supportsUDPSegmentationOffload ? 44 : 1)
        // One read holds the largest datagram, or with GRO a 64 KiB train of smaller ones.
        let slot = 65536
        let vector = 8
        // No SO_REUSEADDR: on UDP it would let a second endpoint bind the same port (even
        // one picked for port 0) and take the first one's datagrams.
        let bootstrap = DatagramBootstrap(group: eventLoop)
            .channelOption(.socketOption(.so_rcvbuf), value: configuration.socketBufferBytes)
            .channelOption(.socketOption(.so_sndbuf), value: configuration.socketBufferBytes)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: slot * vector))
            .channelOption(.datagramVectorReadMessageCount, value: vector)
            .channelOption(.maxMessagesPerRead, value: 4)
            .channelOption(.writeBufferWaterMark, value: .init(low: 1 << 20, high: 2 << 20))
            // Never fragment: a datagram too large for the path is lost (or refused at once
            // by a small local interface), which is what the size probes rely on.
            .channelOption(ChannelOptions.Types.SocketOption(level: NIOBSDSocket.OptionLevel.ip,
                                                             name: NIOBSDSocket.Option(rawValue: IP_MTU_DISCOVER)),
                           value: Int(IP_PMTUDISC_PROBE))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if ipv6 {
                        // The same for IPv6 destinations of a dual-stack socket.
                        try channel.syncOptions?.setOption(
                            ChannelOptions.Types.SocketOption(level: NIOBSDSocket.OptionLevel.ipv6,
                                                              name: NIOBSDSocket.Option(rawValue: IPV6_MTU_DISCOVER)),
                            value: Int(IPV6_PMTUDISC_PROBE))
                    }
                    if receiveOffload {
                        try channel.syncOptions?.setOption(.datagramReceiveOffload, value: true)
                        try channel.syncOptions?.setOption(.datagramReceiveSegmentSize, value: true)
                    }
                    try addHandlers?(channel)
                    try channel.pipeline.syncOperations.addHandler(TransferHandler(engine: engine))
                }
            }
        let channel = try await open(bootstrap).get()
        return TransferEndpoint(engine: engine, localAddress: channel.localAddress!)
    }

    public var port: Int { localAddress.port ?? 0 }

    /// Announces an incoming transfer. Returns a one-line problem instead if either name
    /// is not a plain file name.
    public func expect(_ offer: IncomingOffer) -> String? {
        if let problem = TransferName.problem(offer.fileName) ?? TransferName.problem(offer.saveAs) { return problem }
        engine.eventLoop.execute { [engine] in engine.addOffer(offer) }
        return nil
    }

    /// Starts sending `file` to the endpoint at `address`, which expects `token` and
    /// holds `key`. `resuming` hears, on the port's event loop, how many bytes the
    /// receiver already had when it picks up an earlier attempt.
    public func send(_ file: SourceFile, name: String, token: TransferToken, key: TransferKey, to address: SocketAddress,
                     resuming: @escaping @Sendable (UInt64) -> Void = { _ in }) -> OutgoingTransfer {
        send(file, name: name, token: token, key: key, candidates: [address], relay: nil, resuming: resuming)
    }

    /// The same to a receiver that may be at any of `candidates`, or reached through the
    /// server's `relay` when none answers (spec §12). The first to answer is the path.
    public func send(_ file: SourceFile, name: String, token: TransferToken, key: TransferKey,
                     candidates: [SocketAddress], relay: SocketAddress?,
                     resuming: @escaping @Sendable (UInt64) -> Void = { _ in }) -> OutgoingTransfer {
        let promise = engine.eventLoop.makePromise(of: TransferSummary.self)
        let handle = OutgoingTransfer(name: name, size: file.size, outcome: promise.futureResult, resuming: resuming)
        engine.eventLoop.execute { [engine] in
            engine.startSender(file: file, name: name, token: token, key: key, candidates: candidates, relay: relay,
                               handle: handle, promise: promise)
        }
        return handle
    }

    /// Sends one datagram of another protocol from this port (a registration with the server).
    public func sendDatagram(_ bytes: [UInt8], to address: SocketAddress) {
        engine.eventLoop.execute { [engine] in
            guard let channel = engine.channel else { return }
            var buffer = channel.allocator.buffer(capacity: bytes.count)
            buffer.writeBytes(bytes)
            channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: buffer), promise: nil)
        }
    }

    /// Datagrams dropped because they belonged to no announced transfer, came from the
    /// wrong address or were malformed.
    public var unexpectedDatagrams: Int { engine.unexpected.withLockedValue { $0 } }

    /// Datagrams of a known transfer dropped because they failed authentication (forged
    /// or altered) or had been seen before (replayed).
    public var rejectedDatagrams: Int { engine.rejected.withLockedValue { $0 } }

    /// Transfers running now, in both directions.
    public func activeTransfers() async -> Int {
        (try? await engine.eventLoop.submit { [engine] in engine.activeCount }.get()) ?? 0
    }

    /// Completes when no transfer runs (each ends by itself, at the latest after its timeout).
    public func waitUntilIdle() async {
        try? await engine.eventLoop.flatSubmit { [engine] in engine.idleFuture() }.get()
    }

    /// Cancels what still runs (peers are told), removes temporary files, closes the port.
    public func close() async {
        try? await engine.eventLoop.flatSubmit { [engine] in engine.close() }.get()
    }
}

/// The endpoint's state, touched only on its event loop.
final class TransferEngine: @unchecked Sendable {
    private enum Incoming {
        case active(Receiver)
        /// Finished or refused: kept a while to answer the sender's repeats.
        case closed(reply: TransferPacket, outbox: Outbox, peer: SocketAddress, until: Int64)
    }

    /// Receivers send an ACK at least this often, in segments, within a burst of reads.
    static let acknowledgeEvery = 128
    static let tickInterval = TimeAmount.milliseconds(5)
    /// A GSO train's bytes stay within what one IP packet could hold: 44 datagrams of 1,472.
    static let maxTrainBytes = 44 * TransferPacket.ethernetDatagram

    let configuration: TransferConfiguration
    let eventLoop: any EventLoop
    let threadPool: NIOThreadPool
    /// Datagrams per GSO send; 1 once the kernel refused a GSO send.
    private(set) var datagramsPerWrite: Int
    /// Memory for the blocks of every transfer of this endpoint.
    let blocks: BlockPool
    let unexpected = NIOLockedValueBox(0)
    let rejected = NIOLockedValueBox(0)
    private var socketReceiveBytes = 0
    private(set) var channel: Channel?
    private let events: @Sendable (IncomingEvent) -> Void
    /// Datagrams of another protocol on this port; true when one was taken.
    private let foreign: (@Sendable (UnsafeRawBufferPointer, SocketAddress) -> Bool)?
    private var senders: [UInt64: Sender] = [:]
    private var finishedSenders: [UInt64: Int64] = [:]
    private var incoming: [UInt64: Incoming] = [:]
    private var offers: [UInt64: (offer: IncomingOffer, expires: Int64)] = [:]
    /// Offers whose sender's NAT needs opening: when the next PUNCH goes, and how many went.
    private var punching: [UInt64: (next: Int64, sent: Int, cipher: PacketCipher)] = [:]
    /// Five a second for five seconds, while the sender tries direct paths alone.
    static let punchInterval: Int64 = 200_000_000
    static let maxPunches = 25
    /// STARTs that came before their offer (the offer travels another way and may be
    /// late): kept briefly, and counted as unexpected unless their offer comes.
    private var earlyStarts: [UInt64: (datagram: [UInt8], source: SocketAddress, expires: Int64)] = [:]
    static let earlyStartWait: Int64 = 500_000_000
    static let maxEarlyStarts = 64
    private var receiverCount = 0
    private var waitingForAck: [Receiver] = []
    private var needsFlush = false
    private var unflushedWrites = 0
    private var timer: RepeatedTask?
    private var idleWaiters: [EventLoopPromise<Void>] = []
    private var closed = false

    init(configuration: TransferConfiguration, eventLoop: any EventLoop, threadPool: NIOThreadPool,
         events: @escaping @Sendable (IncomingEvent) -> Void,
         foreign: (@Sendable (UnsafeRawBufferPointer, SocketAddress) -> Bool)? = nil, datagramsPerWrite: Int) {
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.threadPool = threadPool
        self.events = events
        self.foreign = foreign
        self.datagramsPerWrite = datagramsPerWrite
        // Enough for a sender and a receiver at once, which is what the rings hold.
        // A block holds at least one segment, however small `blockBytes` was set.
        blocks = BlockPool(blockBytes: max(configuration.blockBytes,
                                           TransferPacket.segmentPayload(datagram: TransferPacket.maxDatagram)),
                           limit: configuration.sendBufferBlocks + 1 + configuration.receiveBufferBlocks)
    }

    func attach(_ channel: Channel) {
        self.channel = channel
        socketReceiveBytes = (try? channel.syncOptions?.getOption(ChannelOptions.socketOption(.so_rcvbuf))) ?? 0
    }

    var allocator: ByteBufferAllocator { channel?.allocator ?? ByteBufferAllocator() }
    var isWritable: Bool { channel?.isWritable ?? false }
    var activeCount: Int { senders.count + receiverCount }

    /// Bytes one incoming transfer may have in flight: its share of the socket's receive
    /// buffer, so that several senders together do not overflow it. The kernel reports
    /// twice the payload room it grants (its bookkeeping overhead).
    var receiveBudgetBytes: Int {
        let room = max(socketReceiveBytes / 2, 256 * 1024)
        return max(room / max(receiverCount, 1), 64 * TransferPacket.ethernetDatagram)
    }

    // MARK: Requests from the API

    func addOffer(_ offer: IncomingOffer) {
        guard !closed else { return }
        let now = Clock.now()
        offers[offer.token.id] = (offer, now + configuration.offerLifetime.nanoseconds)
        if !offer.punchTargets.isEmpty {
            punching[offer.token.id] = (now, 0, PacketCipher(key: offer.key, encrypts: configuration.encryption))
            punch(now: now)
        }
        startTicking()
        if let early = earlyStarts.removeValue(forKey: offer.token.id) {
            unexpected.withLockedValue { $0 -= 1 }
            early.datagram.withUnsafeBytes { bytes in
                if let header = TransferPacket.header(bytes) { start(bytes, header, from: early.source, now: now) }
            }
            flush()
        }
    }

    func startSender(file: SourceFile, name: String, token: TransferToken, key: TransferKey, candidates: [SocketAddress],
                     relay: SocketAddress?, handle: OutgoingTransfer, promise: EventLoopPromise<TransferSummary>) {
        guard !closed, senders[token.id] == nil else {
            promise.fail(TransferFailure(closed ? "the transfer port is closed" : "that transfer is already running"))
            return
        }
        let now = Clock.now()
        guard !candidates.isEmpty || relay != nil else {
            promise.fail(TransferFailure("the receiver has no address to send to"))
            return
        }
        let paths = PathFinder(direct: candidates, relay: relay, timeout: configuration.timeout.nanoseconds, now: now)
        let sender = Sender(engine: self, file: file, name: name, token: token, key: key, paths: paths,
                            handle: handle, promise: promise, now: now)
        senders[token.id] = sender
        blocks.keep(true)
        startTicking()
        sender.start(now: now)
        flush()
    }

    func idleFuture() -> EventLoopFuture<Void> {
        if activeCount == 0 { return eventLoop.makeSucceededVoidFuture() }
        let promise = eventLoop.makePromise(of: Void.self)
        idleWaiters.append(promise)
        return promise.futureResult
    }

    func close() -> EventLoopFuture<Void> {
        guard !closed else { return eventLoop.makeSucceededVoidFuture() }
        for sender in Array(senders.values) { sender.cancel("the sender closed its transfer port") }
        for case .active(let receiver) in Array(incoming.values) {
            receiver.fail("the receiver closed its transfer port", tellSender: true)
        }
        closed = true
        offers = [:]
        punching = [:]
        earlyStarts = [:]
        flush()
        timer?.cancel()
        timer = nil
        return channel?.close() ?? eventLoop.makeSucceededVoidFuture()
    }

    // MARK: Datagrams in

    func receive(_ envelope: AddressedEnvelope<ByteBuffer>) {
        let now = Clock.now()
        let source = envelope.remoteAddress
        var step = envelope.metadata?.segmentSize ?? envelope.data.readableBytes
        if step <= 0 { step = envelope.data.readableBytes }
        envelope.data.withUnsafeReadableBytes { all in
            var offset = 0
            // The receiver whose address this envelope already matched.
            var verified: Receiver?
            var heardFrom: Receiver?
            while offset < all.count {
                let end = min(offset + step, all.count)
                let datagram = UnsafeRawBufferPointer(rebasing: all[offset..<end])
                offset = end
                guard let header = TransferPacket.header(datagram) else {
                    if foreign?(datagram, source) != true { countUnexpected() }
                    continue
                }
                if let data = TransferPacket.dataHeader(datagram, header) {
                    let receiver: Receiver
                    if let verified, verified.id == header.id {
                        receiver = verified
                    } else {
                        guard let found = activeReceiver(header.id, from: source, now: now, isData: true) else { continue }
                        receiver = found
                        verified = found
                    }
                    guard receiver.data(data, datagram: datagram, now: now) else {
                        countRejected()
                        continue
                    }
                    // Once per envelope: every datagram in it came from the same address.
                    if heardFrom !== receiver {
                        receiver.heard(from: source)
                        heardFrom = receiver
                    }
                    if receiver.unacknowledged >= Self.acknowledgeEvery {
                        send(receiver.makeAck(), for: receiver)
                        flush()
                    } else if receiver.ackPending {
                        queueAck(receiver)
                    }
                } else {
                    handle(datagram, header, from: source, now: now)
                }
            }
        }
    }

    /// After a burst of reads: one ACK per receiver that got something.
    func readComplete() {
        for receiver in waitingForAck where receiver.ackPending && !receiver.isOver {
            send(receiver.makeAck(), for: receiver)
        }
        waitingForAck.removeAll(keepingCapacity: true)
        flush()
    }

    private func queueAck(_ receiver: Receiver) {
        if !waitingForAck.contains(where: { $0 === receiver }) { waitingForAck.append(receiver) }
    }

    private func handle(_ datagram: UnsafeRawBufferPointer, _ header: TransferPacket.Header, from source: SocketAddress,
                        now: Int64) {
        switch header.kind.direction {
        case .toPresenter:
            // A receiver opening its NAT: nothing to read.
            // It may come before the server's reply that starts the sender, so it is never counted.
            if header.kind == .punch { return }
            guard let sender = sender(header.id, from: source) else { return }
            guard let packet = sender.open(datagram, header) else { return countRejected() }
            switch packet {
            case .accept(let echo, let resumeFrom, let window):
                sender.accepted(from: source, echo: echo, resumeFrom: resumeFrom, window: window, now: now)
            case .ack(let ack): sender.acknowledged(ack, now: now)
            case .done: sender.done(now: now)
            case .reject(let reason): sender.rejected(reason)
            case .probeAck(let size): sender.probeAcknowledged(size: size, now: now)
            default: countUnexpected()
            }
        case .toAudience:
            if header.kind == .start { return start(datagram, header, from: source, now: now) }
            // Probes travel with START: those that overtake it (or its offer) go again later.
            if header.kind == .probe, incoming[header.id] == nil,
               offers[header.id] != nil || earlyStarts[header.id] != nil { return }
            guard let receiver = activeReceiver(header.id, from: source, now: now, isData: false) else { return }
            guard let packet = receiver.open(datagram, header) else { return countRejected() }
            receiver.heard(from: source)
            switch packet {
            case .ping(let timestamp, let segmentSize):
                receiver.ping(number: header.number, timestamp: timestamp, segmentSize: segmentSize, now: now)
                queueAck(receiver)
            case .finish(let timestamp, let segmentSize):
                receiver.finish(number: header.number, timestamp: timestamp, segmentSize: segmentSize, now: now)
                if !receiver.isOver { queueAck(receiver) }
            case .cancel(let reason):
                receiver.cancelled(reason)
            case .probe(let size):
                // Answered only if it arrived at the size it claims.
                if Int(size) == datagram.count { send(.probeAck(size: size), for: receiver) }
            default:
                countUnexpected()
            }
        }
    }

    /// The running receiver for `id` if `source` is its sender. Repeats to a finished
    /// transfer get its final answer again; anything else is counted and dropped.
    private func activeReceiver(_ id: UInt64, from source: SocketAddress, now: Int64, isData: Bool) -> Receiver? {
        switch incoming[id] {
        case .active(let receiver)? where receiver.knows(source):
            return receiver
        case .closed(let reply, let outbox, let peer, let until)? where peer == source:
            // Answer repeats, but not every datagram of a window still in flight.
            if !isData || until - now < configuration.timeout.nanoseconds - 10_000_000 {
                send(reply, id: id, outbox: outbox, to: peer)
                incoming[id] = .closed(reply: reply, outbox: outbox, peer: peer,
                                       until: now + configuration.timeout.nanoseconds)
            }
            return nil
        default:
            countUnexpected()
            return nil
        }
    }

    private func sender(_ id: UInt64, from source: SocketAddress) -> Sender? {
        // Another path's late answer to a known transfer is not news.
        if let sender = senders[id] { return sender.accepts(source) ? sender : nil }
        if finishedSenders[id] == nil { countUnexpected() }
        return nil
    }

    private func countUnexpected() { unexpected.withLockedValue { $0 += 1 } }
    private func countRejected() { rejected.withLockedValue { $0 += 1 } }

    // MARK: START

    private func start(_ datagram: UnsafeRawBufferPointer, _ header: TransferPacket.Header, from source: SocketAddress,
                       now: Int64) {
        let id = header.id
        if case .active(let receiver)? = incoming[id] {
            // A repeated START (the ACCEPT was lost), or one that came another way (the
            // sender tries every path at once), is answered there; the sender's choice of
            // path is where its next datagrams come from.
            guard case .start(let start)? = receiver.open(datagram, header), start.token == receiver.offer.token
            else { return receiver.knows(source) ? countRejected() : countUnexpected() }
            receiver.started(from: source)
            send(receiver.acceptPacket(echo: start.timestamp), id: receiver.id, outbox: receiver.outbox, to: source)
            return
        }
        if incoming[id] != nil {
            _ = activeReceiver(id, from: source, now: now, isData: false)
            return
        }
        guard let entry = offers[id] else {
            if earlyStarts[id] == nil, earlyStarts.count < Self.maxEarlyStarts {
                earlyStarts[id] = (Array(datagram), source, now + Self.earlyStartWait)
                startTicking()
            }
            countUnexpected()
            return
        }
        let offer = entry.offer
        let cipher = PacketCipher(key: offer.key, encrypts: configuration.encryption)
        guard case .start(let start)? = TransferPacket.open(datagram, header, cipher: cipher),
              start.token == offer.token
        else { return countRejected() }
        offers[id] = nil
        punching[id] = nil
        func refuse(_ reason: String) {
            let outbox = Outbox(cipher: cipher)
            incoming[id] = .closed(reply: .reject(reason: reason), outbox: outbox, peer: source,
                                   until: now + configuration.timeout.nanoseconds)
            send(.reject(reason: reason), id: id, outbox: outbox, to: source)
            events(.refused(offer, reason: reason))
        }
        if start.name != offer.fileName { return refuse("the file name differs from the one announced") }
        if let problem = TransferName.problem(start.name) { return refuse(problem) }
        if let limit = configuration.maxIncomingSize, start.size > limit {
            return refuse("the file (\(ByteCount.describe(start.size))) is larger than the \(ByteCount.describe(limit)) this receiver accepts")
        }
        // ".<name>.part-record" must fit a file system's 255-byte names.
        if offer.saveAs.utf8.count > 240 { return refuse("the file name is too long to be saved") }
        for case .active(let other) in incoming.values where other.offer.saveAs == offer.saveAs {
            return refuse("\(offer.saveAs) is already being received")
        }
        let receiver: Receiver
        do {
            receiverCount += 1
            blocks.keep(true)
            receiver = try Receiver(engine: self, offer: offer, start: start, peer: source, now: now)
        } catch {
            receiverCount -= 1
            return refuse(error.reason)
        }
        _ = receiver.open(datagram, header)  // Marks START's number as seen.
        incoming[id] = .active(receiver)
        send(receiver.acceptPacket(echo: start.timestamp), for: receiver)
    }

    // MARK: Outcomes

    func received(_ receiver: Receiver, bytes: UInt64) {
        events(.received(receiver.offer, bytes: bytes))
        close(receiver, reply: .done, tellSender: true)
    }

    func failed(_ receiver: Receiver, reason: String, tellSender: Bool) {
        events(.failed(receiver.offer, reason: reason))
        close(receiver, reply: .reject(reason: reason), tellSender: tellSender)
    }

    private func close(_ receiver: Receiver, reply: TransferPacket, tellSender: Bool) {
        guard case .active(let current)? = incoming[receiver.id], current === receiver else { return }
        incoming[receiver.id] = .closed(reply: reply, outbox: receiver.outbox, peer: receiver.peer,
                                        until: Clock.now() + configuration.timeout.nanoseconds)
        receiverCount -= 1
        if tellSender { send(reply, for: receiver) }
        wakeIdleWaiters()
    }

    func remove(_ sender: Sender) {
        guard senders[sender.id] === sender else { return }
        senders[sender.id] = nil
        finishedSenders[sender.id] = Clock.now() + configuration.timeout.nanoseconds
        wakeIdleWaiters()
    }

    private func wakeIdleWaiters() {
        guard activeCount == 0 else { return }
        blocks.keep(false)
        let waiters = idleWaiters
        idleWaiters = []
        for waiter in waiters { waiter.succeed() }
    }

    // MARK: Datagrams out

    /// Seals and sends one datagram that is not DATA.
    func send(_ packet: TransferPacket, id: UInt64, number: UInt64, cipher: PacketCipher, to address: SocketAddress) {
        guard let channel else { return }
        var buffer = channel.allocator.buffer(capacity: 128)
        packet.seal(id: id, number: number, cipher: cipher, into: &buffer)
        channel.write(AddressedEnvelope(remoteAddress: address, data: buffer), promise: nil)
        needsFlush = true
    }

    private func send(_ packet: TransferPacket, id: UInt64, outbox: Outbox, to address: SocketAddress) {
        send(packet, id: id, number: outbox.takeNumber(), cipher: outbox.cipher, to: address)
    }

    private func send(_ packet: TransferPacket, for receiver: Receiver) {
        send(packet, id: receiver.id, outbox: receiver.outbox, to: receiver.peer)
    }

    /// Writes a train of `datagrams` datagrams of `segmentSize` bytes (the last may be
    /// shorter) as one GSO send.
    func write(_ train: ByteBuffer, datagrams: Int, segmentSize: Int, to address: SocketAddress) {
        guard let channel else { return }
        let metadata = datagrams > 1
            ? AddressedEnvelope<ByteBuffer>.Metadata(ecnState: .transportNotCapable, packetInfo: nil, segmentSize: segmentSize)
            : nil
        channel.write(AddressedEnvelope(remoteAddress: address, data: train, metadata: metadata), promise: nil)
        needsFlush = true
        unflushedWrites += 1
        // Hand the kernel work early rather than after the whole window.
        if unflushedWrites >= 16 { flush() }
    }

    func stopSegmentationOffload() { datagramsPerWrite = 1 }

    func flush() {
        guard needsFlush, let channel else { return }
        needsFlush = false
        unflushedWrites = 0
        channel.flush()
    }

    func acknowledgeNow(_ receiver: Receiver) {
        send(receiver.makeAck(), for: receiver)
    }

    func writable() {
        let now = Clock.now()
        for sender in Array(senders.values) { sender.pump(now: now) }
        flush()
    }

    // MARK: Timers

    /// PUNCHes that are due: each offer's sender's addresses, until its START arrives.
    private func punch(now: Int64) {
        for (id, state) in punching where now >= state.next {
            guard let offer = offers[id]?.offer, state.sent < Self.maxPunches else {
                punching[id] = nil
                continue
            }
            for (index, target) in offer.punchTargets.enumerated() {
                let number = TransferPacket.punchNumbers + UInt64(state.sent * TransferCandidate.maxListed * 2 + index)
                send(.punch, id: id, number: number, cipher: state.cipher, to: target)
            }
            punching[id] = (now + Self.punchInterval, state.sent + 1, state.cipher)
        }
    }

    private func startTicking() {
        guard timer == nil, !closed else { return }
        timer = eventLoop.scheduleRepeatedTask(initialDelay: Self.tickInterval, delay: Self.tickInterval) { [self] _ in
            tick()
        }
    }

    private func tick() {
        let now = Clock.now()
        for sender in Array(senders.values) { sender.tick(now: now) }
        for case .active(let receiver) in Array(incoming.values) { receiver.tick(now: now) }
        for (id, entry) in incoming {
            if case .closed(_, _, _, let until) = entry, until <= now { incoming[id] = nil }
        }
        offers = offers.filter { $0.value.expires > now }
        punch(now: now)
        earlyStarts = earlyStarts.filter { $0.value.expires > now }
        finishedSenders = finishedSenders.filter { $0.value > now }
        flush()
        if senders.isEmpty, incoming.isEmpty, offers.isEmpty, finishedSenders.isEmpty, earlyStarts.isEmpty, punching.isEmpty {
            timer?.cancel()
            timer = nil
        }
    }
}

/// Feeds the engine from the channel.
final class TransferHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let engine: TransferEngine

    init(engine: TransferEngine) { self.engine = engine }

    func handlerAdded(context: ChannelHandlerContext) { engine.attach(context.channel) }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        engine.receive(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) { engine.readComplete() }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { engine.writable() }
    }

    /// ICMP errors (port unreachable) arrive here on a socket that stays open: the
    /// transfer's own timeout decides, so they are ignored. A send the kernel refused
    /// for its size or shape is lost like any datagram; if it was a GSO train, GSO goes.
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let error = error as? IOError, error.errnoCode == EINVAL || error.errnoCode == EIO {
            engine.stopSegmentationOffload()
        }
    }
}
