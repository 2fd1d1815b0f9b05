import Foundation
import Testing

/// A short run of each libFuzzer target (Fuzz/run.sh), so a change that breaks a target's
/// properties or trips the address sanitizer fails the tests. The long runs and their
/// figures are in docs/FUZZING.md.
@Suite struct FuzzSmokeTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    @Test func everyFuzzTargetSurvivesAShortRun() throws {
        let found = FileManager.default.temporaryDirectory.appendingPathComponent("toom-fuzz-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: found) }
        // One after another: each builds with swiftc, and the machine may have two cores.
        for target in ["frame", "command", "logline", "timestamp"] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/bash")
            process.arguments = [Self.repository.appendingPathComponent("Fuzz/run.sh").path, target, "20000", "-max_len=4096"]
            process.currentDirectoryURL = Self.repository
            process.environment = ProcessInfo.processInfo.environment.merging(
                ["TOOM_FUZZ_FOUND": found.appendingPathComponent(target).path]) { $1 }
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            if process.terminationStatus == 77 {
                print("fuzz smoke run skipped: \(text.split(separator: "\n").last ?? "")")
                return
            }
            #expect(process.terminationStatus == 0 && text.contains("Done 20000 runs"),
                    "fuzz target \(target):\n\(text.split(separator: "\n").suffix(30).joined(separator: "\n"))")
        }
    }
}
