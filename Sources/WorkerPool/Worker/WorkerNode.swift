import Foundation
import Logging
import Synchronization
import ZeroMQ

/// One worker process: connects to a producer, runs tasks on its threads, sends results,
/// follows the producer's events, and leaves cleanly on shutdown or ``stop()``.
///
/// Threads: the thread calling ``run()`` owns the events SUB socket and a control PUSH socket
/// (hello, goodbye, event requests); each task thread owns its own PULL (tasks) and PUSH
/// (results), so a task's trip through the worker never crosses a thread.
public final class WorkerNode: Sendable {
    public let configuration: WorkerConfiguration
    public let events: PoolEvents
    private let registry: TaskRegistry
    private let logger: Logger
    private let workerID: UInt32
    private let context: Context
    private let state = Mutex(SharedState())
    /// Readable forever once signalled: every task thread polls it and leaves.
    private let stopSignal = Wakeup()
    /// Wakes the control thread: a task thread ended, or an event request is waiting.
    private let controlWakeup = Wakeup()
    private let counters = Counters()

    private struct SharedState: Sendable {
        var stopping = false
        var stopReason = ""
        var pendingEventRequests: [EventRequest] = []
        var liveTaskThreads = 0
        var readyTaskThreads = 0
    }

    /// Lock-free counters shared by the task threads.
    private final class Counters: Sendable {
        let done = Atomic<UInt64>(0)
        let failed = Atomic<UInt64>(0)
        let resultsSent = Atomic<UInt64>(0)
        let malformed = Atomic<UInt64>(0)
    }

    public init(configuration: WorkerConfiguration, registry: TaskRegistry, logger: Logger) throws {
        self.configuration = configuration
        self.registry = registry
        self.logger = logger
        self.workerID = UInt32.random(in: 1...UInt32.max)
        self.context = try Context()
        let forwardState = ForwardBox()
        self.events = PoolEvents(forward: { request in forwardState.forward?(request) })
        forwardState.forward = { [weak self] request in self?.enqueue(request) }
    }

    private func enqueue(_ request: EventRequest) {
        state.withLock { $0.pendingEventRequests.append(request) }
        controlWakeup.signal()
    }

    /// Holds the event-forwarding closure, set once in `init` before any task runs.
    /// `@unchecked Sendable`: written once during `init`, only read afterwards.
    private final class ForwardBox: @unchecked Sendable {
        var forward: (@Sendable (EventRequest) -> Void)?
    }

    /// Asks the worker to finish the tasks in hand and leave. Safe from any thread.
    public func stop(reason: String) {
        let first = state.withLock { state -> Bool in
            guard !state.stopping else { return false }
            state.stopping = true
            state.stopReason = reason
            return true
        }
        if first {
            stopSignal.signal()
            controlWakeup.signal()
        }
    }

    private var isStopping: Bool { state.withLock { $0.stopping } }

