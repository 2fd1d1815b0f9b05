import ArgumentParser
import Foundation
import ToomCore
import ToomServer

struct AdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin",
        abstract: "Ask the running server to list, kick or unblock.",
        discussion: """
        Talks to the server through the Unix domain socket toom.sock in its data directory, \
        which only the server's owner can use: the socket must belong to the caller and have \
        mode 0600, and the server checks the caller's uid. Exit status: 0 when done, 1 when the \
        action or the socket is refused (e.g. no such user), 2 when no server runs there.
        """,
        subcommands: [List.self, Kick.self, Unblock.self]
    )

    func run() async throws {
        throw ValidationError("Missing the verb: list, kick <user> or unblock <user>")
    }

    struct Options: ParsableArguments {
        @Option(name: .customLong("data-dir"), help: ArgumentHelp("The server's data directory.", valueName: "dir"))
        var dataDirectory: String = "."
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the users online (address, UDP port, since when), the rooms and the blocked accounts.")

        @OptionGroup var options: Options

        @Flag(help: "Write one JSON object: users, rooms, blocked.")
        var json = false

        func run() async throws {
            let answer = try await AdminCommand.send(.list, options)
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                let data = try encoder.encode(answer.report)
                RawOutput.write(1, String(decoding: data, as: UTF8.self) + "\n")
            } else {
                RawOutput.write(1, answer.report.lines.joined(separator: "\n") + "\n")
            }
        }
    }

    struct Kick: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Disconnect a user; their client is told.")

        @OptionGroup var options: Options

        @Argument(help: "The user to disconnect.")
        var user: String

        func run() async throws {
            try await AdminCommand.perform(.kick(user), options)
        }
    }

    struct Unblock: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Lift a login block now.")

        @OptionGroup var options: Options

        @Argument(help: "The blocked user.")
        var user: String

        func run() async throws {
            try await AdminCommand.perform(.unblock(user), options)
        }
    }

    static func perform(_ command: OperatorCommand, _ options: Options) async throws {
        let answer = try await send(command, options)
        RawOutput.write(1, answer.reply.lines.joined(separator: "\n") + "\n")
    }

    static func send(_ command: OperatorCommand, _ options: Options) async throws -> (report: OperatorReport, reply: OperatorReply) {
        signal(SIGPIPE, SIG_IGN)
        switch await AdminClient.send(command, dataDirectory: options.dataDirectory) {
        case .success(let answer):
            return answer
        case .failure(.refused(let message)):
            RawOutput.write(2, message + "\n")
            throw ExitCode(1)
        case .failure(.noServer(let message)):
            RawOutput.write(2, message + "\n")
            throw ExitCode(2)
        }
    }
}
