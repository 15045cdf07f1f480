import CZeroMQ

extension Socket {
    public func setOption(_ option: Int32, _ value: Int32) throws {
        var value = value
        if zmq_setsockopt(handle, option, &value, MemoryLayout<Int32>.size) != 0 {
            throw ZeroMQError.last("setsockopt \(option)")
        }
    }

    public func setOption(_ option: Int32, _ value: Int64) throws {
        var value = value
        if zmq_setsockopt(handle, option, &value, MemoryLayout<Int64>.size) != 0 {
            throw ZeroMQError.last("setsockopt \(option)")
        }
    }

    public func setOption(_ option: Int32, bytes: [UInt8]) throws {
        let result = bytes.withUnsafeBytes { zmq_setsockopt(handle, option, $0.baseAddress, $0.count) }
        if result != 0 { throw ZeroMQError.last("setsockopt \(option)") }
    }

    public func intOption(_ option: Int32) throws -> Int32 {
        var value: Int32 = 0
        var size = MemoryLayout<Int32>.size
        if zmq_getsockopt(handle, option, &value, &size) != 0 {
            throw ZeroMQError.last("getsockopt \(option)")
        }
        return value
    }

    public func stringOption(_ option: Int32) throws -> String {
        var buffer = [CChar](repeating: 0, count: 1024)
        var size = buffer.count
        if zmq_getsockopt(handle, option, &buffer, &size) != 0 {
            throw ZeroMQError.last("getsockopt \(option)")
        }
        return String(decoding: buffer.prefix(while: { $0 != 0 }).map(UInt8.init(bitPattern:)), as: UTF8.self)
    }

    /// How long `close` keeps trying to deliver queued messages; -1 forever, 0 not at all.
    public func setLinger(milliseconds: Int32) throws { try setOption(ZMQ_LINGER, milliseconds) }

    /// Messages queued per peer for sending before the socket blocks (PUSH) or drops (PUB).
    public func setSendHighWaterMark(_ messages: Int32) throws { try setOption(ZMQ_SNDHWM, messages) }

    /// Messages queued per peer on receipt before libzmq stops reading from that peer.
    public func setReceiveHighWaterMark(_ messages: Int32) throws { try setOption(ZMQ_RCVHWM, messages) }

    /// Queue messages only to peers whose connection is complete (no buffering for absent peers).
    public func setImmediate(_ on: Bool) throws { try setOption(ZMQ_IMMEDIATE, Int32(on ? 1 : 0)) }

    /// A peer sending a larger message is disconnected. -1 means no limit.
    public func setMaxMessageSize(_ bytes: Int64) throws { try setOption(ZMQ_MAXMSGSIZE, bytes) }

    /// ZMTP heartbeats: ping every `interval`, drop the connection after `timeout` without traffic.
    public func setHeartbeat(intervalMilliseconds interval: Int32, timeoutMilliseconds timeout: Int32) throws {
        try setOption(ZMQ_HEARTBEAT_IVL, interval)
        try setOption(ZMQ_HEARTBEAT_TIMEOUT, timeout)
        try setOption(ZMQ_HEARTBEAT_TTL, timeout)
    }

    /// Reconnect backoff: starts at `interval`, doubles up to `maximum` (0 keeps it fixed).
    public func setReconnect(intervalMilliseconds interval: Int32, maximumMilliseconds maximum: Int32) throws {
        try setOption(ZMQ_RECONNECT_IVL, interval)
        try setOption(ZMQ_RECONNECT_IVL_MAX, maximum)
    }

    public func setSendTimeout(milliseconds: Int32) throws { try setOption(ZMQ_SNDTIMEO, milliseconds) }
    public func setReceiveTimeout(milliseconds: Int32) throws { try setOption(ZMQ_RCVTIMEO, milliseconds) }

    /// SUB: receive messages whose first frame starts with `prefix` (empty: everything).
    public func subscribe(_ prefix: [UInt8] = []) throws { try setOption(ZMQ_SUBSCRIBE, bytes: prefix) }

    /// XPUB: pass every subscription up to the application, not just the first per topic,
    /// so each late joiner can be answered.
    public func setXPubVerbose(_ on: Bool) throws { try setOption(ZMQ_XPUB_VERBOSE, Int32(on ? 1 : 0)) }

    /// DEALER/ROUTER: this socket's identity as peers' ROUTER sockets see it (1-255 bytes).
    public func setRoutingID(_ bytes: [UInt8]) throws { try setOption(ZMQ_ROUTING_ID, bytes: bytes) }

    /// ROUTER: fail a send to an unknown or disconnected peer with `EHOSTUNREACH` instead of
    /// dropping it silently.
    public func setRouterMandatory(_ on: Bool) throws { try setOption(ZMQ_ROUTER_MANDATORY, Int32(on ? 1 : 0)) }

    /// The endpoint the last `bind` resolved to, e.g. the port chosen for `tcp://127.0.0.1:*`.
    public var lastEndpoint: String {
        get throws { try stringOption(ZMQ_LAST_ENDPOINT) }
    }
}
