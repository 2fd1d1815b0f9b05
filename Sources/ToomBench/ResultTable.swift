/// The table every scenario prints: a figure, the reference it is compared with (measured
/// in the same run), and their ratio.
struct ResultTable {
    struct Row {
        var figure: String
        var value: String
        var reference: String
        var referenceValue: String
        var ratio: Double
    }

    var title: String
    var rows: [Row] = []
    var notes: [String] = []

    init(title: String) { self.title = title }

    mutating func add(_ figure: String, _ value: Double, format: (Double) -> String,
                      reference: String, _ referenceValue: Double) {
        rows.append(Row(figure: figure, value: format(value), reference: reference,
                        referenceValue: format(referenceValue),
                        ratio: referenceValue > 0 ? value / referenceValue : 0))
    }

    func render() -> String {
        let header = ["figure", "value", "reference (same run)", "value", "ratio"]
        let cells = rows.map { [$0.figure, $0.value, $0.reference, $0.referenceValue, Self.ratio($0.ratio)] }
        var widths = header.map(\.count)
        for row in cells {
            for (column, cell) in row.enumerated() { widths[column] = max(widths[column], cell.count) }
        }
        func line(_ row: [String]) -> String {
            row.enumerated().map { column, cell in
                cell + String(repeating: " ", count: widths[column] - cell.count)
            }.joined(separator: "  ").trimmingTrailingSpaces()
        }
        var out = [title, line(header), line(widths.map { String(repeating: "-", count: $0) })]
        out += cells.map(line)
        out += notes
        return out.joined(separator: "\n")
    }

    private static func ratio(_ value: Double) -> String {
        let hundredths = Int((value * 100).rounded())
        return "\(hundredths / 100).\(hundredths % 100 < 10 ? "0" : "")\(hundredths % 100)"
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var copy = self
        while copy.last == " " { copy.removeLast() }
        return copy
    }
}
