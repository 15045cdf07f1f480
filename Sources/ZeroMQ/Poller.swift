import CZeroMQ

/// `zmq_poll` over sockets and plain file descriptors, all owned by the calling thread.
public struct Poller {
    public struct Events: OptionSet, Sendable {
        public let rawValue: Int16
        public init(rawValue: Int16) { self.rawValue = rawValue }
        public static let readable = Events(rawValue: Int16(ZMQ_POLLIN))
        public static let writable = Events(rawValue: Int16(ZMQ_POLLOUT))
    }

    private var items: [zmq_pollitem_t] = []

    public init() {}

    /// Adds a socket and returns its index for ``events(at:)``.
    public mutating func add(_ socket: Socket, _ events: Events) -> Int {
        items.append(zmq_pollitem_t(socket: socket.handle, fd: -1, events: events.rawValue, revents: 0))
        return items.count - 1
    }

    /// Adds a file descriptor (an eventfd, a pipe, stdin) and returns its index.
    public mutating func add(fileDescriptor fd: Int32, _ events: Events) -> Int {
        items.append(zmq_pollitem_t(socket: nil, fd: fd, events: events.rawValue, revents: 0))
        return items.count - 1
    }

    /// Changes what is watched at `index`; an empty set ignores that item.
    public mutating func watch(_ index: Int, _ events: Events) {
        items[index].events = events.rawValue
    }

    /// Waits up to `timeoutMilliseconds` (-1 forever) and returns how many items are ready.
    /// An interrupting signal returns 0.
    @discardableResult
    public mutating func poll(timeoutMilliseconds: Int) throws -> Int {
        for index in items.indices { items[index].revents = 0 }
        let count = items.withUnsafeMutableBufferPointer {
            zmq_poll($0.baseAddress, Int32($0.count), timeoutMilliseconds)
        }
        if count < 0 {
            let error = ZeroMQError.last("zmq_poll")
            if error.code == .interrupted { return 0 }
            throw error
        }
        return Int(count)
    }

    public func events(at index: Int) -> Events { Events(rawValue: items[index].revents) }
}
