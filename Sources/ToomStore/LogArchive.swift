import Foundation

/// `--fresh`: moves the old logs into a dated folder rather than deleting them.
public enum LogArchive {
    /// Returns the folder the logs went to, or nil when there were none.
    public static func moveAside(in directory: String, now: Date = Date()) throws -> String? {
        let fm = FileManager.default
        let logs = try fm.contentsOfDirectory(atPath: directory).filter(LogFiles.isLog).sorted()
        guard !logs.isEmpty else { return nil }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd'T'HH-mm-ss"
        let base = "\(directory)/archive-\(formatter.string(from: now))"
        var folder = base
        var n = 2
        while fm.fileExists(atPath: folder) {
            folder = "\(base)-\(n)"
            n += 1
        }
        try fm.createDirectory(atPath: folder, withIntermediateDirectories: false)
        for name in logs {
            try fm.moveItem(atPath: "\(directory)/\(name)", toPath: "\(folder)/\(name)")
        }
        return folder
    }
}
