/// Why a frame's bytes were refused. The description is the one line the peer is told.
public enum FrameError: Error, Equatable, Sendable, CustomStringConvertible {
    case tooLong
    case invalidUTF8

    public var description: String {
        switch self {
        case .tooLong: return "Protocol error: a frame is longer than \(Wire.maxFrameBytes) bytes"
        case .invalidUTF8: return "Protocol error: a frame is not valid UTF-8"
        }
    }
}

extension Wire {
    /// Turns one frame (its bytes without the newline) into fields: the length and the
    /// UTF-8 are checked before anything looks at the text. The server decodes every
    /// frame it reads with this; the fuzzer drives it with arbitrary bytes.
    public static func decodeFrame<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> Result<[Substring], FrameError> {
        guard bytes.count < maxFrameBytes else { return .failure(.tooLong) }
        let decoded = bytes.withContiguousStorageIfAvailable { decodeFrame(contiguous: $0) }
            ?? Array(bytes).withUnsafeBufferPointer { decodeFrame(contiguous: $0) }
        guard let decoded else { return .failure(.invalidUTF8) }
        return .success(decoded)
    }

    /// Validates the bytes as UTF-8 into one `String` and cuts it at the tab bytes found in
    /// the same pass over the bytes: no `Character` is looked at (a tab is a grapheme of its
    /// own, so cutting at its byte is what a `Character` split would do).
    private static func decodeFrame(contiguous bytes: UnsafeBufferPointer<UInt8>) -> [Substring]? {
        guard let text = String(validating: bytes, as: UTF8.self) else { return nil }
        var end = bytes.count
        if end > 0, bytes[end - 1] == 0x0D { end -= 1 }
        return split(text, bytes: UnsafeBufferPointer(rebasing: bytes[..<end]))
    }

    /// `text` cut at the tabs of `bytes`, its UTF-8 (or a prefix of it).
    static func split(_ text: String, bytes: UnsafeBufferPointer<UInt8>) -> [Substring] {
        var fields: [Substring] = []
        fields.reserveCapacity(4)
        let utf8 = text.utf8
        var fieldStart = 0
        var startIndex = utf8.startIndex
        for offset in 0..<bytes.count where bytes[offset] == 0x09 {
            let tab = utf8.index(startIndex, offsetBy: offset - fieldStart)
            fields.append(text[startIndex..<tab])
            startIndex = utf8.index(after: tab)
            fieldStart = offset + 1
        }
        fields.append(text[startIndex..<utf8.index(startIndex, offsetBy: bytes.count - fieldStart)])
        return fields
    }
}
