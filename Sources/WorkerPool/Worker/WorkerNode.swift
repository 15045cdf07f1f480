import DequeModule
import Foundation
import Logging
import Synchronization
import ZeroMQ

/// One worker process: connects to a producer, runs tasks on its threads, sends results,
/// follows the producer's events, and leaves cleanly on shutdown or ``stop(reason:)``.
///
/// Threads: the thread calling ``run()`` owns the events SUB socket and a control PUSH socket
/// (hello, heartbeat, goodbye, event requests); each task thread owns its own DEALER (tasks in,
/// `ready` out) and PUSH (acks and results), so a task's trip through the worker never crosses a
/// thread.
public final class WorkerNode: Sendable {
    public let configuration: WorkerConfiguration
    public let events: PoolEvents
    /// What each task thread runs now; shared with the supervisor when it passed one in.
    public let board: RunningTaskBoard
    let registry: TaskRegistry
    let logger: Logger
    let workerID: UInt32
    let context: Context
    private let state = Mutex(SharedState())
    /// Readable forever once signalled: every task thread polls it and leaves.
    let stopSignal = Wakeup()
    let stopping = Atomic<Bool>(false)
    /// The producer's message limit, once its state arrived (0 until then).
    private let producerLimit = Atomic<Int>(0)

    /// The largest message to send: this worker's limit, or the producer's if smaller.
    var sendLimit: Int {
        let producer = producerLimit.load(ordering: .relaxed)
        return producer > 0 ? min(producer, configuration.maxMessageSize) : configuration.maxMessageSize
    }
    /// Wakes the control thread: a task thread became ready or ended, or an event request waits.
    let controlWakeup = Wakeup()
    let counters = Counters()
    /// Each task thread's received-but-not-started tasks, for heartbeats.
    let queues: [LocalQueue]

    private struct SharedState: Sendable {
        var recycled = false
        var pendingEventRequests: [EventRequest] = []
        var liveTaskThreads = 0
        var readyTaskThreads = 0
    }

    /// Lock-free counters shared by the task threads.
    final class Counters: Sendable {
        let done = Atomic<UInt64>(0)
        let failed = Atomic<UInt64>(0)
        /// Results sent per producer run: a goodbye counts only what the current producer should have.
        let resultsSentByEpoch = Mutex<[UInt32: UInt64]>([:])
        let malformed = Atomic<UInt64>(0)
    }

    /// What a task thread holds besides its running task, as it last published it: tasks received
    /// and not yet started, and tasks run whose results wait in its next batch (still held, as far
    /// as the producer's heartbeat check is concerned). The thread publishes per batch, not per task.
    final class LocalQueue: Sendable {
        let held = Mutex<[UInt64]>([])
    }

    struct QueuedTask: Sendable {
        var record: TaskRecord
        var epoch: UInt32
        /// When it arrived (monotonic nanoseconds): results say how long a task queued.
        var receivedAt: UInt64
    }

    /// This process introducing itself; every task thread's `ready` carries it too.
    var hello: WorkerHello {
        WorkerHello(
            pid: UInt32(truncatingIfNeeded: getpid()), threads: UInt16(clamping: configuration.threads),
            supervisor: configuration.supervisorID, name: configuration.name, host: configuration.host)
    }

    /// - Parameter board: the supervisor's shared board; a private one when nil.
    public init(
        configuration: WorkerConfiguration, registry: TaskRegistry, logger: Logger, board: RunningTaskBoard? = nil
    ) throws {
        self.configuration = configuration
        self.registry = registry
        self.logger = logger
        self.workerID = configuration.workerID ?? UInt32.random(in: 1...UInt32.max)
        self.context = try Context()
        self.board = board ?? RunningTaskBoard(threads: configuration.threads)
        self.queues = (0..<configuration.threads).map { _ in LocalQueue() }
        let forwardState = ForwardBox()
        self.events = PoolEvents(forward: { request in forwardState.forward?(request) })
        forwardState.forward = { [weak self] request in self?.enqueue(request) }
    }

