import Testing
@testable import ToomClient

/// The presenter's progress line (README "Sending files").
@Suite struct ProgressBarTests {
    @Test func aRunningTransferShowsItsRateAndTimeLeft() {
        let line = FileTransfers.bar(name: "video.mp4", audience: "yoda", done: 45, size: 100, rate: 11)
        #expect(line == "[#########-----------]  45%  0.0 kB/s  0:05 left  video.mp4 to yoda", "\(line)")
        let long = FileTransfers.bar(name: "big.iso", audience: "yoda", done: 0, size: 7200, rate: 1)
        #expect(long.hasSuffix("2:00:00 left  big.iso to yoda"), "\(long)")
    }

    /// A stalled transfer's rate decays towards zero: no estimate, and no crash on an
    /// estimate too large for an Int.
    @Test func aStalledTransferShowsNoEstimate() {
        for rate in [0, 1e-300, 1e-9, Double.leastNonzeroMagnitude] {
            let line = FileTransfers.bar(name: "shown.bin", audience: "yoda", done: 1 << 20, size: 8 << 20, rate: rate)
            #expect(line.contains("-:-- left  shown.bin to yoda"), "\(line)")
        }
    }
}
