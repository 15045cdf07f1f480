/// What the core tells about the run.
extension ProducerCore {
    /// Introduced workers heard from recently that have not been released.
    func liveWorkersNotReleased(now: PoolTime) -> [String] {
        let timeout = PoolTime.milliseconds(configuration.workerTimeoutMilliseconds)
        return roster.live.filter { now.since($0.lastSeen) < timeout }.map { "\($0.info.name)@\($0.info.host)" }
            .sorted()
    }

    func allLiveWorkersReleased(now: PoolTime) -> Bool { liveWorkersNotReleased(now: now).isEmpty }

    func progress(now: PoolTime) -> RunProgress {
        RunProgress(
            submitted: submitted, succeeded: succeeded, failed: failed, inFlight: leases.count,
            workers: roster.live.reduce(0) { count, _ in count + 1 }, inputFinished: inputCancelled || inputEnded,
            elapsedSeconds: now.since(startedAt).seconds,
            workerRows: configuration.progressIncludesWorkers ? workerSummaries() : [], time: now)
    }

    func workerSummaries() -> [WorkerSummary] {
        (roster.workers.values.map(WorkerRoster.summary(of:)) + roster.retired)
            .sorted { ($0.host, $0.name, $0.pid) < ($1.host, $1.name, $1.pid) }
    }

    func summary(now: PoolTime) -> RunSummary {
        var perWorker: [String: UInt64] = [:]
        for worker in workerSummaries() where worker.tasksDone + worker.tasksFailed > 0 {
            perWorker["\(worker.name)@\(worker.host)", default: 0] += worker.tasksDone + worker.tasksFailed
        }
        return RunSummary(
            tasks: submitted, succeeded: succeeded, failed: failed, wallSeconds: now.since(startedAt).seconds,
            rejectedMessages: rejected.count + strangers.count + forged.count + refusedLossReports.count,
            duplicateResults: duplicates, perWorker: perWorker, workersNotReleased: liveWorkersNotReleased(now: now),
            workers: workerSummaries(), redeliveries: redeliveries, retries: retriesScheduled, resumed: 0,
            forgedResults: forged.count,
            strangerMessages: strangers.count, refusedLossReports: refusedLossReports.count,
            worstRedeliverySeconds: worstRedelivery.seconds)
    }
}
