import Foundation
import Testing
import ToomCore

/// Every error string of spec §5, from the real client against the real server.
@Suite struct CommandErrorTests {
    @Test func everyCommandErrorHasItsMessage() async throws {
        let server = try await TestServer()
        let hans = try await server.login("hans")
        let yoda = try await server.login("yoda")

        let cases: [(String, [String])] = [
            ("xyz", ["Error. Invalid command!"]),
            ("bcm lower case", ["Error. Invalid command!"]),
            ("BCM", ["Usage: BCM <message>"]),
            ("BCM    ", ["Usage: BCM <message>"]),
            ("ATU now", ["Usage: ATU"]),
            ("OUT please", ["Usage: OUT"]),
            ("SRB", ["Usage: SRB <username1> [username2 ...]"]),
            ("SRM", ["Usage: SRM <roomID> <message>"]),
            ("SRM 1", ["Usage: SRM <roomID> <message>"]),
            ("RDM", [Command.usage("RDM")]),
            ("RDM b", [Command.usage("RDM")]),
            ("UPD yoda", ["Usage: UPD <username> <filename>"]),
            ("SRB hans", ["You cannot build a separate room with yourself"]),
            ("SRB yoda hans", ["You cannot build a separate room with yourself"]),
            ("SRB nobody vader ghost", ["nobody does not exist", "vader is offline", "ghost does not exist"]),
            ("SRM 1 hello", ["The separate room does not exist"]),
            ("SRM abc hello", ["The separate room does not exist"]),
            ("SRM -1 hello", ["The separate room does not exist"]),
            ("SRM 99999999999999999999 hello", ["The separate room does not exist"]),
        ]
        for (line, expected) in cases {
            #expect(try await hans.command(line) == expected, "\(line)")
        }

        let rdmType = try await hans.command("RDM x 1 Jun 2022 21:30:04")
        #expect(rdmType.count == 1 && rdmType[0].contains("'b'") && rdmType[0].contains("'s'"))
        for bad in ["yesterday", "31 Feb 2022 10:00:00", "31 Feb 2022 25:61:61", "1 June 2022 21:30:04", "1 Jun 22 21:30:04"] {
            let reply = try await hans.command("RDM b \(bad)")
            #expect(reply.count == 1 && reply[0].contains("D Mon YYYY HH:MM:SS"), "RDM b \(bad)")
        }
        let control = try await hans.command("BCM bell\u{7}here")
        #expect(control.count == 1 && control[0].contains("Control characters"))
        let tab = try await hans.command("BCM a\tb")
        #expect(tab.count == 1 && tab[0].contains("Control characters"))
        let long = try await hans.command("BCM " + String(repeating: "x", count: Text.maxMessageBytes + 1))
        #expect(long.count == 1 && long[0].contains("too long"))

        // A room, then the same member set again (duplicates count once).
        #expect(try await hans.command("SRB yoda") == ["Separate chat room has been created, room ID: 1, users in this room: hans, yoda"])
        #expect(try await hans.command("SRB yoda yoda") == ["a separate room (ID: 1) already created for these users"])
        #expect(try await yoda.command("SRB hans") == ["a separate room (ID: 1) already created for these users"])

        // Not a member.
        let vader = try await server.login("vader")
        #expect(try await vader.command("SRM 1 let me in") == ["You are not in this separate room chat"])
        #expect(try await vader.command("RDM s 1 Jan 2020 00:00:00") == [Messages.noNewMessage])

        // Nothing was stored by any of the refused commands.
        #expect(server.file("messagelog.txt") == "")
        #expect(server.file("SR_1_messageLog.txt") == nil)
        #expect(server.fileLines("rooms.txt") == ["1; hans, yoda"])
    }

    @Test func uploadChecksTheAudience() async throws {
        let server = try await TestServer()
        let hans = try await server.login("hans")
        #expect(try await hans.command("UPD hans file.mp4") == ["You cannot upload a file to yourself"])
        #expect(try await hans.command("UPD nobody file.mp4") == ["nobody does not exist"])
        #expect(try await hans.command("UPD yoda file.mp4") == ["yoda is offline"])
    }
}
