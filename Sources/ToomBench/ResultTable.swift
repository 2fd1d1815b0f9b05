import Foundation

/// One scenario's results: each row a figure, its same-run reference, their ratio and the target.
struct ResultTable {
    struct Row {
        let figure: String
        let value: String
        let reference: String
        let ratio: String
        let target: String
        let met: Bool?
    }

    let title: String
    var rows: [Row] = []
    var notes: [String] = []

    init(_ title: String) { self.title = title }

    /// A row comparing two measurements; `ratio` is value / reference. A figure that could
    /// not be measured here (nil) shows as "-", and so does its ratio.
    mutating func add(_ figure: String, value: Double?, reference: Double?, unit: Unit, target: Target?) {
        let ratio = value.flatMap { value in reference.map { value / $0 } }
        rows.append(Row(figure: figure, value: value.map(unit.format) ?? "-", reference: reference.map(unit.format) ?? "-",
                        ratio: ratio.map { String(format: "%.3g", $0) } ?? "-",
                        target: target?.description ?? "-",
                        met: value.flatMap { value in target.map { $0.isMet(value: value, ratio: ratio) } }))
    }

    func render() -> String {
        let header = ["figure", "toom", "reference", "ratio", "target", "met"]
        let body = rows.map { [$0.figure, $0.value, $0.reference, $0.ratio, $0.target, $0.met.map { $0 ? "yes" : "NO" } ?? ""] }
        let widths = header.indices.map { column in ([header] + body).map { $0[column].count }.max()! }
        func line(_ cells: [String]) -> String {
            "| " + cells.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: " | ") + " |"
        }
        var out = "### \(title)\n\n" + line(header) + "\n"
        out += "|" + widths.map { String(repeating: "-", count: $0 + 2) }.joined(separator: "|") + "|\n"
        for row in body { out += line(row) + "\n" }
        for note in notes { out += "\n" + note }
        return out + "\n"
    }

    enum Unit {
        case seconds, rate(String), bytes, microseconds, count

        func format(_ value: Double) -> String {
            switch self {
            case .seconds: return value < 1 ? String(format: "%.1f ms", value * 1000) : String(format: "%.2f s", value)
            case .rate(let what): return String(format: "%.0f %@/s", value, what)
            case .bytes: return value >= 1024 * 1024 ? String(format: "%.1f MiB", value / 1048576) : String(format: "%.1f KiB", value / 1024)
            case .microseconds:
                if value >= 1000 { return String(format: "%.2f ms", value / 1000) }
                return value >= 10 ? String(format: "%.0f µs", value) : String(format: "%.2f µs", value)
            case .count: return String(format: "%.0f", value)
            }
        }
    }

    enum Target: CustomStringConvertible {
        case ratioAtMost(Double)
        case ratioAtLeast(Double)
        case valueAtMost(Double, String)
        case valueAtLeast(Double, String)

        var description: String {
            switch self {
            case .ratioAtMost(let r): return "ratio ≤ \(Self.short(r))"
            case .ratioAtLeast(let r): return "ratio ≥ \(Self.short(r))"
            case .valueAtMost(_, let text), .valueAtLeast(_, let text): return text
            }
        }

        func isMet(value: Double, ratio: Double?) -> Bool {
            switch self {
            case .ratioAtMost(let r): return (ratio ?? .infinity) <= r
            case .ratioAtLeast(let r): return (ratio ?? 0) >= r
            case .valueAtMost(let v, _): return value <= v
            case .valueAtLeast(let v, _): return value >= v
            }
        }

        private static func short(_ value: Double) -> String {
            value == value.rounded() ? String(Int(value)) : String(value)
        }
    }
}
