import Foundation
import Testing
import ToomCore
import ToomTestSupport

/// Spec §8 at the wire, against the real server: who gets which delivery, a client that
/// stops reading, and a flooder. (The rules themselves are unit-tested in ToomChatTests;
/// the client's display of deliveries in LiveDeliveryTests.)
@Suite struct LiveDeliveryServerTests {
    @Test func deliveriesReachLiveClientsAndNobodyElse() async throws {
        let server = try await TestServer()
        let hans = try RawConnection(port: server.port)
        try hans.login("hans", passwords["hans"]!, live: true)
        let yoda = try RawConnection(port: server.port)
        try yoda.login("yoda", passwords["yoda"]!, live: true)
        let v1 = try RawConnection(port: server.port)
        try v1.login("vader", passwords["vader"]!)

        hans.send("BCM\tHello; everyone\n")
        let reply = try #require(hans.readLine())
        let fields = reply.split(separator: "\t").map(String.init)
        #expect(fields.prefix(3) == ["OK", "BCM", "1"])
        #expect(yoda.readLine() == "EVENT\tB\t1\t\(fields[3])\thans\tHello; everyone")

        hans.send("SRB\tyoda\tvader\n")
        #expect(hans.readLine() == "OK\tSRB\t1\thans\tyoda\tvader")
        #expect(yoda.readLine() == "EVENT\tSRB\t1\thans\tyoda\tvader")
        yoda.send("SRM\t1\tmeet at the hangar\n")
        let srm = try #require(yoda.readLine()).split(separator: "\t").map(String.init)
        #expect(srm.prefix(4) == ["OK", "SRM", "1", "1"])
        #expect(hans.readLine() == "EVENT\tS\t1\t1\t\(srm[4])\tyoda\tmeet at the hangar")

        // The client that did not ask for live delivery got none of it: its next frame is its own reply.
        v1.send("ATU\n")
        #expect(v1.readLine()?.hasPrefix("ITEM\tUSER\thans\t") == true)
        #expect(v1.readLine()?.hasPrefix("ITEM\tUSER\tyoda\t") == true)
        #expect(v1.readLine() == "OK\tATU\t2")
    }

    @Test func aClientThatStopsReadingIsCutOffAndTheOthersKeepFlowing() async throws {
        let server = try await TestServer(extra: ["--max-unread-bytes", "65536", "--message-rate", "0"])
        let stuck = try RawConnection(port: server.port, receiveBuffer: 4096)
        try stuck.login("vader", passwords["vader"]!, live: true)
        let reader = try RawConnection(port: server.port)
        try reader.login("yoda", passwords["yoda"]!, live: true)
        let sender = try RawConnection(port: server.port)
        try sender.login("hans", passwords["hans"]!)

        // Broadcasts of 4 KB until the stuck client is cut off; each reply and each delivery
        // to the reading client arrives meanwhile.
        let message = String(repeating: "x", count: 4000)
        var sent = 0
        // The kernel's socket buffers take a few megabytes before the server sees any unread bytes.
        func cutOff() -> Bool { server.process.stdout.contains("vader disconnected: not reading what it is sent (") }
        while sent % 64 != 0 || !cutOff(), sent < 10_000 {
            sent += 1
            sender.send("BCM\t\(message)\n")
            #expect(sender.readLine()?.hasPrefix("OK\tBCM\t\(sent)\t") == true)
            #expect(reader.readLine()?.hasPrefix("EVENT\tB\t\(sent)\t") == true)
        }
        print("vader was cut off after \(sent) messages of 4 KB")
        #expect(sent < 10_000)
        try await eventually("vader's userlog.txt line is gone") { !(server.file("userlog.txt") ?? "").contains("vader") }
        #expect(await stuck.isClosedByServer())
        sender.send("ATU\n")
        #expect(sender.readLine()?.hasPrefix("ITEM\tUSER\tyoda\t") == true)
        #expect(sender.readLine() == "OK\tATU\t1")
    }

    @Test func aFlooderIsSlowedDownNotDisconnectedAndOthersAreNotSlowed() async throws {
        let server = try await TestServer(extra: ["--message-rate", "4", "--message-burst", "4"])
        let flooder = try RawConnection(port: server.port)
        try flooder.login("hans", passwords["hans"]!)
        let other = try RawConnection(port: server.port)
        try other.login("yoda", passwords["yoda"]!)

        let count = 24
        flooder.send((1...count).map { "BCM\tflood \($0)\n" }.joined())
        // The burst is answered at once; the rest are read later, a few a second.
        for n in 1...4 { #expect(flooder.readLine()?.hasPrefix("OK\tBCM\t\(n)\t") == true) }
        other.send("BCM\tnot slowed\n")
        let reply = try #require(other.readLine())
        // The other user's message went in between the flooder's, not after all of them.
        let number = try #require(Int(reply.split(separator: "\t")[2]))
        #expect(number < count, "yoda's message was #\(number) of \(count + 1)")
        var numbers: [Int] = []
        while numbers.count < count - 4, let line = flooder.readLine() {
            numbers.append(Int(line.split(separator: "\t")[2]) ?? 0)
        }
        #expect(numbers.count == count - 4, "every frame was answered; none refused")
        #expect(numbers == numbers.sorted())
        let log = server.fileLines("messagelog.txt")
        #expect(log.count == count + 1)
        let flood = log.filter { $0.contains("; hans; flood ") }.map { String($0.split(separator: " ").last!) }
        #expect(flood == (1...count).map(String.init), "stored in the order sent")
        #expect(!server.process.stdout.contains("hans disconnected"))
    }

    /// A script that floods and closes its side at once: every frame is still answered, at
    /// the flood rate, before the connection closes.
    @Test func aFlooderThatClosesItsSideIsStillAnsweredInFull() async throws {
        let server = try await TestServer(extra: ["--message-rate", "20", "--message-burst", "4"])
        let flooder = try RawConnection(port: server.port)
        try flooder.login("hans", passwords["hans"]!)
        let count = 12
        flooder.send((1...count).map { "BCM\tflood \($0)\n" }.joined())
        flooder.shutdownWrite()
        let lines = try await offThePool { () -> [String] in
            var lines: [String] = []
            while let line = flooder.readLine() { lines.append(line) }
            return lines
        }
        #expect(lines.map { $0.split(separator: "\t").prefix(3).joined(separator: " ") } == (1...count).map { "OK BCM \($0)" }, "\(lines)")
        #expect(server.fileLines("messagelog.txt").count == count)
        try await server.process.expect("hans disconnected")
    }
}
