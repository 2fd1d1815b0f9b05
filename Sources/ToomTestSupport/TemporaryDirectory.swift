import Foundation

/// A temporary directory removed at the end of the test.
public final class TemporaryDirectory: @unchecked Sendable {
    public let url: URL

    public init(_ name: String = "toom") throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit {
        let url = url
        try? FileManager.default.removeItem(at: url)
        // A process of the test that is still being killed may write into it meanwhile
        // (a log, a client's directory), which fails the removal or makes the directory
        // again: it goes once that process is gone.
        for delay in [0.5, 2, 5] {
            DispatchQueue.global().asyncAfter(deadline: .now() + delay) {
                if FileManager.default.fileExists(atPath: url.path) { try? FileManager.default.removeItem(at: url) }
            }
        }
    }

    public func subdirectory(_ name: String) throws -> URL {
        let dir = url.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    public func read(_ name: String) -> String? {
        try? String(contentsOf: url.appendingPathComponent(name), encoding: .utf8)
    }
}
