/// A task between reading and its end: what to send, to whom it went, and what to send again if
/// its worker is lost. Stored once, in place, in the ``LeaseTable``.
struct Lease {
    enum State: UInt8, Equatable {
        /// Waiting to be sent (new, or back in the retry queue).
        case queued
        /// Sent to a worker thread, no sign yet that it arrived.
        case dispatched
        /// The worker holds it (its heartbeat listed it): in its queue or running.
        case started
    }

    /// 0 marks a free slot.
    var id: UInt64 = 0
    var name: String = ""
    var payload: [UInt8] = []
    var timeLimitMilliseconds: UInt32 = 0
    /// When the core read the task, in ``ProducerCounters/ticks(_:)`` (for the latency metric).
    /// 32 bits fill the padding after the time limit, so the lease (moved per task) stays its size.
    var submittedTicks: UInt32 = 0
    /// The input task's SHA-256, carried to its outcome for the journal (zero without one).
    var digest: TaskDigest = .zero
    /// Incremented on every dispatch; results name the attempt they belong to.
    var attempt: UInt16 = 0
    /// Times a process died (or was killed for its time limit) while running this task.
    var deaths: UInt16 = 0
    var state: State = .queued
    /// The thread holding the current attempt (while dispatched or started).
    var holder: PeerKey?
    /// The worker the first attempt went to (0: never sent), and those of later attempts:
    /// the only senders whose result for this task counts. Later ones are rare (a redelivery),
    /// so the common case allocates nothing.
    var firstWorker: UInt32 = 0
    var laterWorkers: [UInt32] = []
    var dispatchedAt: PoolTime = .zero
    /// Heartbeats its worker had sent when the task was seen there: a task missing from the
    /// worker's next heartbeats (results and all) was lost in transit.
    var heldSinceHeartbeat: UInt64 = 0
    /// When the task was found to need sending again (the last sign of life of the worker that
    /// lost it), for the redelivery-delay figure; zero when not lost.
    var lostSince: PoolTime = .zero

    var isFree: Bool { id == 0 }
    var wasSent: Bool { firstWorker != 0 }

    /// Whether `worker` was sent some attempt of this task (and may therefore end it).
    func wasSent(to worker: UInt32) -> Bool {
        worker != 0 && (firstWorker == worker || (!laterWorkers.isEmpty && laterWorkers.contains(worker)))
    }

    var encodedSize: Int { TaskRecord.fixedSize + name.utf8.count + payload.count }
}
