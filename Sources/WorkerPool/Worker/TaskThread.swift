import CPoolSystem
import DequeModule
import Foundation
import ZeroMQ

/// One task thread of a worker process: its DEALER receives tasks from the producer, its PUSH
/// sends acknowledgements and results; it runs the tasks itself, one at a time.
///
/// Between tasks it drains the DEALER without blocking, so tasks that arrive while a long one
/// runs are acknowledged as soon as it ends, and the producer sees each task's progress.
struct TaskThread {
    let node: WorkerNode
    /// 0-based; the producer sees it as part of the routing id.
    let index: Int

    private var configuration: WorkerConfiguration { node.configuration }

    /// `worker id | thread` (6 bytes, little-endian): how the producer's ROUTER addresses this thread.
    var routingID: [UInt8] {
        var bytes: [UInt8] = []
        withUnsafeBytes(of: node.workerID.littleEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt16(index).littleEndian) { bytes.append(contentsOf: $0) }
        return bytes
    }

    func run() throws {
        let tasks = try Socket(node.context, .dealer)
        try configuration.curve.apply(to: tasks)
        try tasks.setRoutingID(routingID)
        try tasks.setReceiveHighWaterMark(0)
        try tasks.setMaxMessageSize(Int64(configuration.maxMessageSize))
        try tasks.setReconnect(intervalMilliseconds: 100, maximumMilliseconds: 2_000)
        try tasks.setHeartbeat(intervalMilliseconds: 1_000, timeoutMilliseconds: 5_000)
        let monitorEndpoint = "inproc://task-socket-\(index)"
        try tasks.startMonitor(monitorEndpoint, events: .handshakeSucceeded)
        let monitor = try SocketMonitor(node.context, endpoint: monitorEndpoint)
        try tasks.connect(configuration.endpoints.tasks)
        let results = try Socket(node.context, .push)
        try configuration.curve.apply(to: results)
        try results.setLinger(milliseconds: Int32(configuration.goodbyeTimeoutMilliseconds))
        try results.setReconnect(intervalMilliseconds: 100, maximumMilliseconds: 2_000)
        try results.setHeartbeat(intervalMilliseconds: 1_000, timeoutMilliseconds: 5_000)
        try results.connect(configuration.endpoints.results)

        var poller = Poller()
        let taskIndex = poller.add(tasks, .readable)
        let monitorIndex = poller.add(monitor.socket, .readable)
        let stopIndex = poller.add(fileDescriptor: node.stopSignal.fileDescriptor, .readable)
        var loop = Loop(
            node: node, index: index, tasks: tasks, results: results, queue: node.queues[index],
            stats: node.threadStats[index])
        var announced = false
        var busyRounds = 0

        while true {
            let idle = loop.isIdle
            if idle {
                try poller.poll(timeoutMilliseconds: -1)
                if poller.events(at: stopIndex).contains(.readable) { break }
            } else if node.isStopping {
                break
            }
            // Every completed handshake (the first, and each reconnection) is announced with
            // `ready`, so the producer knows this thread and that anything sent before was lost.
            // While busy, look for reconnections every 256 tasks rather than after each one.
            busyRounds = idle ? 0 : busyRounds + 1
            if (idle && poller.events(at: monitorIndex).contains(.readable)) || busyRounds % 256 == 1 {
                while let event = try monitor.next(dontWait: true) {
                    guard event.kind.contains(.handshakeSucceeded) else { continue }
                    try tasks.send(
                        WireFormat.encode(readyThread: UInt16(index), hello: node.hello, sender: node.workerID),
                        dontWait: true)
                    if !announced {
                        announced = true
                        node.taskThreadReady()
                    }
                }
            }
            if !idle || poller.events(at: taskIndex).contains(.readable) {
                try loop.receiveAvailable()
            }
            try loop.runNext()
        }
        try loop.flush()
    }

    /// The state of one task thread's receive-run-send cycle.
    struct Loop {
        let node: WorkerNode
        let index: Int
        let tasks: Socket
        let results: Socket
        let queue: WorkerNode.LocalQueue
        let stats: TaskThreadStats
        /// Bytes through this thread's sockets, stored in `stats` with what it holds.
        var bytesReceived: UInt64 = 0
        var bytesSent: UInt64 = 0
        let message = Message()
        var batch: WireFormat.MessageWriter
        var batchEpoch: UInt32 = 0
        var batchMicroseconds: UInt64 = 0
        var rejected = RateLimitedLog()
        /// Tasks received and not yet started: this thread's alone, so taking one locks nothing.
        var local = Deque<WorkerNode.QueuedTask>()
        /// Ids of results waiting in `batch`.
        var unsent: [UInt64] = []
        /// The context handed to every task, updated in place (no per-task copy of its strings).
        var context: TaskContext
        /// The handler of the last task name run: consecutive tasks mostly share a name.
        var lastHandler: (name: String, handler: TaskRegistry.Handler)?

        init(
            node: WorkerNode, index: Int, tasks: Socket, results: Socket, queue: WorkerNode.LocalQueue,
            stats: TaskThreadStats
        ) {
            self.node = node
            self.index = index
            self.tasks = tasks
            self.results = results
            self.queue = queue
            self.stats = stats
            batch = WireFormat.MessageWriter(kind: .results, sender: node.workerID, capacity: 256)
            context = TaskContext(
                workerName: node.configuration.name, host: node.configuration.host, events: node.events,
                logger: node.logger)
        }

        var isIdle: Bool { local.isEmpty }

