/// What a live client (spec §8, docs/PROTOCOL.md §8) prints for a delivery. The event
/// kinds and the capability are in Wire.swift.
extension ReplyRenderer {
    /// The line a live client prints for a delivery, or nil for a frame that is not one
    /// (or is malformed: a client ignores what it cannot read).
    public static func delivery(_ frame: ServerFrame) -> String? {
        guard case .event(let kind, let f) = frame else { return nil }
        switch kind {
        case EventKind.broadcast where f.count == 4:
            guard let number = Int(f[0]) else { return nil }
            return Messages.broadcastEntry(number: number, user: f[2], message: f[3], timestamp: f[1])
        case EventKind.roomMessage where f.count == 5:
            guard let room = Int(f[0]), let number = Int(f[1]) else { return nil }
            return Messages.roomDelivery(room: room, number: number, user: f[3], message: f[4], timestamp: f[2])
        case EventKind.roomBuilt where f.count >= 3:
            guard let id = Int(f[0]) else { return nil }
            return Messages.roomCreated(id: id, members: Array(f.dropFirst()))
        default:
            return nil
        }
    }
}

extension Messages {
    /// A room message delivered live: the `RDM s` line, prefixed with its room.
    public static func roomDelivery(room: Int, number: Int, user: String, message: String, timestamp: String) -> String {
        "room-\(room): " + roomEntry(number: number, user: user, message: message, timestamp: timestamp)
    }
}
