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
    /// How many times a task that failed (its handler's error, a failed program, a time limit)
    /// is run again, for tasks whose line does not say (`"retries"`). Lost work sent again
    /// (a worker or connection lost, a process that died) is not charged to it.
    public var retries: UInt16 = 0
    /// The wait before the first retry; each later one doubles it, up to
    /// ``retryBackoffCapMilliseconds``, plus up to half again as jitter. 0 retries at once.
    public var retryBackoffMilliseconds: UInt32 = 1_000
    /// The longest wait before a retry, before jitter (or the base, if that is longer).
    public var retryBackoffCapMilliseconds: UInt32 = 60_000
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
    /// Outcomes point into one copy of the results message they came in, instead of each
    /// holding its payload: one allocation a message rather than one a task, allocated on the
    /// dispatch thread and freed on the output's. But an outcome kept keeps its whole message.
    /// The producer command sets it: it keeps no outcome past its printing.
    public var sharesResultMessages = false
    /// Append what happens to the pool (workers joining, leaving and lost, tasks sent again,
    /// events, rejected messages, the run's start and end) to this file as JSON lines.
    public var poolLogPath: String?
    /// Give every progress report each worker's row (``RunProgress/workerRows``), for a live
    /// view; a pass over the known workers per tick.
    public var progressIncludesWorkers = false
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
    /// The bytes ``payload`` is cut from: its own, or a copy of the whole results message it
    /// came in, which that message's outcomes share (one copy a message, not an array a task,
    /// allocated on the dispatch thread and freed on the journal's).
    var payloadStorage: [UInt8]
    public var runMicroseconds: UInt32
    /// `nil` for input that never reached a worker, or a worker not yet introduced.
    public var worker: WorkerInfo?
    /// The SHA-256 of the input task, for the journal; nil when the run has none.
    var digest: TaskDigest? = nil
    /// Attempts that came to an end: failed ones charged to its retries, and the last (a
    /// task that ended at its first try: 1; one that never reached a worker, or was cancelled
    /// before its first attempt ended: 0). Lost work sent again is not an attempt.
    public var attempts: UInt16 = 0
    /// Times the task was sent to a worker: every attempt, and every redelivery of lost work.
    public var deliveries: UInt16 = 0
    /// Where ``payloadStorage`` holds the payload when it is shared; length `UInt32.max`: all of it.
    var payloadOffset: UInt32 = 0
    var payloadLength = UInt32.max

    /// JSON output when `status == .ok`, a UTF-8 message otherwise. (A copy when the outcome
    /// shares its message's bytes: ``withPayload(_:)`` reads them in place.)
    public var payload: [UInt8] {
        get { payloadLength == .max ? payloadStorage : withPayload { Array($0) } }
        set {
            payloadStorage = newValue
            payloadOffset = 0
            payloadLength = .max
        }
    }

    /// The payload's bytes, where they lie.
    @inline(__always)
    public func withPayload<Result>(_ body: (UnsafeBufferPointer<UInt8>) throws -> Result) rethrows -> Result {
        try payloadStorage.withUnsafeBufferPointer { bytes in
            guard payloadLength != .max, let base = bytes.baseAddress else { return try body(bytes) }
            return try body(UnsafeBufferPointer(start: base + Int(payloadOffset), count: Int(payloadLength)))
        }
    }

    public var payloadCount: Int { payloadLength == .max ? payloadStorage.count : Int(payloadLength) }

    public var message: String { withPayload { String(decoding: $0, as: UTF8.self) } }
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
    /// Each worker process known, as in ``RunSummary/workers``; empty unless
    /// ``ProducerConfiguration/progressIncludesWorkers``.
    public var workerRows: [WorkerSummary] = []
    /// When this was taken, on the clock of ``WorkerSummary/lastSeen``.
    public var time: PoolTime = .zero
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
    /// Task threads in the process.
    public var threads: UInt16 = 0
    /// Tasks running on its threads, as of its last heartbeat.
    public var running: Int = 0
    /// When the producer last heard from it (``PoolTime/now``'s clock).
    public var lastSeen: PoolTime = .zero
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
    /// Failed attempts run again (`--retries`, `"retries"`), not counted in ``redeliveries``.
    public var retries: UInt64 = 0
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
