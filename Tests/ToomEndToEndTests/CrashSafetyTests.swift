import Foundation
import Testing
import ToomTestSupport
import ToomCore

/// Spec §3, "the files are the record", under SIGKILL. Fifty clients speak the wire protocol
/// (BCM and SRM) while the server is killed after a random number of acknowledged frames;
/// after each kill the files must hold every message a client was told was stored, under
/// the number it was told, with no torn line, no gap and no repeat; `rooms.txt` must be
/// intact, and a restart must find nothing to repair and empty `userlog.txt`. Every other
/// round runs with `--sync` (group commit).
@Suite struct CrashSafetyTests {
    static let clientCount = 50
    static let roomSize = 5
    static let rounds = 20
    static let users = (1...clientCount).map { "user\($0 < 10 ? "0" : "")\($0)" }
    static func password(_ user: String) -> String { "pw-\(user)" }

    /// What the clients of one round sent and were told; kills the server at the chosen moment.
    final class Ledger: @unchecked Sendable {
        struct Told {
            let file: String
            let number: Int
            let line: String
        }

        private let lock = NSLock()
        private let killAfter: Int
        private let serverPID: pid_t
        private var acknowledged = 0
        private(set) var told: [Told] = []
        /// Every message sent, by file, as "user; message" (what follows the timestamp in its line).
        private(set) var sent: [String: Set<String>] = [:]
        private(set) var unexpected: [String] = []
        private(set) var finished = 0

        init(killAfter: Int, serverPID: pid_t) {
            self.killAfter = killAfter
            self.serverPID = serverPID
        }

        func sending(_ file: String, _ tail: String) { lock.withLock { _ = sent[file, default: []].insert(tail) } }

        /// Counts an OK from the server; the one numbered `killAfter` kills it at once.
        func acknowledge(_ told: Told?) {
            lock.withLock {
                if let told { self.told.append(told) }
                acknowledged += 1
                if acknowledged == killAfter { kill(serverPID, SIGKILL) }
            }
        }

        func refuse(_ reply: String) { lock.withLock { unexpected.append(reply) } }
        func finish() { lock.withLock { finished += 1 } }
        var doneCount: Int { lock.withLock { finished } }
    }

    /// One client: logs in, then sends BCM or SRM (to its own room) and waits for each reply,
    /// until the connection dies with the server.
    static func chat(index: Int, port: Int, round: Int, seed: UInt64, ledger: Ledger) {
        defer { ledger.finish() }
        var random = SeededRandom(seed: seed)
        let user = users[index]
        guard let raw = try? RawConnection(port: port), (try? raw.login(user, password(user))) != nil else { return }
        ledger.acknowledge(nil)
        let room = index / roomSize + 1
        var count = 0
        while true {
            count += 1
            let message = "round \(round) message \(count)" + (random.next() % 4 == 0 ? "; with the separator" : "")
            let toRoom = Bool.random(using: &random)
            let file = toRoom ? "SR_\(room)_messageLog.txt" : "messagelog.txt"
            ledger.sending(file, "\(user); \(message)")
            raw.send(toRoom ? "SRM\t\(room)\t\(message)\n" : "BCM\t\(message)\n")
            guard let reply = raw.readLine() else { return }
            let fields = reply.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            let numbered = toRoom ? (fields.count == 5 && fields[0] == "OK" && fields[1] == "SRM" && fields[2] == String(room))
                                  : (fields.count == 4 && fields[0] == "OK" && fields[1] == "BCM")
            guard numbered, let number = Int(fields[fields.count - 2]) else {
                ledger.refuse(reply)
                return
            }
            let timestamp = fields[fields.count - 1]
            ledger.acknowledge(.init(file: file, number: number, line: "\(number); \(timestamp); \(user); \(message)"))
        }
    }

    static var logFiles: [String] {
        ["messagelog.txt"] + (1...clientCount / roomSize).map { "SR_\($0)_messageLog.txt" }
    }

