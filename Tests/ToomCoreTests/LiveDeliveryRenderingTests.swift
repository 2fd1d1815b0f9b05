import Testing
import ToomCore

/// The lines a live client prints for deliveries (spec §8), and the HELLO that asks for them.
@Suite struct LiveDeliveryRenderingTests {
    static let ts = "21 Nov 2026 06:19:34"

    @Test func deliveriesRenderAsTheSpecSays() {
        #expect(ReplyRenderer.delivery(.event(kind: "B", fields: ["3", Self.ts, "yoda", "hi; \"all\""]))
                == "#3; yoda: \"hi; \"all\"\" broadcast at \(Self.ts).")
        #expect(ReplyRenderer.delivery(.event(kind: "S", fields: ["2", "7", Self.ts, "hans", "in the room"]))
                == "room-2: #7; hans: \"in the room\" issued at \(Self.ts).")
        #expect(ReplyRenderer.delivery(.event(kind: "SRB", fields: ["4", "yoda", "hans", "luke"]))
                == "Separate chat room has been created, room ID: 4, users in this room: yoda, hans, luke")
    }

    @Test(arguments: [
        ServerFrame.event(kind: "B", fields: ["x", ts, "yoda", "hi"]),
        .event(kind: "B", fields: ["1", ts, "yoda"]),
        .event(kind: "S", fields: ["1", ts, "yoda", "hi"]),
        .event(kind: "SRB", fields: ["1", "yoda"]),
        .event(kind: "OFFER", fields: ["yoda", "f", "t"]),
        .event(kind: "TOO_SLOW", fields: ["reason"]),
        .item(kind: "B", fields: ["1", ts, "yoda", "hi"]),
    ])
    func otherOrMalformedFramesAreNoDelivery(_ frame: ServerFrame) {
        #expect(ReplyRenderer.delivery(frame) == nil)
    }

    @Test func helloAsksForCapabilitiesAfterTheAgent() {
        #expect(LoginFrame.hello() == ["HELLO", "1", "toom"])
        #expect(Wire.encode(LoginFrame.hello(capabilities: [Capability.live])) == "HELLO\t1\ttoom\tlive\n")
    }
}
