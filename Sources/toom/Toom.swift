import ArgumentParser
import Foundation
import ToomCore

@main
struct Toom: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "toom",
        abstract: "Terminal chat and peer-to-peer file sharing.",
        discussion: """
        One server holds the accounts, the online users, the broadcast and room logs. \
        Clients log in over TCP and send files to each other directly over UDP.
        """,
        version: ToomVersion.current,
        subcommands: [ServerCommand.self, ClientCommand.self, AdminCommand.self, ReplayCommand.self, PasswdCommand.self, ImportCommand.self, ExportCommand.self]
    )

    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        // The parser would read a negative attempts value such as "-1" as an option;
        // the spec wants the attempts message for it.
        if arguments.count >= 3, arguments[0] == "server", !arguments[1].hasPrefix("-"),
           arguments[2].count > 1, arguments[2].hasPrefix("-"), Double(arguments[2]) != nil {
            ServerCommand.reportInvalidAttempts(arguments[2])
            Foundation.exit(64)
        }
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}
