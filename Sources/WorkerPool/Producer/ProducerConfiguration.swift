/// How the producer binds and paces its work.
public struct ProducerConfiguration: Sendable {
    public var endpoints: PoolEndpoints = .defaultBind
    /// Tasks dispatched but not yet ended, across all workers. It decides throughput: about
    /// 1,000 keeps two local workers busy; more covers network latency.
    public var window: Int = 4_000
    /// Tasks per message; more than 1 amortises per-message cost for tiny tasks.
    public var batchSize: Int = 1
    /// Messages queued per worker connection by libzmq.
    public var sendHighWaterMark: Int32 = 1_000
    public var maxMessageSize: Int = WireFormat.defaultMaxMessageSize
    /// Hold tasks back until this many workers have introduced themselves, so early joiners do
    /// not take the whole start of the input (PUSH only spreads work over connected workers).
    public var minimumWorkers = 0
    /// Broadcast shutdown when every task has ended, and wait for workers to leave.
    public var shutdownWorkersAtEnd = true
    /// How long to wait for known workers' goodbyes after broadcasting shutdown.
    public var goodbyeTimeoutMilliseconds = 5_000
    /// After ``Producer/cancel()``, how long dispatched tasks may still finish before they
    /// end as `cancelled`.
    public var cancelGraceMilliseconds = 5_000
    /// How often progress is reported and the event state re-broadcast.
    public var tickMilliseconds = 250

    public init() {}
}

/// A worker as the producer knows it, from its hello.
public struct WorkerInfo: Sendable, Equatable {
    public var id: UInt32
    public var name: String
    public var host: String
    public var pid: UInt32
    public var threads: UInt16
}

/// One task's end, as the producer reports it.
public struct TaskOutcome: Sendable {
    public var id: UInt64
    public var name: String
    public var status: ResultStatus
    /// JSON output when `status == .ok`, a UTF-8 message otherwise.
    public var payload: [UInt8]
    public var runMicroseconds: UInt32
    /// `nil` for input that never reached a worker, or a worker not yet introduced.
    public var worker: WorkerInfo?

    public var message: String { String(decoding: payload, as: UTF8.self) }
}

/// Where a run stands; reported every tick.
public struct RunProgress: Sendable {
    public var submitted: UInt64
    public var succeeded: UInt64
    public var failed: UInt64
    public var inFlight: Int
    public var workers: Int
    public var inputFinished: Bool
    public var elapsedSeconds: Double
    public var ended: UInt64 { succeeded + failed }
}

/// What a run did.
public struct RunSummary: Sendable {
    public var tasks: UInt64
    public var succeeded: UInt64
    public var failed: UInt64
    public var wallSeconds: Double
    /// Messages from workers that were rejected (malformed, wrong version, ...).
    public var rejectedMessages: UInt64
    /// Results for tasks already ended (or never sent), dropped.
    public var duplicateResults: UInt64
    /// Results per worker, by `name@host`.
    public var perWorker: [String: UInt64]
    /// Workers that did not confirm leaving before the timeout.
    public var workersNotReleased: [String]

    public var tasksPerSecond: Double { wallSeconds > 0 ? Double(tasks) / wallSeconds : 0 }
}
