/// The exact strings of the spec (§4, §5): what clients and the server's terminal print.
public enum Messages {
    // Login (§4)
    public static let usernamePrompt = "Username: "
    public static let passwordPrompt = "Password: "
    public static let welcome = "Welcome to TOOM!"
    public static let invalidUsername = "Invalid Username. Please try again"
    public static let invalidPassword = "Invalid Password. Please try again"
    public static let passwordBlocked = "Invalid Password. Your account has been blocked. Please try again later"
    public static let accountBlocked = "Your account is blocked due to multiple login failures. Please try again later"
    public static func alreadyLoggedIn(_ user: String) -> String { "\(user) is already logged in" }

    // Client replies (§5)
    public static func broadcastStored(number: Int, timestamp: String) -> String {
        "Broadcast message, #\(number) broadcast at \(timestamp)."
    }
    public static func activeUser(_ user: String, address: String, udpPort: Int, since: String) -> String {
        "\(user), \(address), \(udpPort), active since \(since)."
    }
    public static let noOtherActiveUser = "no other active user"
    public static func roomCreated(id: Int, members: [String]) -> String {
        "Separate chat room has been created, room ID: \(id), users in this room: \(members.joined(separator: ", "))"
    }
    public static func roomMessageStored(number: Int, timestamp: String) -> String {
        "Separate room message, #\(number) issued at \(timestamp)."
    }
    public static func broadcastEntry(number: Int, user: String, message: String, timestamp: String) -> String {
        "#\(number); \(user): \"\(message)\" broadcast at \(timestamp)."
    }
    public static func roomHeader(_ id: Int) -> String { "room-\(id):" }
    public static func roomEntry(number: Int, user: String, message: String, timestamp: String) -> String {
        "#\(number); \(user): \"\(message)\" issued at \(timestamp)."
    }
    public static let noNewMessage = "no new message"
    public static func bye(_ user: String) -> String { "Bye, \(user)!" }

    // Errors (§5)
    public static let roomWithYourself = "You cannot build a separate room with yourself"
    public static func doesNotExist(_ user: String) -> String { "\(user) does not exist" }
    public static func isOffline(_ user: String) -> String { "\(user) is offline" }
    public static func roomExists(_ id: Int) -> String { "a separate room (ID: \(id)) already created for these users" }
    public static let noSuchRoom = "The separate room does not exist"
    public static let notMember = "You are not in this separate room chat"

    // Client-side notices
    public static let kicked = "You have been disconnected by the server operator"
    /// A shared store did not confirm a write (spec §11): the database is unreachable.
    public static let notConfirmed = "Error. The database did not confirm that this was stored; it may not have been"
    public static let serverShutdown = "The server is shutting down. Goodbye!"
    public static let connectionLost = "Connection to the server was lost"

    // Server terminal (§5)
    public static func serverBroadcast(user: String, number: Int, message: String, timestamp: String) -> String {
        "\(user) broadcasted BCM #\(number) \"\(message)\" at \(timestamp)."
    }
    public static func serverIssued(user: String, command: String) -> String { "\(user) issued \(command) command" }
    public static func serverRoomMessage(user: String, room: Int, record: MessageRecord) -> String {
        "\(user) issued a message in separate room \(room): #\(record.line)"
    }
    public static func serverLogin(user: String) -> String { "\(user) login" }
    public static func serverLogout(user: String) -> String { "\(user) logout" }
}
