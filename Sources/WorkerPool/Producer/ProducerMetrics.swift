import Metrics

/// The producer's metrics, published through swift-metrics (names in ``PoolMetricNames``) from
/// snapshots the run loop takes every tick; the library never bootstraps a backend.
struct ProducerMetrics: MetricsPublication {
    /// Everything published, copied out of the core and the run loop in one go.
    struct Snapshot: Sendable {
        var counters: ProducerCounters
        var read: UInt64
        var duplicates: UInt64
        /// Indexed like ``ProducerMetrics/rejectionReasons``.
        var rejected: [UInt64]
        var inFlight: Int
        var waiting: Int
        var workers: Int
        var threads: Int
        var complete: Bool
        var bytes = SocketBytes()
    }

    /// Bytes of messages through the producer's sockets, counted by the run loop as it sends and
    /// receives (libzmq keeps no such count).
    struct SocketBytes: Sendable {
        var tasksReceived: UInt64 = 0
        var tasksSent: UInt64 = 0
        var resultsReceived: UInt64 = 0
        var eventsReceived: UInt64 = 0
        var eventsSent: UInt64 = 0
    }

    static let rejectionReasons = ["invalid", "stranger", "forged", "refused_loss_report"]
    static let requeueReasons: [String] = ProducerCounters.RequeueReason.allCases.map {
        switch $0 {
        case .reconnected: "reconnected"
        case .ackTimeout: "ack_timeout"
        case .lostInTransit: "lost_in_transit"
        case .workerSilent: "worker_silent"
        case .processDied: "process_died"
        case .workerLeft: "worker_left"
        }
    }
    static let lossReasons: [String] = ProducerCounters.LossReason.allCases.map {
        switch $0 {
        case .silent: "silent"
        case .died: "died"
        case .timeLimit: "time_limit"
        }
    }

    private typealias Names = PoolMetricNames
    private var read = PublishedCounter(Names.tasksRead)
    private var dispatched = PublishedCounter(Names.tasksDispatched)
    private var ended = PublishedCounterFamily(
        Names.tasksEnded, dimension: "status", values: ResultStatus.allCases.map(\.description))
    private var redelivered = PublishedCounterFamily(
        Names.tasksRedelivered, dimension: "reason", values: requeueReasons)
    private let inFlight = Gauge(label: Names.tasksInFlight)
    private let waiting = Gauge(label: Names.tasksWaiting)
    private let complete = Gauge(label: Names.runComplete)
    private var latency = PublishedHistogram(Names.taskLatency)
    private var runTime = PublishedHistogram(Names.taskRunTime)
    private let workers = Gauge(label: Names.workersConnected)
    private var workersJoined = PublishedCounter(Names.workersJoined)
    private var workersLeft = PublishedCounter(Names.workersLeft)
    private var workersLost = PublishedCounterFamily(Names.workersLost, dimension: "reason", values: lossReasons)
    private let threads = Gauge(label: Names.threadsConnected)
    private var threadsJoined = PublishedCounter(Names.threadsJoined)
    private var threadsReconnected = PublishedCounter(Names.threadsReconnected)
    private var threadsLeft = PublishedCounter(Names.threadsLeft)
    private var threadsLost = PublishedCounter(Names.threadsLost)
    private var rejected = PublishedCounterFamily(Names.messagesRejected, dimension: "reason", values: rejectionReasons)
    private var duplicates = PublishedCounter(Names.duplicateResults)
    private var received = PublishedCounterFamily(
        Names.socketReceivedBytes, dimension: "socket", values: ["tasks", "results", "events"])
    private var sent = PublishedCounterFamily(Names.socketSentBytes, dimension: "socket", values: ["tasks", "events"])

    init() {}

    mutating func publish(_ snapshot: Snapshot) {
        let counters = snapshot.counters
        read.publish(snapshot.read)
        dispatched.publish(counters.dispatched)
        ended.publish(ResultStatus.allCases.map { counters.ended[Int($0.rawValue)] })
        redelivered.publish(counters.requeued)
        inFlight.record(snapshot.inFlight)
        waiting.record(snapshot.waiting)
        complete.record(snapshot.complete ? 1 : 0)
        latency.publish(counters.latency)
        runTime.publish(counters.runTime)
        workers.record(snapshot.workers)
        workersJoined.publish(counters.workersJoined)
        workersLeft.publish(counters.workersLeft)
        workersLost.publish(counters.workersLost)
        threads.record(snapshot.threads)
        threadsJoined.publish(counters.threadsJoined)
        threadsReconnected.publish(counters.threadsReconnected)
        threadsLeft.publish(counters.threadsLeft)
        threadsLost.publish(counters.threadsLost)
        rejected.publish(snapshot.rejected)
        duplicates.publish(snapshot.duplicates)
        let bytes = snapshot.bytes
        received.publish([bytes.tasksReceived, bytes.resultsReceived, bytes.eventsReceived])
        sent.publish([bytes.tasksSent, bytes.eventsSent])
    }
}
