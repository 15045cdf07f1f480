/// The names of every metric the pool publishes through swift-metrics, with what each means.
/// Names follow Prometheus conventions: base units, `_total` on counters, no per-task labels.
/// The README's "Metrics" section and the Grafana dashboard in `deploy/` use these names; a test
/// checks the dashboard against a real exposition.
public enum PoolMetricNames {
    /// What a metric is, as Prometheus sees it.
    public enum Kind: String, Sendable {
        case counter, gauge, histogram
    }

    /// One metric: its name, kind, labels and meaning.
    public struct Metric: Sendable {
        public var name: String
        public var kind: Kind
        public var labels: [String]
        public var help: String
    }

    /// Bucket bounds of the duration histograms, in seconds (a backend must be given the same
    /// bounds so each bucket counts exactly what the pool counted).
    public static let durationBucketsSeconds: [Double] = [
        0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300,
    ]

    // MARK: Producer

    public static let tasksRead = "workerpool_tasks_read_total"
    public static let tasksDispatched = "workerpool_tasks_dispatched_total"
    public static let tasksEnded = "workerpool_tasks_ended_total"
    public static let tasksRedelivered = "workerpool_tasks_redelivered_total"
    public static let tasksInFlight = "workerpool_tasks_in_flight"
    public static let tasksWaiting = "workerpool_tasks_waiting"
    public static let taskLatency = "workerpool_task_latency_seconds"
    public static let taskRunTime = "workerpool_task_run_seconds"
    public static let runComplete = "workerpool_run_complete"
    public static let workersConnected = "workerpool_workers_connected"
    public static let workersJoined = "workerpool_workers_joined_total"
    public static let workersLeft = "workerpool_workers_left_total"
    public static let workersLost = "workerpool_workers_lost_total"
    public static let threadsConnected = "workerpool_threads_connected"
    public static let threadsJoined = "workerpool_threads_joined_total"
    public static let threadsReconnected = "workerpool_threads_reconnected_total"
    public static let threadsLeft = "workerpool_threads_left_total"
    public static let threadsLost = "workerpool_threads_lost_total"
    public static let messagesRejected = "workerpool_messages_rejected_total"
    public static let duplicateResults = "workerpool_results_duplicate_total"
    public static let socketReceivedBytes = "workerpool_socket_received_bytes_total"
    public static let socketSentBytes = "workerpool_socket_sent_bytes_total"

    // MARK: Worker (one `worker` command: its supervisor and every process it runs)

    public static let workerProcesses = "workerpool_worker_processes"
    public static let workerTasksRunning = "workerpool_worker_tasks_running"
    public static let workerTasks = "workerpool_worker_tasks_total"
    public static let workerRestarts = "workerpool_worker_process_restarts_total"
    public static let workerTimeLimitKills = "workerpool_worker_time_limit_kills_total"
    public static let workerExecJobs = "workerpool_worker_exec_jobs_total"
    public static let workerMessagesRejected = "workerpool_worker_messages_rejected_total"
    public static let workerSocketReceivedBytes = "workerpool_worker_socket_received_bytes_total"
    public static let workerSocketSentBytes = "workerpool_worker_socket_sent_bytes_total"