    /// Runs until shutdown or ``stop()``, on the calling thread. Returns what the worker did.
    public func run() throws -> WorkerReport {
        let subscriber = try Socket(context, .sub)
        try subscriber.setMaxMessageSize(Int64(configuration.maxMessageSize))
        try subscriber.setReconnect(intervalMilliseconds: 100, maximumMilliseconds: 2_000)
        try subscriber.setHeartbeat(intervalMilliseconds: 1_000, timeoutMilliseconds: 5_000)
        try subscriber.subscribe()
        try subscriber.connect(configuration.endpoints.events)

        let control = try Socket(context, .push)
        try control.setLinger(milliseconds: Int32(configuration.goodbyeTimeoutMilliseconds))
        try control.setReconnect(intervalMilliseconds: 100, maximumMilliseconds: 2_000)
        try control.setHeartbeat(intervalMilliseconds: 1_000, timeoutMilliseconds: 5_000)
        try control.connect(configuration.endpoints.results)

        let hello = WireFormat.encode(
            WorkerHello(
                pid: UInt32(truncatingIfNeeded: getpid()), threads: UInt16(clamping: configuration.threads),
                name: configuration.name, host: configuration.host),
            sender: workerID)

        var poller = Poller()
        let subIndex = poller.add(subscriber, .readable)
        let wakeIndex = poller.add(fileDescriptor: controlWakeup.fileDescriptor, .readable)
        let message = Message()
        var lastHello = ContinuousClock.now
        var taskThreadsStarted = false
        var helloSent = false
        var released = false
        var goodbyeSentAt: ContinuousClock.Instant?
        let helloInterval = Duration.milliseconds(configuration.helloIntervalMilliseconds)
        let goodbyeTimeout = Duration.milliseconds(configuration.goodbyeTimeoutMilliseconds)

        logger.debug("connected to \(configuration.endpoints) as worker id \(workerID)")
        while true {
            try poller.poll(timeoutMilliseconds: configuration.helloIntervalMilliseconds / 2)
            if poller.events(at: wakeIndex).contains(.readable) { controlWakeup.drain() }
            if poller.events(at: subIndex).contains(.readable) {
                while try subscriber.receive(into: message, dontWait: true) {
                    if try subscriber.discardRemainingFrames(of: message) > 0 {
                        counters.malformed.add(1, ordering: .relaxed)
                        logger.warning("dropped an event message with extra frames")
                        continue
                    }
                    let broadcast: ProducerBroadcast
                    do {
                        broadcast = try message.withUnsafeBytes { bytes throws(WireError) in
                            try WireFormat.decodeBroadcast(bytes)
                        }
                    } catch {
                        counters.malformed.add(1, ordering: .relaxed)
                        logger.warning("dropped a bad event message: \(error)")
                        continue
                    }
                    switch broadcast {
                    case .eventState(let snapshot):
                        if events.table.adopt(snapshot) && snapshot.shutdown {
                            stop(reason: "shutdown event received")
                        }
                    case .released(let ids):
                        if ids.contains(workerID) { released = true }
                    }
                }
            }
            let pending = state.withLock { state -> [EventRequest] in
                defer { state.pendingEventRequests.removeAll() }
                return state.pendingEventRequests
            }
            for request in pending {
                try control.send(WireFormat.encode(request, sender: workerID), dontWait: true)
            }

            let now = ContinuousClock.now
            if helloSent && now - lastHello >= helloInterval {
                try control.send(hello, dontWait: true)
                lastHello = now
            }
            // Take tasks only once the producer's event state has arrived, so a task that
            // checks an event set before this worker connected sees it set.
            if !taskThreadsStarted && events.table.isSynchronized && !isStopping {
                startTaskThreads()
                taskThreadsStarted = true
            }
            // Introduce ourselves once every task socket has completed its handshake, so a
            // producer waiting for N workers spreads the first tasks over all of them.
            if !helloSent && state.withLock({ $0.readyTaskThreads == configuration.threads }) {
                try control.send(hello, dontWait: true)
                helloSent = true
                lastHello = now
            }
            let live = state.withLock { $0.liveTaskThreads }
            guard isStopping && live == 0 else { continue }

            // Every task thread has ended: say goodbye until the producer confirms it has all results.
            let resultsSent = counters.resultsSent.load(ordering: .relaxed)
            if released { break }
            if let sentAt = goodbyeSentAt {
                if now - sentAt >= goodbyeTimeout {
                    logger.warning("producer did not confirm the last results within \(goodbyeTimeout); leaving anyway")
                    break
                }
                if now - lastHello < helloInterval / 2 { continue }
            } else {
                logger.info("\(configuration.name): Exiting")
                goodbyeSentAt = now
            }
            let goodbye = WorkerGoodbye(resultsSent: resultsSent)
            try control.send(WireFormat.encode(goodbye, sender: workerID), dontWait: true)
            lastHello = now
            // With no results in transit there is nothing to confirm.
            if resultsSent == 0 { break }
        }
        // Released: everything arrived, nothing is left to deliver. Otherwise the producer may be
        // gone; give the goodbye a moment to leave rather than the full linger.
        try control.setLinger(milliseconds: released ? 0 : 200)
        return WorkerReport(
            tasksDone: counters.done.load(ordering: .relaxed), tasksFailed: counters.failed.load(ordering: .relaxed),
            malformedMessages: counters.malformed.load(ordering: .relaxed), released: released)
    }

    private func startTaskThreads() {
        state.withLock { $0.liveTaskThreads = configuration.threads }
        for index in 1...configuration.threads {
            let thread = Thread { [self] in
                do {
                    try runTaskLoop(index: index)
                } catch {
                    logger.error("task thread \(index) failed: \(error)")
                    stop(reason: "task thread failed")
                }
                state.withLock { $0.liveTaskThreads -= 1 }
                controlWakeup.signal()
            }
            thread.name = "\(configuration.name)-task-\(index)"
            thread.start()
        }
    }

