/// How the producer binds, paces and guards its work.
public struct ProducerConfiguration: Sendable {
    public var endpoints: PoolEndpoints = .defaultBind
    /// Upper bound on tasks held in memory (dispatched, or waiting to be dispatched again).
    public var window: Int = 100_000
    /// How far ahead each worker thread is kept, in microseconds of its measured task time: its
    /// window is `(prefetch + round trip) / mean task time` tasks, between 1 and
    /// ``maxTasksPerThread``. Null tasks get a large window (throughput); 100 ms tasks get one
    /// (no hoarding while other threads idle).
    public var prefetchMicroseconds: Double = 5_000
    /// The most tasks one worker thread may hold.
    public var maxTasksPerThread = 1_000
    /// The most tasks in one message. A thread gets what its credit allows in one message, so
    /// fast tasks travel in batches and slow ones (a window of one) alone; this only caps it.
    public var batchSize: Int = 1_000
    public var maxMessageSize: Int = WireFormat.defaultMaxMessageSize
    /// Hold tasks back until this many workers have introduced themselves, so the first ones
    /// to connect do not take the whole start of the input.
    public var minimumWorkers = 0
    /// A task sent to a worker thread that does not acknowledge it within this time is sent again.
    public var ackTimeoutMilliseconds = 10_000
    /// A worker whose heartbeats stop for this long is presumed dead; its tasks are sent again.
    public var workerTimeoutMilliseconds = 3_000
    /// A task whose process dies (or overruns its time limit) this many times fails.
    public var maxAttempts: UInt16 = 3
    /// Time limit for tasks that do not set their own; 0 is none.
    public var defaultTimeLimitMilliseconds: UInt32 = 0
    /// Record each finished task here and skip those already recorded (a resumed run).
    public var journalPath: String?
    /// How a run matches its input against what the journal holds.
    public var journalResumeMode: JournalResumeMode = .byPosition
    /// Run on despite damaged journal lines (their tasks may run again) instead of refusing.
    public var journalIgnoresDamage = false
    /// Broadcast shutdown when every task has ended, and wait for workers to leave.
    public var shutdownWorkersAtEnd = true
    /// How long to wait for known workers' goodbyes after broadcasting shutdown.
    public var goodbyeTimeoutMilliseconds = 5_000
    /// After ``Producer/cancel()``, how long dispatched tasks may still finish before they
    /// end as `cancelled`.
    public var cancelGraceMilliseconds = 5_000
    /// How often progress is reported, leases checked, and the event state re-broadcast.
    public var tickMilliseconds = 250
    /// CURVE encryption and the allowlist of worker keys; nil for plaintext.
    public var curve: CurveServerSettings?
    /// The most worker processes known at once. A hello beyond it makes room by forgetting the
    /// worker idle longest; with every known worker at work it is refused. Bounds what a flood
    /// of made-up sender ids can cost.
    public var maxWorkers = 10_000
    /// Keep each result's payload for ``TaskOutcome``; off when nothing reads it (`--output none`).
    public var keepsResultPayloads = true
    /// Publish counters, gauges and histograms through swift-metrics (names in
    /// ``PoolMetricNames``), from a thread of their own every tick. Bootstrap a backend first;
    /// off, the run pays nothing for metrics.
    public var publishesMetrics = false

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
    /// The SHA-256 of the input task, for the journal; nil when the run has none.
    var digest: TaskDigest? = nil

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

/// One worker process's share of a run, from its results and heartbeats.
public struct WorkerSummary: Sendable, Equatable {
    public var name: String
    public var host: String
    public var pid: UInt32
    public var tasksDone: UInt64
    public var tasksFailed: UInt64
    /// Restarts of this process's slot by its supervisor (as of its last heartbeat).
    public var restarts: UInt32
    /// `running`, `left`, or `lost` (died or stopped sending heartbeats).
    public var state: String
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
    /// Each worker process seen during the run.
    public var workers: [WorkerSummary]
    /// Tasks dispatched again (worker death, lost messages, retries after a crash or time limit).
    public var redeliveries: UInt64
    /// Tasks skipped because the journal already recorded them.
    public var resumed: UInt64
    /// Results refused because their sender was never sent the task.
    public var forgedResults: UInt64 = 0
    /// Messages dropped because their sender never said hello (or under another worker's key).
    public var strangerMessages: UInt64 = 0
    /// Reports of a process's death refused because they did not come from its supervisor.
    public var refusedLossReports: UInt64 = 0
    /// The longest time from a lost worker's last sign of life to one of its tasks being sent
    /// to another worker, in seconds.
    public var worstRedeliverySeconds: Double

    public var tasksPerSecond: Double { wallSeconds > 0 ? Double(tasks) / wallSeconds : 0 }
}
