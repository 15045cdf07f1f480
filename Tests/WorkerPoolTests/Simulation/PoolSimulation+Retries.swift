@testable import WorkerPool

/// What the core charged to tasks' retries, as seen from outside: a charge must follow a
/// message that reports a failure of that task, and is then remembered until the task ends.
struct RetryLedger {
    /// Tasks the simulated workers reported a failure of (a failed result, or a kill for the
    /// time limit): the only ones a delivered message may charge.
    var suspects = Set<UInt64>()
    /// Failed attempts charged to each live task, and when the last one was (until its retry is sent).
    var charged: [UInt64: UInt16] = [:]
    var chargedAt: [UInt64: UInt64] = [:]
    /// The sum of `charged` over live tasks: the core's leases must add up to it.
    var liveFailures = 0
}

extension PoolSimulation {
    static let failurePayload = Array("sim failure".utf8)

    /// The retries task `id` has: its line's, else the run's.
    func retryLimit(of id: UInt64) -> UInt16 {
        natures[id]?.retries ?? configuration.retries
    }

    /// The least wait before the retry after failure `failures`, worked out here rather than
    /// asked of the core: the base doubled per earlier failure, capped.
    func minimumBackoff(failures: UInt16) -> UInt64 {
        let base = UInt64(configuration.retryBackoffMilliseconds) * 1_000_000
        let cap = max(base, UInt64(configuration.retryBackoffCapMilliseconds) * 1_000_000)
        var backoff = base
        for _ in 1..<max(Int(failures), 1) { backoff = min(cap, backoff * 2) }
        return min(cap, backoff)
    }

    /// The failures charged to each suspect task still open, before a message is delivered.
    func failuresOfSuspects() -> [(id: UInt64, failures: UInt16)] {
        retryLedger.suspects.compactMap { id in core.leases.withLease(id) { (id, $0.failures) } }
    }

    /// After a message was delivered: each new charge must be for a failure the message reports.
    func noteCharges(since before: [(id: UInt64, failures: UInt16)], by bytes: [UInt8]) {
        for (id, old) in before {
            guard let new = core.leases.withLease(id, { $0.failures }), new != old else { continue }
            guard new == old + 1, reportsFailure(bytes, of: id) else {
                outcomeFailure =
                    outcomeFailure
                    ?? "task \(id) was charged \(Int(new) - Int(old)) failed attempts by a message that reports no failure of it"
                continue
            }
            retryLedger.charged[id] = new
            retryLedger.chargedAt[id] = now
            retryLedger.liveFailures += 1
            faultsInjected["retries charged", default: 0] += 1
        }
    }

    func reportsFailure(_ bytes: [UInt8], of id: UInt64) -> Bool {
        switch try? WireFormat.decodeWorkerMessage(bytes) {
        case .results(_, let records)?: records.contains { $0.id == id && $0.status != .ok }
        case .workerLost(_, let loss)?: loss.reason == .timeLimit && loss.culprit == id
        default: false
        }
    }

    /// A task charged a failed attempt is not sent again before its backoff has passed.
    func checkBackoff(beforeSending id: UInt64) {
        guard let at = retryLedger.chargedAt.removeValue(forKey: id), let failures = retryLedger.charged[id] else {
            return
        }
        let least = minimumBackoff(failures: failures)
        if now - at < least {
            outcomeFailure =
                outcomeFailure
                ?? "task \(id) was sent again \(Double(now - at) / 1e6) ms after failed attempt \(failures), "
                + "before its backoff of \(Double(least) / 1e6) ms"
        }
    }

    /// An outcome says how many attempts the task took: those charged, and the last; never more
    /// than its retries allow; all of them when it ended on a failure of its own.
    func checkAttempts(of outcome: TaskOutcome) {
        let id = outcome.id
        let charged = retryLedger.charged.removeValue(forKey: id) ?? 0
        retryLedger.liveFailures -= Int(charged)
        retryLedger.chargedAt[id] = nil
        retryLedger.suspects.remove(id)
        let limit = retryLimit(of: id)
        let expected: ClosedRange<UInt16> =
            outcome.status == .cancelled ? charged...(charged + 1) : (charged + 1)...(charged + 1)
        var rule: String?
        if outcome.attempts > limit + 1 {
            rule = "task \(id) ended after \(outcome.attempts) attempts; its \(limit) retries allow \(limit + 1)"
        } else if !expected.contains(outcome.attempts) {
            rule =
                "task \(id) ended \(outcome.status) saying \(outcome.attempts) attempts; \(charged) failed attempts were charged"
        } else if outcome.status == .failed, outcome.payload == Self.failurePayload, outcome.attempts != limit + 1 {
            rule = "task \(id) ended on its failure after \(outcome.attempts) attempts, not retried \(limit) times"
        }
        if let rule { outcomeFailure = outcomeFailure ?? rule }
    }

    /// Live leases carry exactly the failed attempts charged after reported failures (lost work
    /// sent again is never charged), and never more than their retries.
    func checkRetriesCharged(failures: Int, overcharged: UInt64?) throws {
        if let overcharged { throw failure("task \(overcharged) was charged more failed attempts than its retries") }
        guard failures == retryLedger.liveFailures else {
            throw failure(
                "open tasks carry \(failures) failed attempts, but \(retryLedger.liveFailures) followed a reported "
                    + "failure (lost work charged as a retry?)")
        }
    }

    /// At the end: a task that fails fewer times than it may be retried ends on a success, not
    /// its failure (only a time limit, a poison task or a cancel may stop it first).
    func checkRetriedEnough(_ id: UInt64, nature: Nature) throws {
        guard nature.timeLimitMilliseconds == nil, !nature.poison, let outcome = journal[id] else { return }
        let limit = retryLimit(of: id)
        if outcome.status == .failed, outcome.payload == Self.failurePayload, nature.failTimes <= Int(limit) {
            throw failure(
                "task \(id) fails \(nature.failTimes) times and may be retried \(limit) times, but ended on its failure"
            )
        }
    }
}