    /// Every metric the producer publishes.
    public static let producer: [Metric] = [
        Metric(
            name: tasksRead, kind: .counter, labels: [], help: "Tasks read from the input (every line, valid or not)."),
        Metric(
            name: tasksDispatched, kind: .counter, labels: [],
            help: "Task records sent to worker threads, every attempt counted."),
        Metric(
            name: tasksEnded, kind: .counter, labels: ["status"],
            help:
                "Tasks ended, by status (ok, failed, bad-arguments, unknown-task, malformed, too-large, bad-input, cancelled, time-limit, worker-died)."
        ),
        Metric(
            name: tasksRedelivered, kind: .counter, labels: ["reason"],
            help:
                "Tasks put back to be sent again, by why (reconnected, ack_timeout, lost_in_transit, worker_silent, process_died, worker_left)."
        ),
        Metric(name: tasksInFlight, kind: .gauge, labels: [], help: "Tasks sent to a worker that have not ended."),
        Metric(
            name: tasksWaiting, kind: .gauge, labels: [],
            help: "Tasks read and waiting to be sent (new, or to be sent again): what more workers would take."),
        Metric(name: taskLatency, kind: .histogram, labels: [], help: "From a task's reading to its result arriving."),
        Metric(
            name: taskRunTime, kind: .histogram, labels: [],
            help: "How long workers ran each task, as results report it."),
        Metric(
            name: runComplete, kind: .gauge, labels: [],
            help: "1 once every task read has ended and no more will be read."),
        Metric(name: workersConnected, kind: .gauge, labels: [], help: "Worker processes introduced and not gone."),
        Metric(name: workersJoined, kind: .counter, labels: [], help: "Worker processes that said hello."),
        Metric(
            name: workersLeft, kind: .counter, labels: [], help: "Worker processes that said goodbye and were released."
        ),
        Metric(
            name: workersLost, kind: .counter, labels: ["reason"],
            help:
                "Worker processes lost, by why (silent: no heartbeat; died; time_limit: killed for a task's time limit)."
        ),
        Metric(name: threadsConnected, kind: .gauge, labels: [], help: "Worker threads taking tasks."),
        Metric(name: threadsJoined, kind: .counter, labels: [], help: "Worker threads that started taking tasks."),
        Metric(
            name: threadsReconnected, kind: .counter, labels: [],
            help: "Worker threads that announced themselves again after their connection was re-established."),
        Metric(name: threadsLeft, kind: .counter, labels: [], help: "Threads of worker processes that left."),
        Metric(name: threadsLost, kind: .counter, labels: [], help: "Threads of worker processes that were lost."),
        Metric(
            name: messagesRejected, kind: .counter, labels: ["reason"],
            help:
                "Messages rejected, by why (invalid: malformed, wrong version, refused request; stranger: from a sender that never said hello; forged: a result from a worker never sent the task; refused_loss_report)."
        ),
        Metric(
            name: duplicateResults, kind: .counter, labels: [],
            help: "Results for tasks that had already ended (or of another run), dropped."),
        Metric(
            name: socketReceivedBytes, kind: .counter, labels: ["socket"],
            help: "Bytes of messages received, per socket (tasks, results, events)."),
        Metric(
            name: socketSentBytes, kind: .counter, labels: ["socket"],
            help: "Bytes of messages sent, per socket (tasks, events)."),
    ]

    /// Every metric a `worker` command (its supervisor) publishes for the processes it runs.
    public static let worker: [Metric] = [
        Metric(name: workerProcesses, kind: .gauge, labels: [], help: "Worker processes running."),
        Metric(
            name: workerTasksRunning, kind: .gauge, labels: [], help: "Tasks running now, across processes and threads."
        ),
        Metric(
            name: workerTasks, kind: .counter, labels: ["result"],
            help: "Tasks run to an end, by result (ok, failed); a task may run more than once."),
        Metric(
            name: workerRestarts, kind: .counter, labels: ["reason"],
            help: "Worker processes restarted, by why (died, time_limit, recycled: --max-tasks-per-child)."),
        Metric(
            name: workerTimeLimitKills, kind: .counter, labels: [],
            help: "Worker processes killed because a task overran its time limit."),
        Metric(name: workerExecJobs, kind: .counter, labels: [], help: "External programs started by exec tasks."),
        Metric(
            name: workerMessagesRejected, kind: .counter, labels: [],
            help: "Messages from the producer dropped as malformed."),
        Metric(
            name: workerSocketReceivedBytes, kind: .counter, labels: ["socket"],
            help: "Bytes of messages received, per socket (tasks)."),
        Metric(
            name: workerSocketSentBytes, kind: .counter, labels: ["socket"],
            help: "Bytes of messages sent, per socket (results)."),
    ]
}
