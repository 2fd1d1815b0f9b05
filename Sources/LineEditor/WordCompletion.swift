/// What Tab does: replace the word before the cursor, or list the candidates.
public struct Completion: Equatable, Sendable {
    /// Characters (Unicode scalars) to delete before the cursor.
    public var deleteCount: Int
    /// Text to insert in their place; nil leaves the line alone.
    public var replacement: String?
    /// Shown below the line when the word is ambiguous.
    public var candidates: [String]

    public init(deleteCount: Int, replacement: String?, candidates: [String]) {
        self.deleteCount = deleteCount
        self.replacement = replacement
        self.candidates = candidates
    }

    public static let none = Completion(deleteCount: 0, replacement: nil, candidates: [])
}

/// Works out the completion from the text before the cursor.
public typealias Completer = @Sendable (_ beforeCursor: String) -> Completion

public enum WordCompletion {
    /// Completes the last word of `beforeCursor` from `candidates(index, previousWords)`,
    /// where index is the word's position on the line (0 for the command word).
    /// One match: the word is replaced by it and a space. Several: the longest common
    /// prefix is filled in, or, when that adds nothing, the matches are listed.
    /// `ignoringCase` matches case-insensitively and writes the candidate's own case.
    public static func complete(_ beforeCursor: String, ignoringCase: Bool = false,
                                candidates: (_ index: Int, _ previousWords: [String]) -> [String]) -> Completion {
        var words = beforeCursor.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        let current = beforeCursor.last == " " || beforeCursor.isEmpty ? "" : words.removeLast()
        let fold: (String) -> String = ignoringCase ? { $0.lowercased() } : { $0 }
        let typed = fold(current)
        var seen = Set<String>()
        let matches = candidates(words.count, words)
            .filter { fold($0).hasPrefix(typed) && seen.insert($0).inserted }
            .sorted()
        guard let first = matches.first else { return .none }
        let deleteCount = current.unicodeScalars.count
        if matches.count == 1 {
            return Completion(deleteCount: deleteCount, replacement: first + " ", candidates: [])
        }
        let prefix = matches.dropFirst().reduce(first) { commonPrefix($0, $1, fold: fold) }
        if fold(prefix) != typed, prefix.count > current.count {
            return Completion(deleteCount: deleteCount, replacement: prefix, candidates: [])
        }
        return Completion(deleteCount: 0, replacement: nil, candidates: matches)
    }

    private static func commonPrefix(_ a: String, _ b: String, fold: (String) -> String) -> String {
        var end = a.startIndex
        var bIndex = b.startIndex
        while end < a.endIndex, bIndex < b.endIndex, fold(String(a[end])) == fold(String(b[bIndex])) {
            end = a.index(after: end)
            bIndex = b.index(after: bIndex)
        }
        return String(a[..<end])
    }
}
