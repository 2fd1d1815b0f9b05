import ArgumentParser

/// Measurements of toom, each against a reference measured in the same run
/// (docs/BENCHMARKS.md). One subcommand per scenario.
@main
struct ToomBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "toom-bench",
        abstract: "Measure toom against same-run baselines on loopback.",
        subcommands: [UploadBenchmark.self]
    )
}
