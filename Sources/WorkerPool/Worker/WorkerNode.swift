import Foundation
import Logging
import Synchronization
import ZeroMQ

/// One worker process: connects to a producer, runs tasks on its threads, sends results,
/// follows the producer's events, and leaves cleanly on shutdown or ``stop(reason:)``.
///
/// Threads: the thread calling ``run()`` owns the events SUB socket and a control PUSH socket
/// (hello, heartbeat, goodbye, event requests). The task link, a DEALER (tasks in, `ready` out)
/// and a PUSH (results), is owned by the one task thread of a single-threaded process (a task's
/// trip never crosses a thread), or by a ``TaskLink`` thread feeding ``TaskRunner``s through a
/// ``SharedTaskQueue`` (one message carries tasks or results of several threads).
public final class WorkerNode: Sendable {
    public let configuration: WorkerConfiguration
    public let events: PoolEvents
    /// What each task thread runs now; shared with the supervisor when it passed one in.
    public let board: RunningTaskBoard
    let registry: TaskRegistry
    let logger: Logger
    let workerID: UInt32
    let context: Context
    let state = Mutex(SharedState())
    /// Readable forever once signalled: every task thread polls it and leaves.
    let stopSignal = Wakeup()
    let stopping = Atomic<Bool>(false)
    /// The producer's message limit, once its state arrived (0 until then).
    let producerLimit = Atomic<Int>(0)

    /// The largest message to send: this worker's limit, or the producer's if smaller.
    var sendLimit: Int {
        let producer = producerLimit.load(ordering: .relaxed)
        return producer > 0 ? min(producer, configuration.maxMessageSize) : configuration.maxMessageSize
    }
    /// Wakes the control thread: a task thread became ready or ended, or an event request waits.
    let controlWakeup = Wakeup()
    let counters = Counters()
    /// What the single task thread holds, for heartbeats (nil with several threads).
    let localQueue: LocalQueue?
    /// The tasks and results shared by a multi-threaded process's link and threads.
    let sharedQueue: SharedTaskQueue?
    /// The task link's byte counts, and the board the supervisor reads them from (nil: none).
    let linkStats = TaskThreadStats()
    let statsBoard: WorkerStatsBoard?

    struct SharedState: Sendable {
        var recycled = false
        var pendingEventRequests: [EventRequest] = []
        var liveTaskThreads = 0
        /// The task link completed its first handshake.
        var taskLinkReady = false
    }

    /// Lock-free counters shared by the task threads.
    final class Counters: Sendable {
        let done = Atomic<UInt64>(0)
        let failed = Atomic<UInt64>(0)
        /// Results sent per producer run: a goodbye counts only what the current producer should have.
        let resultsSentByEpoch = Mutex<[UInt32: UInt64]>([:])
        let malformed = Atomic<UInt64>(0)
        /// External programs started: the exec task adds one per program it starts.
        let execJobs = Atomic<UInt64>(0)
    }

    /// What the task thread holds besides its running task, as it last published it: tasks received
    /// and not yet started, and tasks run whose results wait in its next batch (still held, as far
    /// as the producer's heartbeat check is concerned). The thread publishes per batch, not per task.
    final class LocalQueue: Sendable {
        let held = Mutex<[UInt64]>([])
    }

    /// This process introducing itself; the task link's `ready` carries it too.
    var hello: WorkerHello {
        WorkerHello(
            pid: UInt32(truncatingIfNeeded: getpid()), threads: UInt16(clamping: configuration.threads),
            supervisor: configuration.supervisorID, name: configuration.name, host: configuration.host)
    }

    /// - Parameters:
    ///   - board: the supervisor's shared board; a private one when nil.
    ///   - stats: where the supervisor reads this process's totals for its metrics; nil: nowhere.
    public init(
        configuration: WorkerConfiguration, registry: TaskRegistry, logger: Logger, board: RunningTaskBoard? = nil,
        stats: WorkerStatsBoard? = nil
    ) throws {
        self.configuration = configuration
        self.registry = registry
        self.logger = logger
        self.workerID = configuration.workerID ?? UInt32.random(in: 1...UInt32.max)
        self.context = try Context()
        self.board = board ?? RunningTaskBoard(threads: configuration.threads)
        if configuration.threads > 1 {
            self.localQueue = nil
            self.sharedQueue = SharedTaskQueue(sender: workerID, threads: configuration.threads)
        } else {
            self.localQueue = LocalQueue()
            self.sharedQueue = nil
        }
        self.statsBoard = stats
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

    let followsStopSignals = Atomic<Bool>(false)

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

    func taskLinkReady() {
        state.withLock { $0.taskLinkReady = true }
        controlWakeup.signal()
    }

    /// Runs until shutdown or ``stop(reason:)``, on the calling thread. Returns what the worker
    /// did, once every message it sent was delivered or its linger expired.
    public func run() throws -> WorkerReport {
        // In a scope of its own: its sockets must be closed before the context terminates.
        let report = try {
            var control = try WorkerControlLoop(node: self)
            return try control.run()
        }()
        // Every socket is closed now; this waits for their queued messages (bounded by linger).
        context.terminate()
        return report
    }

    /// Tells a permanent security problem from the ordinary comings and goings of a producer.
    struct HandshakeWatch {
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

    func decodeBroadcast(
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
    func heartbeat() -> WorkerHeartbeat {
        let running = board.allRunning.map(\.task.id)
        var held = running.map { HeldTask(id: $0, running: true) }
        var waiting = sharedQueue?.held() ?? []
        if let localQueue { waiting += localQueue.held.withLock { $0 } }
        held += waiting.lazy.filter { !running.contains($0) }.map { HeldTask(id: $0, running: false) }
        return WorkerHeartbeat(
            tasksDone: counters.done.load(ordering: .relaxed), tasksFailed: counters.failed.load(ordering: .relaxed),
            restarts: configuration.restarts, held: held)
    }

    func startTaskThreads() {
        if let localQueue {
            startThread(named: "task") { try TaskThread(node: self, queue: localQueue).run() }
            return
        }
        guard let shared = sharedQueue else { return }
        startThread(named: "link") {
            var link = try TaskLink(node: self, queue: shared)
            try link.run()
        }
        for index in 0..<configuration.threads {
            startThread(named: "task-\(index + 1)") { TaskRunner(node: self, index: index, queue: shared).run() }
        }
    }

    /// Starts a thread the control loop waits for before it says goodbye.
    private func startThread(named name: String, _ body: @escaping @Sendable () throws -> Void) {
        state.withLock { $0.liveTaskThreads += 1 }
        let thread = Thread { [self] in
            do {
                try body()
            } catch {
                logger.error("\(name) thread failed: \(error)")
                stop(reason: "\(name) thread failed")
            }
            state.withLock { $0.liveTaskThreads -= 1 }
            controlWakeup.signal()
        }
        thread.name = "\(configuration.name)-\(name)"
        thread.start()
    }
}
