import CZeroMQ

/// A connection event reported by libzmq's socket monitor.
public struct SocketEvent: Sendable, Equatable {
    public struct Kind: OptionSet, Sendable {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }
        public static let connected = Kind(rawValue: ZMQ_EVENT_CONNECTED)
        public static let disconnected = Kind(rawValue: ZMQ_EVENT_DISCONNECTED)
        /// The ZMTP handshake (and CURVE authentication, if any) completed: messages can flow.
        public static let handshakeSucceeded = Kind(rawValue: ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
        public static let handshakeFailedProtocol = Kind(rawValue: ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
        public static let handshakeFailedAuthentication = Kind(rawValue: ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
        public static let all = Kind(rawValue: ZMQ_EVENT_ALL)
    }

    public var kind: Kind
    /// The event's value: a file descriptor, an errno or a status code, depending on `kind`.
    public var value: UInt32
    public var endpoint: String
}

extension Socket {
    /// Starts publishing `events` of this socket on a PAIR endpoint (`inproc://...`); read them
    /// with ``SocketMonitor``. Call before `connect`/`bind` to see the first connection.
    public func startMonitor(_ endpoint: String, events: SocketEvent.Kind) throws {
        if zmq_socket_monitor(handle, endpoint, events.rawValue) != 0 {
            throw ZeroMQError.last("zmq_socket_monitor \(endpoint)")
        }
    }

    public func stopMonitor() throws {
        if zmq_socket_monitor(handle, nil, 0) != 0 { throw ZeroMQError.last("zmq_socket_monitor stop") }
    }
}

/// Reads the events a socket publishes after ``Socket/startMonitor(_:events:)``.
public final class SocketMonitor {
    public let socket: Socket
    private let message = Message()

    public init(_ context: Context, endpoint: String) throws {
        socket = try Socket(context, .pair)
        try socket.connect(endpoint)
    }

    /// The next event, or `nil` if none is ready and `dontWait` is set.
    public func next(dontWait: Bool = false) throws -> SocketEvent? {
        guard try socket.receive(into: message, dontWait: dontWait) else { return nil }
        let header = message.bytes
        guard header.count >= 6, message.hasMore else {
            _ = try socket.discardRemainingFrames(of: message)
            throw ZeroMQError(errno: EPROTO, operation: "monitor event of \(header.count) bytes")
        }
        let kind = Int32(header[0]) | Int32(header[1]) << 8
        let value = UInt32(header[2]) | UInt32(header[3]) << 8 | UInt32(header[4]) << 16 | UInt32(header[5]) << 24
        _ = try socket.receive(into: message)
        let endpoint = String(decoding: message.bytes, as: UTF8.self)
        _ = try socket.discardRemainingFrames(of: message)
        return SocketEvent(kind: SocketEvent.Kind(rawValue: kind), value: value, endpoint: endpoint)
    }
}
