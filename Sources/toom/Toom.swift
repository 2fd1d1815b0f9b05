import ArgumentParser

@main
struct Toom: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "toom",
        abstract: "Terminal chat and peer-to-peer file sharing.",
        discussion: """
        One server holds the accounts, the online users, the broadcast and room logs. \
        Clients log in over TCP and send files to each other directly over UDP.
        """,
        subcommands: [ServerCommand.self, ClientCommand.self]
    )
}
