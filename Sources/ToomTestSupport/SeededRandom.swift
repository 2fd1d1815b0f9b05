import Foundation

/// A reproducible random source (SplitMix64) for tests that try random inputs or random
/// moments. The seed comes from `TOOM_TEST_SEED` when set, so a failure can be replayed;
/// tests print the seed they used.
public struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// A seed from `TOOM_TEST_SEED`, or a fresh one; printed with `what` so a failing run can be repeated.
    public static func seed(for what: String) -> UInt64 {
        let seed = ProcessInfo.processInfo.environment["TOOM_TEST_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 1...UInt64.max)
        print("\(what): seed \(seed) (set TOOM_TEST_SEED=\(seed) to repeat)")
        return seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &self) }
    }
}
