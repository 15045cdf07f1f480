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
        /// Its last attempt failed; it waits out its backoff before it is queued again (the
        /// ``LeaseTable``'s retry timers).
        case awaitingRetry
    }

    /// 0 marks a free slot.
    var id: UInt64 = 0
    var name: String = ""
    var payload: [UInt8] = []
    var timeLimitMilliseconds: UInt32 = 0
    // Fields are ordered to fill alignment gaps: the lease stays 128 bytes, which Swift still
    // copies and swaps inline (one byte more and `remove` calls memcpy twice per task).
    /// The worker whose attempt failed last (0: none): a retry goes elsewhere when it can.
    var failedOn: UInt32 = 0
    /// When the core read the task, in ``ProducerCounters/ticks(_:)`` (for the latency metric).
    /// 32 bits fill the padding after the time limit, so the lease (moved per task) stays its size.
    var submittedTicks: UInt32 = 0
    /// The worker the first attempt went to (0: never sent), and those of later attempts:
    /// the only senders whose result for this task counts. Later ones are rare (a redelivery),
    /// so the common case allocates nothing.
    var firstWorker: UInt32 = 0
    /// The input task's SHA-256, carried to its outcome for the journal (zero without one).
    var digest: TaskDigest = .zero
    /// Incremented on every dispatch (the first send, every redelivery and every retry);
    /// results name the attempt they belong to, and the worker sees it as `context.attempt`.
    var attempt: UInt16 = 0
    /// Times a process died (or was killed for its time limit) while running this task, since
    /// its last failed attempt.
    var deaths: UInt16 = 0
    var state: State = .queued
    /// Why it waits to be sent again (set with ``lostSince``), for the pool log.
    var lostReason: RedeliveryReason = .none
    /// Failed attempts charged to the task's retries (a failure result, or a time-limit verdict);
    /// never more than `retries`. Lost work sent again is not charged here.
    var failures: UInt16 = 0
    /// The thread holding the current attempt (while dispatched or started).
    var holder: PeerKey?
    /// How many failed attempts are run again: the task line's `"retries"`, else `--retries`.
    var retries: UInt16 = 0
    /// Heartbeats its worker had sent when the task was seen there: a task missing from the
    /// worker's next heartbeats (results and all) was lost in transit. 32 bits (a worker's
    /// heartbeats wrap after 136 years at one a second; a wrap only sends the task again).
    var heldSinceHeartbeat: UInt32 = 0
    var laterWorkers: [UInt32] = []
    var dispatchedAt: PoolTime = .zero
    /// When the task was found to need sending again (the last sign of life of the worker that
    /// lost it), for the redelivery-delay figure; zero when not lost.
    var lostSince: PoolTime = .zero

    var isFree: Bool { id == 0 }
    /// Sent to a worker thread, which holds it (or it is on its way there). Always inlined: a
    /// call would need the whole lease stored to memory for its `self` (a copy per task in `remove`).
    @inline(__always) var isOut: Bool { state == .dispatched || state == .started }
    var wasSent: Bool { firstWorker != 0 }

    /// Whether `worker` was sent some attempt of this task (and may therefore end it).
    func wasSent(to worker: UInt32) -> Bool {
        worker != 0 && (firstWorker == worker || (!laterWorkers.isEmpty && laterWorkers.contains(worker)))
    }

    var encodedSize: Int { TaskRecord.fixedSize + name.utf8.count + payload.count }
}
