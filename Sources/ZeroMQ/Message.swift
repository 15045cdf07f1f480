import CZeroMQ

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

    /// A copy of the frame's bytes.
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }
}
