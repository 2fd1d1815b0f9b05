import Foundation
import Testing
import ToomTestSupport

/// docs/PROTOCOL.md's transcripts, replayed against a real server over raw connections:
/// every ```transcript block is one run on a fresh server, and every server frame it shows
/// must be the one the server sends, with only timestamps and upload tokens and keys
/// normalised. To add a case, add a block to the page.
///
/// A block's info string gives the server's options (`attempts=3`, or `name=value` for
/// `--name value`) and `live` when it needs live delivery (skipped, saying so, against a
/// server that does not grant it). Lines: `C<n>: frame` sends on connection n, `S<n>: frame`
/// reads the next frame on it (the connection opens at its first line), `\t` is a TAB, text
/// after two spaces in parentheses is a comment, and an indented `(...)` line that says
/// "closed" or "closes" expects the server to close connection n (the one named, else the
/// one of the line before).
@Suite struct ProtocolTranscriptTests {
    static let page = packageRoot.appendingPathComponent("docs/PROTOCOL.md")

    static var transcripts: [Transcript] {
        guard let text = try? String(contentsOf: page, encoding: .utf8) else { return [] }
        return Transcript.parse(page: text)
    }

    @Test func thePageHasTranscriptsOfEveryKind() {
        let all = Self.transcripts
        #expect(all.count >= 5, "no transcripts found in \(Self.page.path)")
        #expect(all.contains { $0.live })
        #expect(all.contains { !$0.live })
    }

    @Test(arguments: transcripts)
    func transcriptMatchesTheServer(_ transcript: Transcript) async throws {
        let server = try await TestServer(attempts: transcript.attempts, extra: transcript.serverOptions)
        if transcript.live { try #require(try grantsLive(server), "transcript '\(transcript.title)' needs live delivery") }
        var connections: [Int: RawConnection] = [:]
        func connection(_ id: Int) throws -> RawConnection {
            if let open = connections[id] { return open }
            let opened = try RawConnection(port: server.port)
            connections[id] = opened
            return opened
        }
        for step in transcript.steps {
            switch step {
            case .send(let id, let frame):
                try connection(id).send(frame + "\n")
            case .expect(let id, let frame, let line):
                let got = try connection(id).readLine()
                #expect(got.map(Transcript.normalised) == Transcript.normalised(frame),
                        "\(transcript.title), line \(line): expected \(frame.debugDescription), got \(got?.debugDescription ?? "a closed connection")")
                if got.map(Transcript.normalised) != Transcript.normalised(frame) { return }
            case .closed(let id, let line):
                #expect(try await connection(id).isClosedByServer(), "\(transcript.title), line \(line): connection \(id) should be closed")
            }
        }
    }
}

struct Transcript: Sendable, CustomTestStringConvertible {
    enum Step: Sendable {
        case send(connection: Int, frame: String)
        case expect(connection: Int, frame: String, line: Int)
        case closed(connection: Int, line: Int)
    }

    let title: String
    let attempts: Int
    let serverOptions: [String]
    let live: Bool
    let steps: [Step]

    var testDescription: String { title }

    static func parse(page: String) -> [Transcript] {
        var transcripts: [Transcript] = []
        var block: (info: [Substring], start: Int, lines: [(Int, Substring)])?
        for (index, line) in page.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if var open = block {
                if line.hasPrefix("```") {
                    transcripts.append(make(info: open.info, start: open.start, lines: open.lines))
                    block = nil
                } else {
                    open.lines.append((index + 1, line))
                    block = open
                }
            } else if line.hasPrefix("```transcript") {
                block = (line.dropFirst(3).split(separator: " ").dropFirst().map { $0 }, index + 1, [])
            }
        }
        return transcripts
    }

    private static func make(info: [Substring], start: Int, lines: [(Int, Substring)]) -> Transcript {
        var attempts = 3
        var options: [String] = []
        var live = false
        for word in info {
            let parts = word.split(separator: "=", maxSplits: 1).map(String.init)
            if parts == ["live"] { live = true }
            else if parts.count == 2, parts[0] == "attempts" { attempts = Int(parts[1]) ?? 3 }
            else if parts.count == 2 { options += ["--" + parts[0], parts[1]] }
        }
        var steps: [Step] = []
        var last = 0
        for (number, line) in lines {
            let trimmed = line.drop(while: { $0 == " " })
            if trimmed.hasPrefix("(") {
                guard trimmed.contains("closed") || trimmed.contains("closes") else { continue }
                let named = trimmed.firstMatch(of: /connection ([0-9]+)/).flatMap { Int($0.1) }
                steps.append(.closed(connection: named ?? last, line: number))
                continue
            }
            guard let match = line.firstMatch(of: /^([CS])([0-9]*):(.*)$/) else { continue }
            let id = Int(match.2) ?? 0
            var frame = String(match.3)
            if frame.hasPrefix(" ") { frame.removeFirst() }
            // A comment: two or more spaces, then text in parentheses, at the end.
            if let comment = frame.firstMatch(of: /\ \ +\(.*\)$/) { frame = String(frame[..<comment.range.lowerBound]) }
            frame = frame.replacingOccurrences(of: "\\t", with: "\t")
            last = id
            steps.append(match.1 == "C" ? .send(connection: id, frame: frame) : .expect(connection: id, frame: frame, line: number))
        }
        let title = "PROTOCOL.md line \(start)" + (live ? " (live)" : "")
        return Transcript(title: title, attempts: attempts, serverOptions: options, live: live, steps: steps)
    }

    /// Timestamps, tokens and keys differ from run to run.
    static func normalised(_ frame: String) -> String {
        frame.replacing(/[0-9]{1,2} [A-Z][a-z]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2}/, with: "<ts>")
            .replacing(/\b[0-9a-f]{64}\b/, with: "<key>")
            .replacing(/\b[0-9a-f]{32}\b/, with: "<token>")
    }
}
