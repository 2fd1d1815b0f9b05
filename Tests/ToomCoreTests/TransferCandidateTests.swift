import Testing
import ToomCore

@Suite struct TransferCandidateTests {
    @Test func addressesReadAndWriteBothFamilies() throws {
        let v4 = try #require(TransferCandidate("198.18.0.7:6001"))
        #expect(v4.description == "198.18.0.7:6001" && !v4.isIPv6 && v4.host == "198.18.0.7" && v4.port == 6001)
        let v6 = try #require(TransferCandidate("[2001:db8:0:0::7]:443"))
        #expect(v6.description == "[2001:db8::7]:443" && v6.isIPv6)
        // An IPv4 peer of a dual-stack socket is the IPv4 address it is.
        #expect(TransferCandidate("[::ffff:198.18.0.7]:6001") == v4)
        #expect(TransferCandidate.plainAddress("::ffff:127.0.0.1") == "127.0.0.1")
        #expect(TransferCandidate.plainAddress("::1") == "::1")
        #expect(TransferCandidate.plainAddress("127.0.0.1") == "127.0.0.1")
    }

    @Test func malformedAddressesAreRefused() {
        for text in ["", "198.18.0.7", "198.18.0.7:0", "198.18.0.7:65536", "2001:db8::7:80", "[198.18.0.7]:80",
                     "[2001:db8::7:80", "host:80", "198.18.0.256:1", "[::1]:-1"] {
            #expect(TransferCandidate(text) == nil, "\(text)")
        }
    }

    @Test func loopbackAndLinkLocalMeanNothingElsewhere() {
        #expect(TransferCandidate("127.0.0.1:1")?.isUsefulElsewhere == false)
        #expect(TransferCandidate("169.254.3.4:1")?.isUsefulElsewhere == false)
        #expect(TransferCandidate("[::1]:1")?.isUsefulElsewhere == false)
        #expect(TransferCandidate("[fe80::1]:1")?.isUsefulElsewhere == false)
        #expect(TransferCandidate("100.64.1.2:1")?.isUsefulElsewhere == true)
        #expect(TransferCandidate("[2001:db8::1]:1")?.isUsefulElsewhere == true)
    }

    @Test func hexRoundTrips() {
        let bytes: [UInt8] = [0, 1, 0x7f, 0x80, 0xfe, 0xff]
        #expect(Hex.encode(bytes) == "00017f80feff")
        #expect(Hex.decode("00017f80feff", count: 6) == bytes)
        #expect(Hex.decode("00017F80FEFF", count: 6) == nil, "lower-case only")
        #expect(Hex.decode("00017f80fe", count: 6) == nil)
        #expect(Hex.decode("0g017f80feff", count: 6) == nil)
    }
}
