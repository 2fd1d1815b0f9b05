import LineEditor
import Testing

@Suite struct WordCompletionTests {
    let words = ["list", "kick", "unblock", "quit", "help"]
    let users = ["hans", "han", "yoda"]

    func complete(_ line: String, ignoringCase: Bool = false) -> Completion {
        WordCompletion.complete(line, ignoringCase: ignoringCase) { index, previous in
            index == 0 ? words : (previous.first == "kick" ? users : [])
        }
    }

    @Test func aSingleMatchIsCompletedWithASpace() {
        #expect(complete("ki") == Completion(deleteCount: 2, replacement: "kick ", candidates: []))
        #expect(complete("kick y") == Completion(deleteCount: 1, replacement: "yoda ", candidates: []))
    }

    @Test func severalMatchesFillTheCommonPrefixThenList() {
        #expect(complete("kick h") == Completion(deleteCount: 1, replacement: "han", candidates: []))
        #expect(complete("kick han") == Completion(deleteCount: 0, replacement: nil, candidates: ["han", "hans"]))
    }

    @Test func anEmptyWordListsEverything() {
        #expect(complete("").candidates == words.sorted())
        #expect(complete("kick ").candidates == users.sorted())
    }

    @Test func noMatchChangesNothing() {
        #expect(complete("kick z") == .none)
        #expect(complete("quit now ") == .none)
    }

    @Test func ignoringCaseWritesTheCandidatesCase() {
        let completion = WordCompletion.complete("bc", ignoringCase: true) { _, _ in ["BCM", "ATU"] }
        #expect(completion == Completion(deleteCount: 2, replacement: "BCM ", candidates: []))
    }

    @Test func deleteCountIsInUnicodeScalars() {
        let completion = WordCompletion.complete("SRB jö", ignoringCase: false) { _, _ in ["jörg"] }
        #expect(completion == Completion(deleteCount: 2, replacement: "jörg ", candidates: []))
    }
}
