/// The frame decoders on both ends. Each line of the input is one frame.
/// Server side: `Wire.decodeFrame` refuses bad UTF-8 and overlong frames, and its fields
/// join back into the frame. Client side: a server frame whose fields hold no control
/// character survives an encode and decode unchanged.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    for line in input(data, size).split(separator: 0x0A, omittingEmptySubsequences: false) {
        switch Wire.decodeFrame(line) {
        case .success(let fields):
            var text = String(decoding: line, as: UTF8.self)
            if text.hasSuffix("\r") { text.removeLast() }
            check(line.count < Wire.maxFrameBytes, "a frame of \(line.count) bytes was accepted")
            check(fields.joined(separator: "\t") == text, "fields do not join back into \(text.debugDescription)")
        case .failure(.invalidUTF8):
            check(String(validating: line, as: UTF8.self) == nil, "valid UTF-8 refused")
        case .failure(.tooLong):
            check(line.count >= Wire.maxFrameBytes, "a frame of \(line.count) bytes refused as too long")
        }
        let text = String(decoding: line, as: UTF8.self)
        if let frame = ServerFrame.decode(text[...]), !frame.fields.contains(where: { Text.containsControlCharacter($0) }) {
            let encoded = frame.encoded
            check(encoded.last == "\n" && encoded.dropLast().firstIndex(of: "\n") == nil, "encoding \(frame) is not one line")
            check(ServerFrame.decode(encoded.dropLast()) == frame, "\(frame) does not survive encode and decode")
        }
    }
    return 0
}
