import CZeroMQ
import Glibc

/// A reusable receive buffer for one frame (`zmq_msg_t`).
///
/// Receiving into the same `Message` again releases the previous frame, so a receive loop
/// allocates nothing per frame. Not thread-safe; it belongs to the socket's owner thread.
public final class Message {
    let pointer: UnsafeMutablePointer<zmq_msg_t>

    public init() {
        pointer = .allocate(capacity: 1)
        zmq_msg_init(pointer)
    }

    deinit {
        zmq_msg_close(pointer)
        pointer.deallocate()
    }

    /// The frame's size in bytes.
    public var count: Int { zmq_msg_size(pointer) }

    /// Whether another frame of the same multipart message follows.
    public var hasMore: Bool { zmq_msg_more(pointer) != 0 }

    /// Calls `body` with the frame's bytes, valid only during the call.
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        let size = zmq_msg_size(pointer)
        guard size > 0, let data = zmq_msg_data(pointer) else {
            return try body(UnsafeRawBufferPointer(start: nil, count: 0))
        }
        return try body(UnsafeRawBufferPointer(start: data, count: size))
    }

    /// A metadata property of the frame (`zmq_msg_gets`), e.g. `User-Id`: what the ZAP handler
    /// said of the connection it came on. Nil when the connection has no such property.
    public func property(_ name: String) -> String? {
        guard let value = zmq_msg_gets(pointer, name) else { return nil }
        return String(cString: value)
    }

    /// Calls `body` with the bytes of property `name` (valid only during the call), or with nil;
    /// no String is built.
    public func withProperty<R>(_ name: StaticString, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
        let value = name.withUTF8Buffer { utf8 in
            utf8.withMemoryRebound(to: CChar.self) { zmq_msg_gets(pointer, $0.baseAddress) }
        }
        guard let value else { return body(nil) }
        return body(UnsafeRawBufferPointer(start: value, count: strlen(value)))
    }

    /// A copy of the frame's bytes.
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }
}
