import ArgumentParser
import ToomCore
import ToomTestSupport
import Foundation

/// `toom-bench`: drives a real `toom server` over real loopback connections and prints,
/// per scenario, each figure next to a reference measured in the same run.
@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "toom-bench",
        abstract: "Benchmarks of the toom server against same-run references.",
        subcommands: [RunBenchmarks.self, EchoServerCommand.self, PlainEchoServerCommand.self, RelayServerCommand.self, UploadChildCommand.self],
        defaultSubcommand: RunBenchmarks.self
    )
}

enum Scenario: String, CaseIterable, ExpressibleByArgument {
    case sessions, ingest, fanout, history, upload, logins, cluster, network, nat
}

struct RunBenchmarks: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run the scenarios (default: all).")

    @Flag(help: "Smaller loads, for everyday use: finishes in under a minute.")
    var quick = false

    @Option(name: .customLong("scenario"), help: "A scenario to run (repeatable): sessions, ingest, fanout, history, upload, logins, cluster, network, nat.")
    var scenarios: [Scenario] = Scenario.allCases

    @Option(help: "The toom binary to benchmark (default: the one next to toom-bench).")
    var toom: String?

    @Flag(help: "upload: drop datagrams in-process even where a lossy network namespace could be made.")
    var inProcessLoss = false

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        Resources.raiseFileLimit()
        let context = try BenchContext(quick: quick, toomPath: toom)
        // Unbuffered, so each table shows as soon as its scenario ends.
        RawOutput.write(1, context.machineDescription + "\n")
        for scenario in scenarios {
            let table: ResultTable
            switch scenario {
            case .sessions: table = try await SessionsScenario(context: context).run()
            case .ingest: table = try await IngestScenario(context: context).run()
            case .fanout: table = try await FanoutScenario(context: context).run()
            case .history: table = try await HistoryScenario(context: context).run()
            case .upload: table = try await UploadScenario(context: context, inProcessLoss: inProcessLoss).run()
            case .logins: table = try await LoginsScenario(context: context).run()
            case .cluster: table = try await ClusterScenario(context: context).run()
            case .network: table = try await NetworkScenario(context: context).run()
            case .nat: table = try await NATScenario(context: context).run()
            }
            RawOutput.write(1, table.render() + "\n")
        }
    }
}

/// What every scenario needs: sizes, the binaries, an event loop group for the load.
struct BenchContext: Sendable {
    let quick: Bool
    let toomPath: String
    let benchPath: String
    /// The server options that turn flood control off, where the server has it: the loads
    /// are meant to flood, and a throttled run would measure the throttle.
    let noFloodControl: [String]

    init(quick: Bool, toomPath: String?) throws {
        let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        benchPath = me.path
        let path = toomPath ?? me.deletingLastPathComponent().appendingPathComponent("toom").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw ValidationError("No toom binary at \(path); build it (swift build -c release) or pass --toom")
        }
        self.toomPath = path
        self.quick = quick
        let help = try runCapturing(path, ["server", "--help"]).output
        noFloodControl = help.contains("--message-rate") ? ["--message-rate", "0"] : []
    }

    var machineDescription: String {
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("model name") }?
            .split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "unknown CPU"
        return "toom-bench\(quick ? " --quick" : ""): \(ProcessInfo.processInfo.activeProcessorCount) cores, \(cpu); toom at \(toomPath)\n"
    }
}
