import ToomCore

/// Separate rooms (spec §5): members, message numbering, and the rooms of each user.
/// Ids are 1, 2, 3… and never reused; rooms outlive their members' sessions.
struct RoomDirectory: Sendable {
    struct Room: Sendable {
        let id: Int
        let members: [String]
        /// The number of the room's last message.
        var lastMessage: Int
    }

    private(set) var rooms: [Int: Room] = [:]
    private var byMembers: [Set<String>: Int] = [:]
    private var roomsOf: [String: [Int]] = [:]
    private(set) var nextId = 1

    init(_ restored: [(room: RoomRecord, lastMessage: Int)]) {
        for (record, last) in restored.sorted(by: { $0.room.id < $1.room.id }) { add(record, lastMessage: last) }
    }

    func room(withMembers members: Set<String>) -> Int? { byMembers[members] }

    /// The user's rooms in creation order.
    func rooms(of user: String) -> [Int] { roomsOf[user] ?? [] }

    /// A new room's record, not yet added.
    func proposed(members: [String]) -> RoomRecord { RoomRecord(id: nextId, members: members) }

    mutating func add(_ record: RoomRecord, lastMessage: Int = 0) {
        var seen = Set<String>()
        let members = record.members.filter { seen.insert($0).inserted }
        rooms[record.id] = Room(id: record.id, members: members, lastMessage: lastMessage)
        byMembers[seen] = record.id
        for member in members { roomsOf[member, default: []].append(record.id) }
        nextId = max(nextId, record.id + 1)
    }

    /// Takes back the newest room (its write failed).
    mutating func removeNewest(_ id: Int) {
        guard let room = rooms.removeValue(forKey: id) else { return }
        byMembers[Set(room.members)] = nil
        for member in room.members { roomsOf[member]?.removeAll { $0 == id } }
        nextId = id
    }

    /// Numbers the room's next message.
    mutating func nextMessage(in id: Int) -> Int {
        rooms[id]!.lastMessage += 1
        return rooms[id]!.lastMessage
    }

    mutating func unnumber(in id: Int) { rooms[id]?.lastMessage -= 1 }

    /// A shared store numbered a message of the room.
    mutating func noteMessage(_ number: Int, in id: Int) {
        guard let last = rooms[id]?.lastMessage, number > last else { return }
        rooms[id]?.lastMessage = number
    }
}
