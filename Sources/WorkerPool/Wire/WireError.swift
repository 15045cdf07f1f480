/// Why a message from the network was rejected. Every decoder returns one of these for
/// hostile or incompatible input; none traps.
public enum WireError: Error, Equatable, Sendable, CustomStringConvertible {
    case emptyMessage
    case wrongFrameCount(Int)
    case truncated(what: String, needed: Int, available: Int)
    case unsupportedVersion(UInt8)
    case unknownKind(UInt8)
    case unexpectedKind(MessageKind, socket: String)
    case invalidUTF8(what: String)
    case trailingBytes(Int)
    case unknownStatus(UInt8)
    case fieldTooLong(what: String, length: Int, limit: Int)
    case tooLarge(size: Int, limit: Int)
    case invalidValue(what: String, value: Int)

    public var description: String {
        switch self {
        case .emptyMessage: "empty message"
        case .wrongFrameCount(let count): "expected 1 frame, got \(count)"
        case .truncated(let what, let needed, let available):
            "truncated message: \(what) needs \(needed) bytes, \(available) left"
        case .unsupportedVersion(let version):
            "unsupported protocol version \(version) (this build speaks \(WireFormat.version)); "
                + "producer and workers must run compatible releases"
        case .unknownKind(let kind): "unknown message kind \(kind)"
        case .unexpectedKind(let kind, let socket): "message kind \(kind) does not belong on the \(socket) socket"
        case .invalidUTF8(let what): "\(what) is not valid UTF-8"
        case .trailingBytes(let count): "\(count) unexpected bytes after the last record"
        case .unknownStatus(let status): "unknown result status \(status)"
        case .fieldTooLong(let what, let length, let limit): "\(what) is \(length) bytes, limit \(limit)"
        case .tooLarge(let size, let limit): "message of \(size) bytes exceeds the limit of \(limit)"
        case .invalidValue(let what, let value): "\(what) cannot be \(value)"
        }
    }
}
