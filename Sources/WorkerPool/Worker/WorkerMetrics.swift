import Metrics

/// A `worker` command's metrics, published by its supervisor for every process it runs (names
/// in ``PoolMetricNames``); the library never bootstraps a backend.
struct WorkerMetrics: MetricsPublication {
    struct Snapshot: Sendable {
        var processes: Int
        var tasksRunning: Int
        /// Every process's totals: those running now and those that ended.
        var totals: WorkerStatsBoard.Totals
        /// Indexed like ``WorkerMetrics/restartReasons``.
        var restarts: [UInt64]
        var timeLimitKills: UInt64
    }

    enum RestartReason: Int, CaseIterable {
        case died, timeLimit, recycled
    }

    static let restartReasons = ["died", "time_limit", "recycled"]

    private typealias Names = PoolMetricNames
    private let processes = Gauge(label: Names.workerProcesses)
    private let tasksRunning = Gauge(label: Names.workerTasksRunning)
    private var tasks = PublishedCounterFamily(Names.workerTasks, dimension: "result", values: ["ok", "failed"])
    private var restarts = PublishedCounterFamily(Names.workerRestarts, dimension: "reason", values: restartReasons)
    private var timeLimitKills = PublishedCounter(Names.workerTimeLimitKills)
    private var execJobs = PublishedCounter(Names.workerExecJobs)
    private var malformed = PublishedCounter(Names.workerMessagesRejected)
    private var received = PublishedCounter(Names.workerSocketReceivedBytes, [("socket", "tasks")])
    private var sent = PublishedCounter(Names.workerSocketSentBytes, [("socket", "results")])

    init() {}

    mutating func publish(_ snapshot: Snapshot) {
        let totals = snapshot.totals
        processes.record(snapshot.processes)
        tasksRunning.record(snapshot.tasksRunning)
        tasks.publish([totals.tasksOK, totals.tasksFailed])
        restarts.publish(snapshot.restarts)
        timeLimitKills.publish(snapshot.timeLimitKills)
        execJobs.publish(totals.execJobs)
        malformed.publish(totals.malformedMessages)
        received.publish(totals.tasksBytesReceived)
        sent.publish(totals.resultsBytesSent)
    }
}
