/// Turns the server's reply frames into the lines the spec says a user sees (§5).
/// The client prints them; the server's terminal echoes them for ATU, SRB and RDM.
public enum ReplyRenderer {
    public static func lines(for replies: [ServerFrame]) -> [String] {
        var lines: [String] = []
        var currentRoom: Int?
        for reply in replies {
            switch reply {
            case .item("USER", let f) where f.count == 4:
                lines.append(Messages.activeUser(f[0], address: f[1], udpPort: Int(f[2]) ?? 0, since: f[3]))
            case .item("B", let f) where f.count == 4:
                lines.append(Messages.broadcastEntry(number: Int(f[0]) ?? 0, user: f[2], message: f[3], timestamp: f[1]))
            case .item("S", let f) where f.count == 5:
                let room = Int(f[0]) ?? 0
                if room != currentRoom {
                    lines.append(Messages.roomHeader(room))
                    currentRoom = room
                }
                lines.append(Messages.roomEntry(number: Int(f[1]) ?? 0, user: f[3], message: f[4], timestamp: f[2]))
            case .ok("ATU", let f):
                if f.first == "0" { lines.append(Messages.noOtherActiveUser) }
            case .ok("RDM", let f):
                if f.first == "0" { lines.append(Messages.noNewMessage) }
            case .ok("BCM", let f) where f.count == 2:
                lines.append(Messages.broadcastStored(number: Int(f[0]) ?? 0, timestamp: f[1]))
            case .ok("SRB", let f) where f.count >= 2:
                lines.append(Messages.roomCreated(id: Int(f[0]) ?? 0, members: Array(f.dropFirst())))
            case .ok("SRM", let f) where f.count == 3:
                lines.append(Messages.roomMessageStored(number: Int(f[1]) ?? 0, timestamp: f[2]))
            case .ok("OUT", let f) where f.count == 1:
                lines.append(Messages.bye(f[0]))
            case .error(_, let messages):
                lines.append(contentsOf: messages)
            default:
                break
            }
        }
        return lines
    }

    /// True for the frame that ends a reply (every request gets exactly one).
    public static func isFinal(_ frame: ServerFrame) -> Bool {
        switch frame {
        case .ok, .error, .hello: return true
        case .item, .event: return false
        }
    }
}
