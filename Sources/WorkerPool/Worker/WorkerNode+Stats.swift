/// The process's totals for its supervisor's metrics.
extension WorkerNode {
    /// What this process counted: the task threads' published totals and the node's counters.
    func totals() -> WorkerStatsBoard.Totals {
        var totals = WorkerStatsBoard.Totals()
        totals.tasksOK = counters.done.load(ordering: .relaxed)
        totals.tasksFailed = counters.failed.load(ordering: .relaxed)
        totals.malformedMessages = counters.malformed.load(ordering: .relaxed)
        totals.execJobs = counters.execJobs.load(ordering: .relaxed)
        totals.tasksBytesReceived = linkStats.tasksBytesReceived.load(ordering: .relaxed)
        totals.resultsBytesSent = linkStats.resultsBytesSent.load(ordering: .relaxed)
        return totals
    }

    /// Copies the totals to the supervisor's board, if it passed one.
    func publishStats() { statsBoard?.store(totals()) }
}
