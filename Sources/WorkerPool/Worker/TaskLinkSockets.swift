import CPoolSystem
import ZeroMQ

/// A worker process's connection for tasks: a DEALER that receives tasks (and says `ready`) and
/// a PUSH that sends results, both owned by one thread. The producer addresses it by
/// `worker id | link 0`; it feeds `capacity` task threads, so one message carries tasks for
/// several threads and one carries their results.
struct TaskLinkSockets {
    let node: WorkerNode
    let tasks: Socket
    let results: Socket
    let monitor: SocketMonitor
    /// How many task threads this link feeds (the producer gives it their credit together) and
    /// how long it may hold a result.
    let info: TaskLinkInfo
    private let message = Message()
    private var rejected = RateLimitedLog()
    /// Bytes through the two sockets, for metrics: kept here, stored in `stats` per message
    /// (one relaxed store, no read-modify-write of shared memory).
    private var bytesReceived: UInt64 = 0
    private var bytesSent: UInt64 = 0
    private var stats: TaskThreadStats { node.linkStats }
    private var announced = false

    static let link: UInt16 = 0

    init(node: WorkerNode, capacity: Int, resultDelayMicroseconds: UInt64) throws {
        self.node = node
        info = TaskLinkInfo(
            link: Self.link, capacity: UInt16(clamping: capacity),
            resultDelayMicroseconds: UInt32(clamping: resultDelayMicroseconds))
        let configuration = node.configuration
        tasks = try Socket(node.context, .dealer)
        try configuration.curve.apply(to: tasks)
        results = try Socket(node.context, .push)
        monitor = try Self.connectTasks(tasks, node: node)
        try configuration.curve.apply(to: results)
        try results.setLinger(milliseconds: Int32(configuration.goodbyeTimeoutMilliseconds))
        try results.setReconnect(intervalMilliseconds: 100, maximumMilliseconds: 2_000)
        try results.setHeartbeat(intervalMilliseconds: 1_000, timeoutMilliseconds: 5_000)
        try results.connect(configuration.endpoints.results)
    }

    /// Connects the DEALER as `worker id | link` (6 bytes, little-endian: the producer's ROUTER
    /// addresses it so), watching its handshakes.
    private static func connectTasks(_ tasks: Socket, node: WorkerNode) throws -> SocketMonitor {
        var id: [UInt8] = []
        withUnsafeBytes(of: node.workerID.littleEndian) { id.append(contentsOf: $0) }
        withUnsafeBytes(of: link.littleEndian) { id.append(contentsOf: $0) }
        try tasks.setRoutingID(id)
        try tasks.setReceiveHighWaterMark(0)
        try tasks.setMaxMessageSize(Int64(node.configuration.maxMessageSize))
        try tasks.setReconnect(intervalMilliseconds: 100, maximumMilliseconds: 2_000)
        try tasks.setHeartbeat(intervalMilliseconds: 1_000, timeoutMilliseconds: 5_000)
        let monitorEndpoint = "inproc://task-link-\(link)"
        try tasks.startMonitor(monitorEndpoint, events: .handshakeSucceeded)
        let monitor = try SocketMonitor(node.context, endpoint: monitorEndpoint)
        try tasks.connect(node.configuration.endpoints.tasks)
        return monitor
    }

    /// Every completed handshake (the first, and each reconnection) is announced with `ready`,
    /// so the producer knows this link and that anything sent before was lost. The first tells
    /// the control thread the process can be introduced.
    mutating func announceHandshakes() throws {
        while let event = try monitor.next(dontWait: true) {
            guard event.kind.contains(.handshakeSucceeded) else { continue }
            try tasks.send(
                WireFormat.encode(ready: info, hello: node.hello, sender: node.workerID),
                dontWait: true)
            if !announced {
                announced = true
                node.taskLinkReady()
            }
        }
    }

    /// Receives every task message libzmq has ready, without blocking: each task is appended to
    /// `queue`, each record that does not decode to `malformed` as the result that fails it.
    /// Returns whether any message arrived.
    mutating func receiveAvailable(
        into queue: inout TaskQueue, malformed: inout [(result: ResultRecord, epoch: UInt32)]
    ) throws -> Bool {
        let receivedAt = cpool_monotonic_nanoseconds()
        var received = false
        defer { if received { stats.tasksBytesReceived.store(bytesReceived, ordering: .relaxed) } }
        var broken: [(id: UInt64, attempt: UInt16, error: WireError)] = []
        while try tasks.receive(into: message, dontWait: true) {
            received = true
            bytesReceived &+= UInt64(message.count)
            if try tasks.discardRemainingFrames(of: message) > 0 {
                node.counters.malformed.add(1, ordering: .relaxed)
                rejected.warning(node.logger, "dropped a task message with extra frames (expected 1)")
                continue
            }
            let epoch: UInt32
            do {
                epoch = try queue.read(message.bytes, receivedAt: receivedAt, malformed: &broken)
            } catch {
                node.counters.malformed.add(1, ordering: .relaxed)
                rejected.warning(node.logger, "dropped a bad task message: \(error)")
                continue
            }
            guard !broken.isEmpty else { continue }
            for (id, attempt, error) in broken {
                node.counters.malformed.add(1, ordering: .relaxed)
                rejected.warning(node.logger, "task \(id) is malformed: \(error)")
                malformed.append(
                    (
                        ResultRecord(
                            id: id, attempt: attempt, status: .malformed,
                            payload: Array("malformed task record: \(error)".utf8)), epoch
                    ))
            }
            broken.removeAll()
        }
        return received
    }

    /// Sends a finished results message and counts it for the goodbye.
    mutating func send(_ batch: consuming WireFormat.MessageWriter, epoch: UInt32) throws {
        let sent = UInt64(batch.count)
        let bytes = batch.finish()
        try results.send(bytes)
        bytesSent &+= UInt64(bytes.count)
        stats.resultsBytesSent.store(bytesSent, ordering: .relaxed)
        node.counters.resultsSentByEpoch.withLock { $0[epoch, default: 0] += sent }
    }
}