    /// One task thread: receive tasks, run them, send their results, until stopped.
    private func runTaskLoop(index: Int) throws {
        let tasks = try Socket(context, .pull)
        try tasks.setReceiveHighWaterMark(configuration.receiveHighWaterMark)
        try tasks.setMaxMessageSize(Int64(configuration.maxMessageSize))
        try tasks.setReconnect(intervalMilliseconds: 100, maximumMilliseconds: 2_000)
        try tasks.setHeartbeat(intervalMilliseconds: 1_000, timeoutMilliseconds: 5_000)
        let monitorEndpoint = "inproc://task-socket-\(index)"
        try tasks.startMonitor(monitorEndpoint, events: .handshakeSucceeded)
        let monitor = try SocketMonitor(context, endpoint: monitorEndpoint)
        try tasks.connect(configuration.endpoints.tasks)
        guard try awaitHandshake(monitor) else { return }
        try tasks.stopMonitor()
        state.withLock { $0.readyTaskThreads += 1 }
        controlWakeup.signal()
        let results = try Socket(context, .push)
        try results.setLinger(milliseconds: Int32(configuration.goodbyeTimeoutMilliseconds))
        try results.setReconnect(intervalMilliseconds: 100, maximumMilliseconds: 2_000)
        try results.setHeartbeat(intervalMilliseconds: 1_000, timeoutMilliseconds: 5_000)
        try results.connect(configuration.endpoints.results)

        var poller = Poller()
        let taskIndex = poller.add(tasks, .readable)
        let stopIndex = poller.add(fileDescriptor: stopSignal.fileDescriptor, .readable)
        let message = Message()
        let taskContext = { (record: TaskRecord) in
            TaskContext(
                workerName: self.configuration.name, host: self.configuration.host, events: self.events,
                logger: self.logger, attempt: record.attempt, taskID: record.id)
        }
        var batch = WireFormat.MessageWriter(kind: .results, sender: workerID, capacity: 256)
        var batchMicroseconds: UInt64 = 0

        func flush() throws {
            guard batch.count > 0 else { return }
            let sent = UInt64(batch.count)
            let bytes = batch.finish()
            batch = WireFormat.MessageWriter(kind: .results, sender: workerID, capacity: 256)
            batchMicroseconds = 0
            try results.send(bytes)
            counters.resultsSent.add(sent, ordering: .relaxed)
        }

        func add(_ result: ResultRecord) throws {
            if result.status == .ok {
                counters.done.add(1, ordering: .relaxed)
            } else {
                counters.failed.add(1, ordering: .relaxed)
            }
            if batch.byteCount + result.encodedSize > configuration.maxMessageSize || batch.isFull { try flush() }
            batch.append(result)
            batchMicroseconds += UInt64(result.runMicroseconds)
        }

        while true {
            try poller.poll(timeoutMilliseconds: -1)
            if poller.events(at: stopIndex).contains(.readable) { break }
            guard poller.events(at: taskIndex).contains(.readable) else { continue }
            // Drain what is ready; send results when fast tasks have added up, or when idle.
            while !isStopping, try tasks.receive(into: message, dontWait: true) {
                if try tasks.discardRemainingFrames(of: message) > 0 {
                    counters.malformed.add(1, ordering: .relaxed)
                    logger.warning("dropped a task message with extra frames (expected 1)")
                    continue
                }
                let decoded: [DecodedTask]
                do {
                    decoded = try message.withUnsafeBytes { bytes throws(WireError) in try WireFormat.decodeTasks(bytes)
                    }
                } catch {
                    counters.malformed.add(1, ordering: .relaxed)
                    logger.warning("dropped a bad task message: \(error)")
                    continue
                }
                for item in decoded {
                    switch item {
                    case .task(let record):
                        try add(execute(record, context: taskContext(record)))
                    case .malformed(let id, let attempt, let error):
                        counters.malformed.add(1, ordering: .relaxed)
                        logger.warning("task \(id) is malformed: \(error)")
                        try add(
                            ResultRecord(
                                id: id, attempt: attempt, status: .malformed,
                                payload: Array("malformed task record: \(error)".utf8)))
                    }
                }
                if batchMicroseconds >= configuration.resultFlushMicroseconds { try flush() }
            }
            try flush()
        }
        try flush()
    }

    /// Waits until the monitored socket's first handshake succeeds; false if stopped first.
    private func awaitHandshake(_ monitor: SocketMonitor) throws -> Bool {
        var poller = Poller()
        let monitorIndex = poller.add(monitor.socket, .readable)
        let stopIndex = poller.add(fileDescriptor: stopSignal.fileDescriptor, .readable)
        while true {
            try poller.poll(timeoutMilliseconds: -1)
            if poller.events(at: stopIndex).contains(.readable) { return false }
            if poller.events(at: monitorIndex).contains(.readable),
                let event = try monitor.next(dontWait: true), event.kind.contains(.handshakeSucceeded)
            {
                return true
            }
        }
    }

    private func execute(_ record: TaskRecord, context: TaskContext) -> ResultRecord {
        let started = ContinuousClock.now
        let outcome = registry.run(name: record.name, payload: record.payload, context: context)
        let elapsed = started.duration(to: .now)
        let micros = elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000
        var result = ResultRecord(
            id: record.id, attempt: record.attempt, status: outcome.status,
            runMicroseconds: UInt32(clamping: micros), payload: outcome.payload)
        let limit = configuration.maxMessageSize - WireFormat.headerSize - ResultRecord.fixedSize
        if result.payload.count > limit {
            result.status = .tooLarge
            result.payload = Array(
                "result of \(outcome.payload.count) bytes exceeds the message limit of \(limit)".utf8)
        }
        if result.status != .ok {
            logger.info("task \(record.id) (\(record.name)) \(result.status): \(result.message)")
        }
        return result
    }
}
