import Foundation
import Testing
import ToomTestSupport

/// A short run of each libFuzzer target (Fuzz/run.sh), so a change that breaks a target's
/// properties or trips the address sanitizer fails the tests. The long runs and their
/// figures are in docs/FUZZING.md.
@Suite struct FuzzSmokeTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static let targets = ["frame", "command", "logline", "timestamp", "firstbyte", "credentials"]

    @Test func everyFuzzTargetSurvivesAShortRun() async throws {
        let found = FileManager.default.temporaryDirectory.appendingPathComponent("toom-fuzz-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: found) }
        // As many at once as there are cores: each builds with swiftc at a low priority,
        // so it takes mostly what the other tests leave, and this test was the suite's last to end.
        let width = max(1, ProcessInfo.processInfo.activeProcessorCount)
        let results = try await withThrowingTaskGroup(of: (String, Completed).self) { group in
            var pending = Self.targets[...]
            var results: [(String, Completed)] = []
            func start() {
                guard let target = pending.popFirst() else { return }
                group.addTask {
                    (target, try await run(
                        lowPriority + ["/bin/bash", Self.repository.appendingPathComponent("Fuzz/run.sh").path, target, "20000", "-max_len=4096"],
                        directory: Self.repository,
                        environment: ProcessInfo.processInfo.environment.merging(
                            ["TOOM_FUZZ_FOUND": found.appendingPathComponent(target).path]) { $1 }))
                }
            }
            for _ in 0..<width { start() }
            while let result = try await group.next() {
                results.append(result)
                start()
            }
            return results
        }
        #expect(Set(results.map(\.0)) == Set(Self.targets))
        if let unsupported = results.first(where: { $0.1.status == 77 }) {
            // Known only once swiftc tried (a toolchain without libFuzzer, as Apple's).
            let reason = "fuzz smoke run skipped: \((unsupported.1.out + unsupported.1.err).split(separator: "\n").last ?? "")"
            #if compiler(>=6.3)
            try Test.cancel(Comment(rawValue: reason))
            #else
            print(reason)
            return
            #endif
        }
        for (target, result) in results {
            let (status, text) = (result.status, result.out + result.err)
            // libFuzzer may overshoot the count by a few runs ("Done 20007 runs in 1 second(s)").
            #expect(status == 0 && text.range(of: #"Done 2[0-9]{4} runs"#, options: .regularExpression) != nil,
                    "fuzz target \(target):\n\(text.split(separator: "\n").suffix(30).joined(separator: "\n"))")
        }
    }
}
