import ToomCore
import Testing
import ToomTransfer

@Suite struct NamesAndNumbersTests {
    @Test(arguments: ["video.mp4", "a", ".hidden", "with space.txt", "vidéo 🎬.mov", "x.y.z", String(repeating: "n", count: 200)])
    func plainNamesAreAccepted(_ name: String) {
        #expect(TransferName.problem(name) == nil)
    }

    @Test(arguments: ["", "/etc/passwd", "../x", "..", ".", "a/b", "a..b", "tab\there", "new\nline", "bell\u{7}",
                      "del\u{7F}", String(repeating: "n", count: 201)])
    func pathsAndControlCharactersAreRefused(_ name: String) {
        let problem = TransferName.problem(name)
        #expect(problem?.hasPrefix("Error. ") == true)
        #expect(problem.map { !$0.contains("\n") && !$0.contains("\t") } == true)
    }

    @Test func tokensRoundTripThroughHex() {
        let token = TransferToken.random()
        #expect(token.hex.count == 32)
        #expect(TransferToken(hex: token.hex) == token)
        #expect(TransferToken(hex: "000000000000000a000000000000000b") == TransferToken(high: 10, low: 11))
        for bad in ["", "xyz", String(repeating: "g", count: 32), String(repeating: "A", count: 32), "+" + String(repeating: "0", count: 31)] {
            #expect(TransferToken(hex: bad) == nil, "\(bad)")
        }
        #expect(TransferToken.random() != TransferToken.random())
    }

    @Test func sizesParseAndPrint() {
        #expect(ByteCount.parse("1048576") == 1 << 20)
        #expect(ByteCount.parse("10M") == 10 << 20)
        #expect(ByteCount.parse("2g") == 2 << 30)
        #expect(ByteCount.parse("512KiB") == 512 << 10)
        #expect(ByteCount.parse("1T") == 1 << 40)
        #expect(ByteCount.parse("0") == 0)
        for bad in ["", "M", "-1", "1.5G", "10X", "99999999999999999999", "16777216T"] {
            #expect(ByteCount.parse(bad) == nil, "\(bad)")
        }
        #expect(ByteCount.describe(0) == "0 B")
        #expect(ByteCount.describe(1023) == "1023 B")
        #expect(ByteCount.describe(1536) == "1.5 KiB")
        #expect(ByteCount.describe(50 << 20) == "50.0 MiB")
        #expect(ByteCount.rate(1_234_000_000) == "1.23 GB/s")
        #expect(ByteCount.rate(950_200_000) == "950.2 MB/s")
        #expect(ByteCount.rate(1_500) == "1.5 kB/s")
    }
}
