import Foundation
import Testing
import ToomTestSupport

/// A short run of each libFuzzer target (Fuzz/run.sh), so a change that breaks a target's
/// properties or trips the address sanitizer fails the tests. The long runs and their
/// figures are in docs/FUZZING.md.
@Suite struct FuzzSmokeTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    @Test func everyFuzzTargetSurvivesAShortRun() async throws {
        let found = FileManager.default.temporaryDirectory.appendingPathComponent("toom-fuzz-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: found) }
        // One after another: each builds with swiftc, and the machine may have two cores.
        for target in ["frame", "command", "logline", "timestamp", "firstbyte", "credentials"] {
            let result = try await run(
                lowestPriority + ["/bin/bash", Self.repository.appendingPathComponent("Fuzz/run.sh").path, target, "20000", "-max_len=4096"],
                directory: Self.repository,
                environment: ProcessInfo.processInfo.environment.merging(
                    ["TOOM_FUZZ_FOUND": found.appendingPathComponent(target).path]) { $1 })
            let (status, text) = (result.status, result.out + result.err)
            if status == 77 {
                print("fuzz smoke run skipped: \(text.split(separator: "\n").last ?? "")")
                return
            }
            // libFuzzer may overshoot the count by a few runs ("Done 20007 runs in 1 second(s)").
            #expect(status == 0 && text.range(of: #"Done 2[0-9]{4} runs"#, options: .regularExpression) != nil,
                    "fuzz target \(target):\n\(text.split(separator: "\n").suffix(30).joined(separator: "\n"))")
        }
    }
}