    /// Holds the event-forwarding closure, set once in `init` before any task runs.
    /// `@unchecked Sendable`: written once during `init`, only read afterwards.
    private final class ForwardBox: @unchecked Sendable {
        var forward: (@Sendable (EventRequest) -> Void)?
    }

    private func enqueue(_ request: EventRequest) {
        state.withLock { $0.pendingEventRequests.append(request) }
        controlWakeup.signal()
    }

    /// Makes SIGTERM and SIGINT stop this worker (finish the task in hand, leave), including a
    /// signal that arrived since an earlier ``StopSignals/install(wakeup:)``.
    public func stopOnSignals() {
        StopSignals.install(wakeup: controlWakeup)
        followsStopSignals.store(true, ordering: .relaxed)
        controlWakeup.signal()
    }

    private let followsStopSignals = Atomic<Bool>(false)

    /// Asks the worker to finish the tasks in hand and leave. Safe from any thread.
    public func stop(reason: String) {
        guard stopping.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
        else { return }
        logger.debug("stopping: \(reason)")
        events.table.interruptWaits()
        stopSignal.signal()
        controlWakeup.signal()
    }

    var isStopping: Bool { stopping.load(ordering: .relaxed) }

    /// Called by a task thread that reached ``WorkerConfiguration/maxTasks``.
    func recycle() {
        state.withLock { $0.recycled = true }
        stop(reason: "reached --max-tasks-per-child")
    }

    func taskThreadReady() {
        state.withLock { $0.readyTaskThreads += 1 }
        controlWakeup.signal()
    }

    /// Runs until shutdown or ``stop(reason:)``, on the calling thread. Returns what the worker
    /// did, once every message it sent was delivered or its linger expired.
    public func run() throws -> WorkerReport {
        let report = try runControlLoop()
        // Every socket is closed now; this waits for their queued messages (bounded by linger).
        context.terminate()
        return report
    }