        /// What this thread holds, for the control thread's heartbeats: published when it changes
        /// by a batch (tasks received, results sent), not per task. While a task runs nothing
        /// here changes, and the board says which task runs.
        func publishHeld() {
            var held: [UInt64] = []
            held.reserveCapacity(local.count + unsent.count)
            for task in local { held.append(task.record.id) }
            held += unsent
            queue.held.withLock { $0 = held }
            stats.tasksBytesReceived.store(bytesReceived, ordering: .relaxed)
            stats.resultsBytesSent.store(bytesSent, ordering: .relaxed)
        }

        /// Moves every task libzmq has ready into the local queue. No acknowledgement is sent: the
        /// result is one, and the next heartbeat lists what waits.
        mutating func receiveAvailable() throws {
            let receivedAt = cpool_monotonic_nanoseconds()
            var received = false
            defer { if received { publishHeld() } }
            while try tasks.receive(into: message, dontWait: true) {
                received = true
                bytesReceived &+= UInt64(message.count)
                if try tasks.discardRemainingFrames(of: message) > 0 {
                    node.counters.malformed.add(1, ordering: .relaxed)
                    rejected.warning(node.logger, "dropped a task message with extra frames (expected 1)")
                    continue
                }
                let decoded: (header: MessageHeader, tasks: [DecodedTask])
                do {
                    decoded = try message.withUnsafeBytes { bytes throws(WireError) in
                        try WireFormat.decodeTaskMessage(bytes)
                    }
                } catch {
                    node.counters.malformed.add(1, ordering: .relaxed)
                    rejected.warning(node.logger, "dropped a bad task message: \(error)")
                    continue
                }
                let epoch = decoded.header.epoch
                for item in decoded.tasks {
                    switch item {
                    case .task(let record):
                        local.append(WorkerNode.QueuedTask(record: record, epoch: epoch, receivedAt: receivedAt))
                    case .malformed(let id, let attempt, let error):
                        node.counters.malformed.add(1, ordering: .relaxed)
                        rejected.warning(node.logger, "task \(id) is malformed: \(error)")
                        try add(
                            ResultRecord(
                                id: id, attempt: attempt, status: .malformed,
                                payload: Array("malformed task record: \(error)".utf8)), epoch: epoch)
                    }
                }
            }
        }

        /// Runs the next queued task, if any; sends results when fast tasks have added up or the queue is empty.
        mutating func runNext() throws {
            guard let next = local.popFirst() else {
                try flush()
                return
            }
            let record = next.record
            let startedAt = cpool_monotonic_nanoseconds()
            node.board.begin(
                thread: index, task: TaskAttempt(id: record.id, attempt: record.attempt),
                limitMilliseconds: record.timeLimitMilliseconds, startedNanoseconds: startedAt)
            var result = execute(record, startedAt: startedAt)
            result.queuedMicroseconds = UInt32(clamping: (startedAt &- next.receivedAt) / 1_000)
            node.board.end(thread: index)
            try add(result, epoch: next.epoch)
            if batchMicroseconds >= node.configuration.resultFlushMicroseconds || isIdle { try flush() }
            if let limit = node.configuration.maxTasks,
                node.counters.done.load(ordering: .relaxed) + node.counters.failed.load(ordering: .relaxed)
                    >= UInt64(limit)
            {
                node.recycle()
            }
        }

        mutating func add(_ result: ResultRecord, epoch: UInt32) throws {
            if result.status == .ok {
                node.counters.done.add(1, ordering: .relaxed)
            } else {
                node.counters.failed.add(1, ordering: .relaxed)
            }
            if batch.count > 0
                && (epoch != batchEpoch || batch.isFull
                    || batch.byteCount + result.encodedSize > node.sendLimit)
            {
                try flush()
            }
            if batch.count == 0 {
                batch = WireFormat.MessageWriter(kind: .results, sender: node.workerID, epoch: epoch, capacity: 256)
                batchEpoch = epoch
            }
            batch.append(result)
            batchMicroseconds += UInt64(result.runMicroseconds)
            unsent.append(result.id)
        }

        mutating func flush() throws {
            guard batch.count > 0 else { return }
            let sent = UInt64(batch.count)
            let flushedEpoch = batchEpoch
            var finished = WireFormat.MessageWriter(kind: .results, sender: node.workerID, capacity: 256)
            swap(&finished, &batch)
            batchMicroseconds = 0
            let bytes = finished.finish()
            try results.send(bytes)
            bytesSent &+= UInt64(bytes.count)
            unsent.removeAll(keepingCapacity: true)
            publishHeld()
            node.counters.resultsSentByEpoch.withLock { $0[flushedEpoch, default: 0] += sent }
        }

        private mutating func execute(_ record: TaskRecord, startedAt: UInt64) -> ResultRecord {
            context.attempt = record.attempt
            context.taskID = record.id
            if lastHandler?.name != record.name {
                lastHandler = node.registry.handler(named: record.name).map { (record.name, $0) }
            }
            let outcome =
                lastHandler.map { $0.handler(record.payload, context) } ?? node.registry.unknown(record.name)
            let micros = (cpool_monotonic_nanoseconds() &- startedAt) / 1_000
            var result = ResultRecord(
                id: record.id, attempt: record.attempt, status: outcome.status,
                runMicroseconds: UInt32(clamping: micros), payload: outcome.payload)
            let limit = node.sendLimit - WireFormat.headerSize - ResultRecord.fixedSize
            if result.payload.count > limit {
                result.status = .tooLarge
                result.payload = Array(
                    "result of \(outcome.payload.count) bytes exceeds the message limit of \(limit)".utf8)
            }
            if result.status != .ok {
                node.logger.info("task \(record.id) (\(record.name)) \(result.status): \(result.message)")
            }
            return result
        }
    }
}
