/// What the core counts for metrics, beyond the run's own totals: plain integers changed in place
/// where the core already decides (no lock, clock or allocation), copied out by the shell every
/// tick when metrics are on. Nothing here is ever read back to decide anything.
struct ProducerCounters: Sendable {
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
    var ended = InlineArray<10, UInt64>(repeating: 0)
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

    /// A time as a lease stores it: units of 65.536 µs, wrapping every 78 hours (a task that
    /// waits longer for its result is measured short by multiples of that).
    @inline(__always)
    static func ticks(_ time: PoolTime) -> UInt32 { UInt32(truncatingIfNeeded: time.nanoseconds >> 16) }

    /// Nanoseconds from `ticks` to `now`, to 65.536 µs.
    @inline(__always)
    static func nanoseconds(since ticks: UInt32, now: PoolTime) -> UInt64 { UInt64(Self.ticks(now) &- ticks) << 16 }

    mutating func noteRequeued(_ reason: RequeueReason, _ count: Int) {
        requeued[reason.rawValue] &+= UInt64(count)
    }
}