    private func runControlLoop() throws -> WorkerReport {
        let subscriber = try Socket(context, .sub)
        try configuration.curve.apply(to: subscriber)
        // Every socket reaches the same producer with the same keys: the events socket, the
        // first to connect, tells whether the handshake works.
        let monitorEndpoint = "inproc://events-socket-monitor"
        try subscriber.startMonitor(
            monitorEndpoint, events: [.handshakeFailed, .handshakeSucceeded, .connected, .disconnected])
        let monitor = try SocketMonitor(context, endpoint: monitorEndpoint)
        var handshakes = HandshakeWatch(
            usesCurve: configuration.curve != nil, giveUp: .milliseconds(configuration.handshakeGiveUpMilliseconds))
        try subscriber.setMaxMessageSize(Int64(configuration.maxMessageSize))
        try subscriber.setReconnect(intervalMilliseconds: 100, maximumMilliseconds: 2_000)
        try subscriber.setHeartbeat(intervalMilliseconds: 1_000, timeoutMilliseconds: 5_000)
        try subscriber.subscribe()
        try subscriber.connect(configuration.endpoints.events)

        let control = try Socket(context, .push)
        try configuration.curve.apply(to: control)
        try control.setLinger(milliseconds: Int32(configuration.goodbyeTimeoutMilliseconds))
        try control.setReconnect(intervalMilliseconds: 100, maximumMilliseconds: 2_000)
        try control.setHeartbeat(intervalMilliseconds: 1_000, timeoutMilliseconds: 5_000)
        try control.connect(configuration.endpoints.results)

        let hello = WireFormat.encode(self.hello, sender: workerID)

        var poller = Poller()
        let subIndex = poller.add(subscriber, .readable)
        let wakeIndex = poller.add(fileDescriptor: controlWakeup.fileDescriptor, .readable)
        let monitorIndex = poller.add(monitor.socket, .readable)
        let message = Message()
        var lastHeartbeat = ContinuousClock.now
        var health = configuration.healthFile.map { HealthFile(path: $0) }
        var securityFailure: SecurityFailure?
        var taskThreadsStarted = false
        var helloSent = false
        var released = false
        var epoch: UInt32 = 0
        var goodbyeSentAt: ContinuousClock.Instant?
        var rejected = RateLimitedLog()
        let heartbeatInterval = Duration.milliseconds(configuration.heartbeatIntervalMilliseconds)
        let goodbyeTimeout = Duration.milliseconds(configuration.goodbyeTimeoutMilliseconds)

        logger.debug("connecting to \(configuration.endpoints) as worker id \(workerID)")
        while true {
            try poller.poll(timeoutMilliseconds: configuration.heartbeatIntervalMilliseconds / 4)
            if poller.events(at: wakeIndex).contains(.readable) { controlWakeup.drain() }
            if followsStopSignals.load(ordering: .relaxed) && StopSignals.requested && !isStopping {
                stop(reason: "SIGTERM or SIGINT")
            }
            if poller.events(at: monitorIndex).contains(.readable) {
                while let event = try monitor.next(dontWait: true) {
                    guard securityFailure == nil, let failure = handshakes.observe(event, logger: logger) else {
                        continue
                    }
                    logger.critical("\(failure)")
                    securityFailure = failure
                    stop(reason: "security failure")
                }
            }
            if securityFailure != nil && state.withLock({ $0.liveTaskThreads == 0 }) { break }
            if poller.events(at: subIndex).contains(.readable) {
                while try subscriber.receive(into: message, dontWait: true) {
                    guard let broadcast = decodeBroadcast(message, from: subscriber, rejected: &rejected) else {
                        continue
                    }
                    switch broadcast {
                    case .eventState(let snapshot):
                        health?.heard()
                        if events.table.adopt(snapshot) {
                            producerLimit.store(Int(snapshot.maxMessageSize), ordering: .relaxed)
                            if snapshot.epoch != epoch {
                                if epoch != 0 { logger.info("a new producer run (\(snapshot.epoch)) took over") }
                                epoch = snapshot.epoch
                                // Introduce ourselves to a producer that has never heard of us.
                                if helloSent { try control.send(hello, dontWait: true) }
                            }
                            if snapshot.shutdown { stop(reason: "shutdown event received") }
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
            health?.update(now: now, logger: logger)
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
                lastHeartbeat = now
            }
            if helloSent && now - lastHeartbeat >= heartbeatInterval {
                try control.send(hello, dontWait: true)
                try control.send(WireFormat.encode(heartbeat(), sender: workerID, epoch: epoch), dontWait: true)
                lastHeartbeat = now
            }
            let live = state.withLock { $0.liveTaskThreads }
            guard isStopping && live == 0 else { continue }

            // Every task thread has ended: say goodbye until the producer confirms it has all results.
            if released { break }
            let resultsSent = counters.resultsSentByEpoch.withLock { $0[epoch] ?? 0 }
            if let sentAt = goodbyeSentAt {
                if now - sentAt >= goodbyeTimeout {
                    logger.warning("producer did not confirm the last results within \(goodbyeTimeout); leaving anyway")
                    break
                }
                if now - lastHeartbeat < heartbeatInterval / 2 { continue }
            } else {
                logger.info("\(configuration.name): Exiting")
                goodbyeSentAt = now
            }
            let goodbye = WorkerGoodbye(resultsSent: resultsSent)
            try control.send(WireFormat.encode(goodbye, sender: workerID, epoch: epoch), dontWait: true)
            lastHeartbeat = now
            // With no results in transit there is nothing to confirm.
            if resultsSent == 0 && !helloSent { break }
        }
        // Released: everything arrived, nothing is left to deliver. Otherwise the producer may be
        // gone; give the goodbye a moment to leave rather than the full linger.
        try control.setLinger(milliseconds: released ? 0 : 200)
        return WorkerReport(
            tasksDone: counters.done.load(ordering: .relaxed), tasksFailed: counters.failed.load(ordering: .relaxed),
            malformedMessages: counters.malformed.load(ordering: .relaxed), released: released,
            recycled: state.withLock { $0.recycled }, securityFailure: securityFailure)
    }

    /// Tells a permanent security problem from the ordinary comings and goings of a producer.
    private struct HandshakeWatch {
        let usesCurve: Bool
        /// How long connections may keep closing during the handshake before we give up.
        let giveUp: Duration
        /// Connections closed before their handshake completed, in a row, and since when.
        var closedDuringHandshake = 0
        var firstClosed: ContinuousClock.Instant?
        var handshaking = false

        mutating func observe(_ event: SocketEvent, logger: Logger) -> SecurityFailure? {
            logger.trace("events socket: event \(event.kind.rawValue) value \(event.value) \(event.endpoint)")
            switch event.kind {
            case .connected:
                handshaking = true
            case .handshakeSucceeded:
                handshaking = false
                closedDuringHandshake = 0
                firstClosed = nil
            case .handshakeFailedAuthentication:
                return .refused(status: event.value)
            case _ where event.isMechanismMismatch:
                return .mechanismMismatch(workerUsesCurve: usesCurve)
            case .handshakeFailedNoDetail,
                .disconnected where handshaking:
                handshaking = false
                closedDuringHandshake += 1
                let now = ContinuousClock.now
                if firstClosed == nil { firstClosed = now }
                if closedDuringHandshake == 1 {
                    logger.warning("the producer closed the connection during the handshake; retrying")
                }
                // A CURVE server that cannot decrypt our hello (we hold the wrong server key)
                // just hangs up. So does a proxy in front of a producer that is down: only a
                // long unbroken run of hang-ups, with not one handshake completed, means the key.
                guard usesCurve, closedDuringHandshake >= 5, let since = firstClosed else { break }
                if closedDuringHandshake == 5 {
                    logger.error(
                        "the producer keeps closing the connection during the CURVE handshake: is --curve-server-key its public key?"
                    )
                }
                if now - since >= giveUp { return .handshakeRejected(seconds: Int((now - since).components.seconds)) }
            default:
                break
            }
            return nil
        }
    }

    private func decodeBroadcast(
        _ message: Message, from socket: Socket, rejected: inout RateLimitedLog
    ) -> ProducerBroadcast? {
        do {
            if try socket.discardRemainingFrames(of: message) > 0 {
                counters.malformed.add(1, ordering: .relaxed)
                rejected.warning(logger, "dropped an event message with extra frames")
                return nil
            }
            return try message.withUnsafeBytes { bytes throws(WireError) in try WireFormat.decodeBroadcast(bytes) }
        } catch {
            // Logged, never fatal: garbage on this socket must not take the worker down, and a
            // producer of another release shows up here as "unsupported protocol version".
            counters.malformed.add(1, ordering: .relaxed)
            rejected.warning(logger, "dropped a bad event message: \(error)")
            return nil
        }
    }

    /// What this process holds now: each thread's running task and queued tasks.
    private func heartbeat() -> WorkerHeartbeat {
        let running = board.allRunning.map(\.task.id)
        var held = running.map { HeldTask(id: $0, running: true) }
        for queue in queues {
            queue.held.withLock { ids in
                held.append(
                    contentsOf: ids.lazy.filter { !running.contains($0) }.map { HeldTask(id: $0, running: false) })
            }
        }
        return WorkerHeartbeat(
            tasksDone: counters.done.load(ordering: .relaxed), tasksFailed: counters.failed.load(ordering: .relaxed),
            restarts: configuration.restarts, held: held)
    }

    private func startTaskThreads() {
        state.withLock { $0.liveTaskThreads = configuration.threads }
        for index in 0..<configuration.threads {
            let thread = Thread { [self] in
                do {
                    try TaskThread(node: self, index: index).run()
                } catch {
                    logger.error("task thread \(index + 1) failed: \(error)")
                    stop(reason: "task thread failed")
                }
                state.withLock { $0.liveTaskThreads -= 1 }
                controlWakeup.signal()
            }
            thread.name = "\(configuration.name)-task-\(index + 1)"
            thread.start()
        }
    }
}
