import Foundation

/// What /proc/PID/stat says of a process: its parent and its CPU times, in seconds. One
/// reader for toom-bench's server figures and the throwaway PostgreSQL's.
public struct ProcessStat: Sendable {
    public let parent: Int32
    /// User plus system time of the process, all its threads.
    public let cpuSeconds: Double
    /// Of that, the time in user space.
    public let userSeconds: Double
    /// User plus system time of its children that have exited and been waited for.
    public let exitedChildrenCPUSeconds: Double

    public init?(pid: Int32) {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let name = text.lastIndex(of: ")") else { return nil }
        // After the name: state (field 3), ppid (4), ..., utime (14), stime (15), cutime (16), cstime (17), in clock ticks.
        let fields = text[text.index(after: name)...].split(separator: " ")
        guard fields.count > 14, let parent = Int32(fields[1]), let user = Double(fields[11]), let system = Double(fields[12]),
              let childrenUser = Double(fields[13]), let childrenSystem = Double(fields[14]) else { return nil }
        let tick = Double(sysconf(Int32(_SC_CLK_TCK)))
        self.parent = parent
        cpuSeconds = (user + system) / tick
        userSeconds = user / tick
        exitedChildrenCPUSeconds = (childrenUser + childrenSystem) / tick
    }

    /// The live children of a process.
    public static func children(of parent: Int32) -> [ProcessStat] {
        let processes = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return processes.compactMap { name in
            guard let pid = Int32(name), pid != parent, let child = ProcessStat(pid: pid), child.parent == parent else { return nil }
            return child
        }
    }
}
