/// The pool's story as the core tells it: events recorded where they are decided.
extension ProducerCore {
    /// Records `kind` for the pool log and, when it deserves one, its line for the log.
    mutating func record(_ kind: PoolEvent.Kind, now: PoolTime) {
        let event = PoolEvent(time: now, kind: kind)
        if let line = event.logLine { logs.append(line) }
        poolEvents.append(event)
    }

    /// A lost task goes out again: who had it, who has it now, and why.
    mutating func recordRedelivery(
        _ id: UInt64, _ redelivery: LeaseTable.Redelivery, to worker: UInt32, now: PoolTime
    ) {
        guard let (name, attempt) = leases.withLease(id, { ($0.name, $0.attempt) }) else { return }
        record(
            .taskRedelivered(
                PoolEvent.TaskRedelivery(
                    id: id, name: name, attempt: attempt, reason: redelivery.reason,
                    from: roster[redelivery.previousWorker]?.info, fromID: redelivery.previousWorker,
                    to: roster[worker]?.info, toID: worker, delaySeconds: now.since(redelivery.lostSince).seconds)),
            now: now)
    }

    /// One event per kind of rejected message since the last call, with the exact count: the
    /// log's rate-limited lines become at most a few pool-log lines per tick.
    mutating func noteRejections(now: PoolTime) {
        let counters: [(PoolEvent.MessageRejection.Reason, RateLimitedLines)] = [
            (.malformed, rejected), (.stranger, strangers), (.forged, forged),
            (.refusedLossReport, refusedLossReports),
        ]
        for (index, (reason, counter)) in counters.enumerated() where counter.count > rejectionsNoted[index] {
            record(
                .messagesRejected(
                    PoolEvent.MessageRejection(
                        reason: reason, count: counter.count - rejectionsNoted[index], total: counter.count,
                        example: counter.lastMessage)),
                now: now)
            rejectionsNoted[index] = counter.count
        }
    }
}
