/// The command parser on both ends. The input is a line typed at the prompt: whatever the
/// client's parser accepts, the server's parser must accept as the same command from the
/// wire (the client never sends what the server refuses), and nothing the server accepts
/// holds a control character that could reach a log line.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    let line = String(decoding: input(data, size), as: UTF8.self)
    if case .command(let command) = CommandParser.parse(line) {
        let fields = ([command.word] + command.arguments).map { Substring($0) }
        check(CommandParser.decode(fields) == .command(command), "the server refuses \(command) typed as \(line.debugDescription)")
    }
    // The same bytes as a frame straight from the wire.
    let fields = Wire.fields(line[...])
    if case .command(let command) = CommandParser.decode(fields) {
        check(!command.arguments.contains(where: { Text.containsControlCharacter($0) }), "\(command) holds a control character")
        let frame = Wire.encode([command.word] + command.arguments)
        check(CommandParser.decode(Wire.fields(frame.dropLast())) == .command(command), "\(command) does not survive encode and decode")
        switch command {
        case .broadcast(let message), .roomMessage(_, let message):
            check(message.utf8.count <= Text.maxMessageBytes, "a message of \(message.utf8.count) bytes was accepted")
        default:
            break
        }
    }
    return 0
}