    /// The problems found in the files after a kill, given what the round's clients were
    /// told and the lines found (and checked) after the previous round.
    static func problems(in data: URL, ledger: Ledger, previous: [String: [String]], rooms: [String]) -> [String] {
        var problems: [String] = []
        for file in logFiles {
            let bytes = (try? Data(contentsOf: data.appendingPathComponent(file))) ?? Data()
            if let last = bytes.last, last != UInt8(ascii: "\n") { problems.append("\(file): torn last line") }
            let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
                .dropLast().map(String.init)
            let before = previous[file] ?? []
            if !lines.starts(with: before) { problems.append("\(file): lines of earlier rounds changed") }
            var seen = Set<String>()
            for (index, line) in lines.enumerated() {
                guard case .success(let record) = MessageRecord.parse(line) else {
                    problems.append("\(file):\(index + 1): does not parse: \(line)")
                    continue
                }
                if record.number != index + 1 { problems.append("\(file):\(index + 1): numbered \(record.number)") }
                guard index >= before.count else { continue }
                let tail = "\(record.user); \(record.message)"
                if !(ledger.sent[file]?.contains(tail) ?? false) { problems.append("\(file):\(index + 1): never sent: \(line)") }
                if !seen.insert(tail).inserted { problems.append("\(file):\(index + 1): stored twice: \(line)") }
            }
            for told in ledger.told where told.file == file {
                let found = told.number <= lines.count ? lines[told.number - 1] : "nothing"
                if found != told.line { problems.append("\(file): told \"\(told.line)\", found \(found)") }
            }
        }
        let roomLines = String(decoding: (try? Data(contentsOf: data.appendingPathComponent("rooms.txt"))) ?? Data(), as: UTF8.self)
        if roomLines != rooms.map({ $0 + "\n" }).joined() { problems.append("rooms.txt changed:\n\(roomLines)") }
        problems += ledger.unexpected.map { "unexpected reply: \($0)" }
        return problems
    }

    static func snapshot(_ data: URL) -> [String: Data] {
        var files: [String: Data] = [:]
        for file in logFiles + ["rooms.txt"] {
            files[file] = try? Data(contentsOf: data.appendingPathComponent(file))
        }
        return files
    }

    @Test func everyAcknowledgedMessageSurvivesSIGKILL() async throws {
        let seed = SeededRandom.seed(for: "crash test")
        var random = SeededRandom(seed: seed)
        let credentials = Self.users.map { "\($0) \(Self.password($0))\n" }.joined()
        let server = try await TestServer(credentials: credentials)

        // Ten rooms of five, built before the first kill.
        var rooms: [String] = []
        do {
            var connections: [RawConnection] = []
            for user in Self.users {
                let raw = try RawConnection(port: server.port)
                try raw.login(user, Self.password(user))
                connections.append(raw)
            }
            for room in 0..<Self.clientCount / Self.roomSize {
                let members = Array(Self.users[room * Self.roomSize..<(room + 1) * Self.roomSize])
                connections[room * Self.roomSize].send((["SRB"] + members.dropFirst()).joined(separator: "\t") + "\n")
                let reply = connections[room * Self.roomSize].readLine()
                #expect(reply == (["OK", "SRB", String(room + 1)] + members).joined(separator: "\t"))
                rooms.append("\(room + 1); \(members.joined(separator: ", "))")
            }
        }

        var previous: [String: [String]] = [:]
        var stored = 0
        for round in 1...Self.rounds {
            let killAfter = Self.clientCount + Int.random(in: 1...600, using: &random)
            let ledger = Ledger(killAfter: killAfter, serverPID: server.process.process.processIdentifier!)
            for index in 0..<Self.clientCount {
                let clientSeed = random.next()
                let port = server.port
                Thread { Self.chat(index: index, port: port, round: round, seed: clientSeed, ledger: ledger) }.start()
            }
            try await eventually("the clients of round \(round) to stop (kill after \(killAfter) replies)") {
                ledger.doneCount == Self.clientCount
            }
            #expect(try await server.process.waitForExit() != 0)

            let found = Self.problems(in: server.data, ledger: ledger, previous: previous, rooms: rooms)
            guard found.isEmpty else {
                Issue.record("seed \(seed), round \(round), killed after \(killAfter) replies:\n\(found.prefix(20).joined(separator: "\n"))")
                return
            }
            stored += ledger.told.count
            for file in Self.logFiles {
                previous[file] = server.fileLines(file)
            }

            // A restart repairs nothing (there is nothing torn) and finds nobody online.
            let before = Self.snapshot(server.data)
            try await server.restart(samePort: false, extra: round % 2 == 1 ? ["--sync"] : [])
            #expect(server.file("userlog.txt") == "", "round \(round)")
            #expect(Self.snapshot(server.data) == before, "round \(round): the restart changed the logs")
        }
        print("crash test: \(stored) acknowledged messages checked over \(Self.rounds) kills")
        #expect(try await server.stop() == 0)
    }
}
