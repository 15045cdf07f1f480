import CZeroMQ
import PoolSystem

/// A libzmq socket. Not thread-safe: one thread creates it and makes every call on it.
///
/// Closing happens in `deinit`, after applying the linger set with ``setLinger(milliseconds:)``
/// (default 0 here, so closing never hangs on unsent messages unless asked to).
public final class Socket {
    let handle: UnsafeMutableRawPointer
    /// Keeps the context alive while the socket is open.
    private let context: Context
    public let type: SocketType

    public init(_ context: Context, _ type: SocketType) throws {
        guard let handle = zmq_socket(context.handle, type.rawValue) else {
            throw ZeroMQError.last("zmq_socket")
        }
        self.handle = handle
        self.context = context
        self.type = type
        // libzmq's default linger is infinite: a socket with unsent messages would hang exit.
        var zero: Int32 = 0
        zmq_setsockopt(handle, ZMQ_LINGER, &zero, MemoryLayout<Int32>.size)
    }

    deinit {
        zmq_close(handle)
    }

    public func bind(_ endpoint: String) throws {
        if zmq_bind(handle, endpoint) != 0 { throw ZeroMQError.last("bind \(endpoint)") }
    }

    public func connect(_ endpoint: String) throws {
        if zmq_connect(handle, endpoint) != 0 { throw ZeroMQError.last("connect \(endpoint)") }
    }

    public func disconnect(_ endpoint: String) throws {
        if zmq_disconnect(handle, endpoint) != 0 { throw ZeroMQError.last("disconnect \(endpoint)") }
    }

    // MARK: Sending

    /// Sends one frame. Returns `false` only when `dontWait` is set and the socket would block.
    @discardableResult
    public func send(_ bytes: UnsafeRawBufferPointer, more: Bool = false, dontWait: Bool = false) throws -> Bool {
        let flags = (more ? ZMQ_SNDMORE : 0) | (dontWait ? ZMQ_DONTWAIT : 0)
        let sent = Syscall.retryingOnInterrupt(errno: zmq_errno) {
            zmq_send(handle, bytes.baseAddress, bytes.count, flags)
        }
        switch sent {
        case .success: return true
        // Look at errno before building an error: EAGAIN is the common, cheap case.
        case .failure(let error) where error.rawValue == EAGAIN && dontWait: return false
        case .failure(let error): throw ZeroMQError(errno: error.rawValue, operation: "send")
        }
    }

    @discardableResult
    public func send(_ bytes: [UInt8], more: Bool = false, dontWait: Bool = false) throws -> Bool {
        try bytes.withUnsafeBytes { try send($0, more: more, dontWait: dontWait) }
    }

    /// Sends every frame of a multipart message. With `dontWait`, returns false (sending
    /// nothing) when the socket would block; the frames after the first never block.
    @discardableResult
    public func send(multipart frames: [[UInt8]], dontWait: Bool = false) throws -> Bool {
        for (index, frame) in frames.enumerated() {
            let sent = try send(frame, more: index < frames.count - 1, dontWait: dontWait && index == 0)
            if !sent { return false }
        }
        return true
    }

    // MARK: Receiving

    /// Receives one frame into `message`. Returns `false` only when `dontWait` is set and no
    /// frame is ready (or a receive timeout expired).
    public func receive(into message: Message, dontWait: Bool = false) throws -> Bool {
        let flags = dontWait ? ZMQ_DONTWAIT : 0
        let received = Syscall.retryingOnInterrupt(errno: zmq_errno) {
            zmq_msg_recv(message.pointer, handle, flags)
        }
        switch received {
        case .success: return true
        case .failure(let error) where error.rawValue == EAGAIN: return false
        case .failure(let error): throw ZeroMQError(errno: error.rawValue, operation: "receive")
        }
    }

    /// Receives a whole multipart message as copies of its frames; `nil` when none is ready
    /// and `dontWait` is set. Convenient for control traffic and tests, not the hot path.
    public func receiveMultipart(dontWait: Bool = false) throws -> [[UInt8]]? {
        let message = Message()
        guard try receive(into: message, dontWait: dontWait) else { return nil }
        var frames = [message.bytes]
        while message.hasMore {
            _ = try receive(into: message)
            frames.append(message.bytes)
        }
        return frames
    }

    /// Discards the remaining frames of a multipart message whose first frame was just received.
    public func discardRemainingFrames(of message: Message) throws -> Int {
        var discarded = 0
        while message.hasMore {
            _ = try receive(into: message)
            discarded += 1
        }
        return discarded
    }
}
