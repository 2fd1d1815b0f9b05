import ToomCore

/// The operator's commands against a running server, shared by the console and the admin
/// channel so both answer alike. Every action also shows an event line on the server's terminal.
public struct OperatorActions: Sendable {
    let server: ChatServer

    public init(server: ChatServer) { self.server = server }

    public var report: OperatorReport {
        OperatorReport(
            users: server.onlineUsers.map { .init(user: $0.user, address: $0.address, udpPort: $0.udpPort, since: $0.since) },
            rooms: server.rooms.map { .init(id: $0.id, members: $0.members) },
            blocked: server.blockedUsers.map { .init(user: $0.user, secondsLeft: $0.secondsLeft) })
    }

    /// Runs list, kick or unblock; quit and help belong to the console.
    public func perform(_ command: OperatorCommand) -> OperatorReply {
        switch command {
        case .list:
            return OperatorReply(done: true, lines: report.lines)
        case .kick(let user):
            return server.kick(user) ? .done(OperatorMessages.kicked(user)) : .refused(OperatorMessages.notOnline(user))
        case .unblock(let user):
            switch server.unblock(user) {
            case .unblocked:
                server.output.events([OperatorMessages.unblockEvent(user)])
                return .done(OperatorMessages.unblocked(user))
            case .notBlocked:
                return .done(OperatorMessages.wasNotBlocked(user))
            case .noSuchUser:
                return .refused(Messages.doesNotExist(user))
            }
        case .quit, .help:
            return .refused("\(command) is a console command")
        }
    }

    /// User names for tab completion: online users, or blocked ones for unblock.
    func names(for command: String) -> [String] {
        switch command {
        case "kick": return server.onlineUsers.map(\.user)
        case "unblock": return server.blockedUsers.map(\.user)
        default: return []
        }
    }
}
