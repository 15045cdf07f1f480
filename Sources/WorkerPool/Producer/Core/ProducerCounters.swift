/// What the core counts for metrics, beyond the run's own totals: plain integers changed in place
/// where the core already decides (no lock, clock or allocation), copied out by the shell every
/// tick when metrics are on. Nothing here is ever read back to decide anything.
struct ProducerCounters: Sendable, Equatable {
    /// Why a task went back to the queue to be sent again.
    enum RequeueReason: Int, CaseIterable, Sendable {
        /// Its thread reconnected (what it had not been seen holding was lost with the connection).
        case reconnected
        /// No sign that it arrived within the ack timeout.
        case ackTimeout
        /// Seen at its worker, then no longer listed, and no result came.
        case lostInTransit
        /// Its worker stopped sending heartbeats.
        case workerSilent
        /// Its worker process died (crash, kill, time limit), as its supervisor reported.
        case processDied
        /// Its worker left before starting it.
        case workerLeft
    }

    /// Why a worker process was lost.
    enum LossReason: Int, CaseIterable, Sendable {
        case silent
        case died
        case timeLimit
    }

    /// Task records sent (every attempt), less those of messages that could not be sent.
    var dispatched: UInt64 = 0
    /// Tasks ended, by ``ResultStatus`` raw value.
    var ended: [UInt64] = Array(repeating: 0, count: ResultStatus.allCases.count)
    var requeued: [UInt64] = Array(repeating: 0, count: RequeueReason.allCases.count)
    var workersJoined: UInt64 = 0
    var workersLeft: UInt64 = 0
    var workersLost: [UInt64] = Array(repeating: 0, count: LossReason.allCases.count)
    /// A thread's `ready` from a thread not taking work before (a new one, or one coming back).
    var threadsJoined: UInt64 = 0
    /// A `ready` from a thread already taking work: its connection was re-established.
    var threadsReconnected: UInt64 = 0
    /// Threads of workers that left, or were lost.
    var threadsLeft: UInt64 = 0
    var threadsLost: UInt64 = 0
    /// From the task's reading to its result arriving.
    var latency = FixedHistogram()
    /// How long the worker ran the task, as its result says.
    var runTime = FixedHistogram()

    mutating func noteRequeued(_ reason: RequeueReason, _ count: Int) {
        requeued[reason.rawValue] &+= UInt64(count)
    }
}
