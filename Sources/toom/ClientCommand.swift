import ArgumentParser
import Foundation
import ToomClient
import ToomSecurity
import ToomTransfer

struct ClientCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "client",
        abstract: "Log in to a TOOM server and chat.",
        discussion: """
        Asks for a username and password, then reads commands: BCM, ATU, SRB, SRM, RDM, OUT, UPD. \
        With standard input from a pipe it reads the same dialogue one line at a time and logs out \
        at end of input, after its running file transfers end. On a terminal it offers line editing, a \
        history of commands kept in ~/.toom_history, and tab completion of commands, user names and \
        file names. On a terminal it also shows what others say as they say it (live delivery): each new \
        broadcast, each message in your rooms and each room built with you, printed above the prompt with \
        what you are typing left intact; --no-live turns that off. With standard input from a pipe the \
        client is live only with --live, and prints each delivery as a line of its own, never inside a \
        reply. Files sent with UPD are saved in the \
        working directory as <presenter>_<file>; an interrupted one resumes when the same UPD is \
        issued again. Exit status: 0 after logging out, 1 when the login \
        is refused, 2 when the UDP port cannot be used, 3 when the server cannot be reached or the \
        connection is lost, 4 when the server ends the session (shutdown, operator, or a client too slow to \
        read its deliveries), 5 when the server's TLS certificate is not the one remembered or pinned. The \
        connection is TLS: the first connection to a server prints its certificate fingerprint on standard \
        error and remembers it in ~/.toom/known_servers; a later connection to a server with another \
        certificate stops before the password is sent.
        """
    )

    @Argument(help: ArgumentHelp("Address of the server: IPv4, IPv6 (::1) or a host name, tried at every address it resolves to.",
                                 valueName: "server_ip"))
    var serverAddress: String

    @Argument(help: ArgumentHelp("TCP port of the server.", valueName: "server_port"))
    var serverPort: Int

    @Argument(help: ArgumentHelp("UDP port this client receives files on (0 picks a free one).", valueName: "udp_port"))
    var udpPort: Int

    @Option(help: ArgumentHelp("Refuse incoming files larger than this many bytes (suffixes K, M, G, T: 10M, 2G).",
                               valueName: "bytes"))
    var maxUpload: String?

    @Option(help: ArgumentHelp("Seconds a file transfer waits for the other side before it fails.", valueName: "seconds"))
    var transferTimeout: Double = 10

    @Option(help: ArgumentHelp("Hours an interrupted incoming transfer's partial file is kept for a resume; older ones are removed when the client starts.",
                               valueName: "hours"))
    var keepPartial: Double = 24

    @Option(help: ArgumentHelp("UDP port other users send files to, when a port forward or relay in front of this client maps it to udp_port (the port is then not registered with the server).",
                               valueName: "port"))
    var publicUDPPort: Int?

    @Flag(inversion: .prefixedNo,
          help: "Print what others say as it arrives (default: on when standard input is a terminal, off for a pipe).")
    var live: Bool?

    @Option(help: ArgumentHelp("Accept only the server certificate with this fingerprint, as the server prints it on start, instead of ~/.toom/known_servers.",
                               valueName: "SHA256:..."))
    var fingerprint: String?

    @Flag(help: "Speak the original protocol without TLS: the password and messages cross the network in the clear.")
    var plaintext = false

    func validate() throws {
        if let fingerprint, !Fingerprint.isValid(fingerprint) {
            throw ValidationError("Invalid fingerprint: '\(fingerprint)'. It must be SHA256: followed by 43 characters of base64, as the server prints it")
        }
        if plaintext, fingerprint != nil {
            throw ValidationError("--plaintext and --fingerprint exclude each other: a fingerprint needs TLS")
        }
        guard !serverAddress.isEmpty, !serverAddress.contains(where: { $0 == " " || $0.isNewline }) else {
            throw ValidationError("Invalid server address: '\(serverAddress)'")
        }
        guard (1...65535).contains(serverPort) else {
            throw ValidationError("Invalid server port: \(serverPort). It must be an integer from 1 to 65535")
        }
        guard (0...65535).contains(udpPort) else {
            throw ValidationError("Invalid UDP port: \(udpPort). It must be an integer from 0 to 65535")
        }
        if let maxUpload, ByteCount.parse(maxUpload) == nil {
            throw ValidationError("Invalid maximum upload size: '\(maxUpload)'. Use a number of bytes, optionally with K, M, G or T, e.g. 10M")
        }
        guard transferTimeout > 0, transferTimeout <= 3600 else {
            throw ValidationError("Invalid transfer timeout: \(transferTimeout). It must be more than 0 and at most 3600 seconds")
        }
        guard keepPartial >= 0, keepPartial <= 100_000 else {
            throw ValidationError("Invalid partial-file age: \(keepPartial). It must be from 0 to 100000 hours")
        }
        if let publicUDPPort, !(1...65535).contains(publicUDPPort) {
            throw ValidationError("Invalid public UDP port: \(publicUDPPort). It must be an integer from 1 to 65535")
        }
    }

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        // Partial files of interrupted incoming transfers live in the working directory.
        TransferEndpoint.removeExpiredPartials(in: ".", olderThan: keepPartial * 3600)
        let client = ChatClient(configuration: .init(
            serverHost: serverAddress, serverPort: serverPort, udpPort: udpPort, publicUDPPort: publicUDPPort,
            maxUpload: maxUpload.flatMap(ByteCount.parse),
            transferTimeout: .nanoseconds(Int64(transferTimeout * 1e9)),
            live: live ?? (isatty(0) == 1),
            security: plaintext ? .plaintext : fingerprint.map { .pinned($0) } ?? .trustOnFirstUse),
            input: ChatClient.standardInput())
        let status = await client.run()
        if status != .ok { throw ExitCode(status.rawValue) }
    }
}
