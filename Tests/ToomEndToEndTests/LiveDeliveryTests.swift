import Foundation
import Testing
import ToomCore
import ToomTestSupport

/// Spec §8 with real clients: what a live client prints in a pipe and on a terminal, and
/// that a client that did not ask gets nothing.
@Suite struct LiveDeliveryTests {
    /// A server, checked to grant live delivery: a server that stopped granting it fails the
    /// test rather than skip it.
    func liveServer() async throws -> TestServer {
        let server = try await TestServer()
        try #require(try grantsLive(server), "the server does not grant live delivery")
        return server
    }

    @Test func aPipedClientWithLivePrintsEachDeliveryAsALine() async throws {
        let server = try await liveServer()
        let yoda = try await server.login("yoda", extra: ["--live"])
        let luke = try await server.login("luke")  // a pipe without --live: not live
        let hans = try await server.login("hans", extra: ["--live"])

        #expect(try await hans.command("BCM hello; all")[0].hasPrefix("Broadcast message, #1 broadcast at "))
        let broadcast = try await yoda.expect(" broadcast at ")
        #expect(broadcast.hasSuffix("#1; hans: \"hello; all\" broadcast at "))
        try await yoda.expect(".\n")

        #expect(try await hans.command("SRB yoda luke") == ["Separate chat room has been created, room ID: 1, users in this room: hans, yoda, luke"])
        try await yoda.expect("Separate chat room has been created, room ID: 1, users in this room: hans, yoda, luke\n")
        _ = try await hans.command("SRM 1 in the room")
        try await yoda.expect("room-1: #1; hans: \"in the room\" issued at ")

        // The sender gets no copy; luke gets nothing unasked, only his replies.
        #expect(try await luke.command("RDM b 1 Jan 2020 00:00:00").count == 1)
        #expect(!luke.stdout.contains("room-1: #1;"))
        #expect(!luke.stdout.contains("users in this room: hans, yoda, luke"))
        #expect(!hans.stdout.contains("#1; hans: \"hello; all\" broadcast at"))
        let deliveries = yoda.lines.filter { matches($0, "#1; hans: \"hello; all\" broadcast at " + timestampPattern + #"\."#) }
        #expect(deliveries.count == 1)
        #expect(yoda.lines.contains { matches($0, "room-1: #1; hans: \"in the room\" issued at " + timestampPattern + #"\."#) })
    }

    @Test func aDeliveryNeverComesBetweenTheLinesOfAReply() async throws {
        let server = try await liveServer()
        let yoda = try await server.login("yoda", extra: ["--live"])
        let hans = try await server.login("hans", extra: ["--live"])
        _ = try await hans.command("SRB yoda")
        _ = try await hans.command("SRM 1 seed")
        try await yoda.expect("room-1: #1; hans: \"seed\" issued at ")

        // yoda reads the room back, again and again, while hans writes to it.
        let count = 60
        for round in 0..<count {
            hans.send("SRM 1 m\(round)")
            yoda.send("RDM s 1 Jan 2020 00:00:00")
        }
        try await hans.expect("Separate room message, #\(count + 1) issued at ")
        try await eventually("every reply and delivery at yoda") {
            let out = yoda.stdout
            return out.components(separatedBy: Command.prompt).count == count + 2
                && out.contains("room-1: #\(count + 1); hans: \"m\(count - 1)\" issued at ")
        }

        // Between two prompts: deliveries, then one reply (its header and entries unbroken), then deliveries.
        var delivered: [Int] = []
        for chunk in yoda.stdout.components(separatedBy: Command.prompt).dropFirst() {
            let lines = chunk.split(separator: "\n").map(String.init)
            let replyLines = lines.indices.filter { lines[$0] == "room-1:" || lines[$0].hasPrefix("#") }
            if let first = replyLines.first, let last = replyLines.last {
                #expect(last - first + 1 == replyLines.count, "a delivery inside a reply:\n\(chunk)")
                #expect(lines[first] == "room-1:")
            }
            for line in lines where line.hasPrefix("room-1: #") {
                delivered.append(Int(line.dropFirst("room-1: #".count).prefix { $0.isNumber })!)
            }
        }
        // Each message once, in number order.
        #expect(delivered == Array(1...(count + 1)))
    }

    @Test func aTerminalClientIsLiveByDefaultAndKeepsTheTypedLine() async throws {
        let server = try await liveServer()
        let term = try await ClientTerminalTests().hansOnATerminal(server, home: try server.root.subdirectory("home"))
        try await term.type("BCM half typed")
        try await term.waitUntil("the half-typed command") { $0.last == Command.prompt + "BCM half typed" }

        let yoda = try await server.login("yoda")
        _ = try await yoda.command("BCM from yoda")
        _ = try await yoda.command("SRB hans")
        _ = try await yoda.command("SRM 1 to the room")
        try await term.waitUntil("the deliveries above the typed line") { lines in
            lines.contains { matches($0, "#1; yoda: \"from yoda\" broadcast at " + timestampPattern + #"\."#) }
                && lines.contains("Separate chat room has been created, room ID: 1, users in this room: yoda, hans")
                && lines.contains { matches($0, "room-1: #1; yoda: \"to the room\" issued at " + timestampPattern + #"\."#) }
                && lines.last == Command.prompt + "BCM half typed"
        }
        try await term.type(" and done")
        try await term.press("Enter")
        try await term.waitFor("Broadcast message, #2 broadcast at ")
        #expect(server.fileLines("messagelog.txt").last?.hasSuffix("; hans; half typed and done") == true)
    }

    @Test func noLiveOnATerminalShowsNothingUnasked() async throws {
        let server = try await liveServer()
        let term = try await ClientTerminalTests().hansOnATerminal(server, home: try server.root.subdirectory("home"),
                                                                   extra: ["--no-live"])

        let yoda = try await server.login("yoda")
        _ = try await yoda.command("BCM unseen until asked")
        // RDM shows the broadcast once: had it been delivered, it would show twice.
        try await term.type("RDM b 1 Jan 2020 00:00:00")
        try await term.press("Enter")
        try await term.waitFor("\"unseen until asked\" broadcast at ")
        try await term.waitUntil("the prompt after the reply") { $0.last == Command.prompt.trimmingCharacters(in: .whitespaces) }
        #expect(try await term.lines().filter { $0.contains("\"unseen until asked\"") }.count == 1)
    }
}
