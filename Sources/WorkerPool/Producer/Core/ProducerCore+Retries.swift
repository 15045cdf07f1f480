/// Retries of failed attempts (`--retries`, a task line's `"retries"`), as `parallel --retries`.
///
/// The rule: an *attempt* is one try of a task that came to a verdict. A verdict that is a
/// retryable failure (see ``isRetryable(_:)``) is charged to the task's retries while it has
/// any left: the task waits out a backoff (exponential with jitter, ``retryDelay(afterFailure:id:)``)
/// and is sent again, preferably to another worker than the one it failed on. Otherwise the
/// failure ends the task, which keeps that last error and says how many attempts it took.
///
/// Lost work is not an attempt: a task sent again because its worker, its connection or its
/// message was lost, or because its process died (``ProducerConfiguration/maxAttempts``), is
/// never charged a retry. A time limit overrun kills its process, so it counts as a death as it
/// always did; the `time-limit` verdict that comes after the last allowed death is the failure
/// a retry is charged for, and the retry starts with its deaths counted from zero.
///
/// A task with no retries (the default) ends on the first failure result from any worker it was
/// sent to, as before. With retries, only a failure of the attempt that decides counts: one of an
/// earlier attempt (a duplicate, or work presumed lost and sent again meanwhile) is dropped, since
/// the attempt now out or about to be sent again will report.
extension ProducerCore {
    /// Whether a failure of this kind is worth another attempt: a handler's error or a failed
    /// program (`failed`) and a time limit may pass on another try or another worker. A task no
    /// worker knows (`unknown-task`), arguments that do not decode (`bad-arguments`), a record
    /// or task that cannot travel (`malformed`, `too-large`, `bad-input`) fail the same way
    /// every time; `worker-died` already had ``ProducerConfiguration/maxAttempts`` tries, each
    /// taking its process down; `cancelled` is the run's end, not the task's.
    static func isRetryable(_ status: ResultStatus) -> Bool {
        status == .failed || status == .timeLimit
    }

    /// The wait before the retry after failure number `failures` (1 for the first): the base
    /// doubled for each failure before it, at most the cap (or the base, if larger), plus up to
    /// half of that again as jitter, so tasks that failed together do not all return at once.
    /// The jitter comes from the task's id, the failure's number and the run's epoch: the same
    /// every time for a seeded simulation, different across runs, no generator to keep.
    func retryDelay(afterFailure failures: UInt16, id: UInt64) -> PoolTime {
        let base = UInt64(configuration.retryBackoffMilliseconds) * 1_000_000
        guard base > 0 else { return .zero }
        let cap = max(base, UInt64(configuration.retryBackoffCapMilliseconds) * 1_000_000)
        let doublings = min(UInt64(max(failures, 1) - 1), 40)
        let (grown, overflow) = base.multipliedReportingOverflow(by: 1 << doublings)
        let backoff = overflow ? cap : min(cap, grown)
        let jitter = Self.mix(id ^ (UInt64(failures) << 48) ^ (UInt64(epoch) << 16)) % (backoff / 2 + 1)
        return PoolTime(nanoseconds: backoff + jitter)
    }

    /// SplitMix64's finaliser: a well-spread 64-bit hash of `value`.
    private static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A failed result for a task `sender` was sent: true when the task does not end on it,
    /// because it is held for a retry (or, in a cancelled run, ended `cancelled`), or because it
    /// belongs to an earlier attempt than the one that decides. False: it ends the task as before.
    mutating func retryInstead(of record: ResultView, from sender: UInt32, now: PoolTime) -> Bool {
        guard Self.isRetryable(record.status),
            let (attempt, failures, retries, state) = leases.withLease(
                record.id, { ($0.attempt, $0.failures, $0.retries, $0.state) }),
            retries > 0
        else { return false }
        if state == .awaitingRetry || record.attempt != attempt {
            duplicates += 1
            return true
        }
        guard failures < retries else { return false }
        roster[sender]?.tasksFailed += 1
        hold(
            record.id, failedOn: sender, status: record.status, error: String(decoding: record.payload, as: UTF8.self),
            now: now)
        return true
    }

    /// Task `id` overran its time limit on `worker` for the last time its deaths allow: true
    /// when that verdict is charged to its retries instead of ending it `time-limit`.
    mutating func retryAfterOverrun(_ id: UInt64, on worker: UInt32, error: String, now: PoolTime) -> Bool {
        guard let (failures, retries) = leases.withLease(id, { ($0.failures, $0.retries) }), failures < retries
        else { return false }
        hold(id, failedOn: worker, status: .timeLimit, error: error, now: now)
        return true
    }

    /// Charges the failed attempt and holds the task for its backoff; in a cancelled run the task
    /// ends `cancelled` instead (not journaled: a resumed run tries it again, retries and all).
    private mutating func hold(
        _ id: UInt64, failedOn worker: UInt32, status: ResultStatus, error: String, now: PoolTime
    ) {
        guard !inputCancelled else {
            guard let lease = leases.remove(id) else { return }
            end(
                TaskOutcome(
                    id: id, name: lease.name, status: .cancelled,
                    payloadStorage: Array(
                        "run cancelled before a retry; attempt \(lease.failures + 1) failed: \(error)".utf8),
                    runMicroseconds: 0, attempts: lease.failures + 1, deliveries: lease.attempt))
            return
        }
        guard let lease = leases.lease(id) else { return }
        let wait = retryDelay(afterFailure: lease.failures + 1, id: id)
        leases.holdForRetry(id, failedOn: worker, until: now + wait)
        retriesScheduled += 1
        retryLog.note(
            .info,
            "task \(id) (\(lease.name)) attempt \(lease.failures + 1) of \(lease.retries + 1) failed on "
                + "\(roster.name(of: worker)) (\(status): \(error.prefix(200))); "
                + "retrying in \((wait.nanoseconds + 999_999) / 1_000_000) ms",
            into: &logs)
    }

    /// Ends `cancelled` every task between attempts (waiting out its backoff, or queued for its
    /// retry): like a task never sent, nothing of it runs anywhere. Called when input is cancelled.
    mutating func cancelRetries() {
        for lease in leases.removeAll(where: { $0.failures > 0 && !$0.isOut }) {
            end(
                TaskOutcome(
                    id: lease.id, name: lease.name, status: .cancelled,
                    payloadStorage: Array(
                        "run cancelled while the task waited to be retried (\(lease.failures) failed)".utf8),
                    runMicroseconds: 0, attempts: lease.failures, deliveries: lease.attempt))
        }
    }

    /// The thread to fill next: the next with credit, round robin, unless the next task to
    /// send again failed its last attempt on that thread's worker and another worker's thread
    /// has credit (a preference, not a rule: with no other, the same worker tries again).
    mutating func threadWithCredit() -> (position: Int, credit: Int)? {
        let prefetch = configuration.prefetchMicroseconds
        let maximum = configuration.maxTasksPerThread
        guard let next = leases.credit.nextWithCredit(prefetchMicroseconds: prefetch, maximum: maximum) else {
            return nil
        }
        guard !leases.retry.isEmpty else { return next }
        let avoid = leases.nextRetryAvoids()
        guard avoid != 0, leases.credit.peers[next.position].key.worker == avoid else { return next }
        for (position, peer) in leases.credit.peers.enumerated() where peer.key.worker != avoid {
            let credit = peer.window(prefetchMicroseconds: prefetch, maximum: maximum) - peer.outstanding
            if credit > 0 { return (position, credit) }
        }
        return next
    }
}
