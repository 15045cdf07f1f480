/// What the core hands to metrics: a copy of its counters and the sizes of its tables.
extension ProducerCore {
    func metricsSnapshot() -> ProducerMetrics.Snapshot {
        let waiting = leases.retry.count + leases.freshCount
        return ProducerMetrics.Snapshot(
            counters: counters, read: submitted, duplicates: duplicates,
            rejected: [rejected.count, strangers.count, forged.count, refusedLossReports.count],
            inFlight: leases.count - waiting, waiting: waiting,
            workers: roster.live.reduce(0) { count, _ in count + 1 }, threads: leases.credit.count,
            complete: isComplete)
    }
}
