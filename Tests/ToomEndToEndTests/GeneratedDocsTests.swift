import Foundation
import ToomTestSupport
import Testing

/// The package's root directory.
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// swift-argument-parser's generate-manual tool, built by scripts/manual-tool.sh through
/// the one runner (a `swift build`, which may take a while: never on a cooperative thread);
/// nil when it cannot be built.
func manualTool() async throws -> String? {
    let built = try await run(lowPriority + [packageRoot.appendingPathComponent("scripts/manual-tool.sh").path])
    guard built.status == 0 else { return nil }
    // The path is one line; a first build also prints its progress.
    return (built.out + built.err).split(separator: "\n").map(String.init).first {
        $0.hasSuffix("/generate-manual") && FileManager.default.isExecutableFile(atPath: $0)
    }
}

/// completions/ and man/ must be what the command definitions generate now.
@Suite struct GeneratedDocsTests {
    @Test(arguments: [("bash", "toom.bash"), ("zsh", "_toom"), ("fish", "toom.fish")])
    func completionScriptsAreUpToDate(shell: String, file: String) async throws {
        let generated = try await runToom(["--generate-completion-script", shell])
        #expect(generated.status == 0)
        let committed = try String(contentsOf: packageRoot.appendingPathComponent("completions/\(file)"), encoding: .utf8)
        #expect(committed == generated.out, "completions/\(file) is out of date: run scripts/generate-docs.sh")
    }

    @Test func manualPagesAreUpToDate() async throws {
        // Known only once built, so not a condition trait: those are all evaluated before
        // any test starts. (Swift before 6.3 has no `Test.cancel`: it says so and returns.)
        guard let tool = try await manualTool() else {
            #if compiler(>=6.3)
            try Test.cancel("swift-argument-parser's generate-manual tool could not be built (scripts/manual-tool.sh)")
            #else
            print("SKIPPED manualPagesAreUpToDate: swift-argument-parser's generate-manual tool could not be built (scripts/manual-tool.sh)")
            return
            #endif
        }
        let man = packageRoot.appendingPathComponent("man")
        let page = try String(contentsOf: man.appendingPathComponent("toom.1"), encoding: .utf8)
        let dateLine = try #require(page.split(separator: "\n").first { $0.hasPrefix(".Dd ") })
        // ".Dd November 21, 2026" back to 2026-11-21, the date the pages were generated with.
        let parts = dateLine.dropFirst(4).replacingOccurrences(of: ",", with: "").split(separator: " ")
        let months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]
        let month = try #require(months.firstIndex(of: String(parts[0]))) + 1
        let date = String(format: "%@-%02d-%02d", String(parts[2]), month, Int(parts[1])!)

        let fresh = try TemporaryDirectory("man")
        let generated = try await run([tool, ToomBinary.path, "--multi-page", "--date", date,
                                       "--output-directory", fresh.url.path], capture: false)
        #expect(generated.status == 0)
        let names = { (dir: URL) in
            try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".1") }.sorted()
        }
        #expect(try names(man) == names(fresh.url), "man/ has other pages than the commands: run scripts/generate-docs.sh")
        for name in try names(fresh.url) {
            #expect(fresh.read(name) == (try? String(contentsOf: man.appendingPathComponent(name), encoding: .utf8)),
                    "man/\(name) is out of date: run scripts/generate-docs.sh")
        }
    }
}
