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
        let text = bytes.withContiguousStorageIfAvailable { String(validating: $0, as: UTF8.self) }
            ?? String(validating: bytes, as: UTF8.self)
        guard let text else { return .failure(.invalidUTF8) }
        return .success(fields(text[...]))
    }
}
