import CPoolSystem

/// Runs tasks for one task thread: looks up each task's handler (cached for consecutive tasks
/// of one name), hands it a context updated in place, marks it on the running-task board, and
/// returns its result record.
struct TaskExecutor {
    let node: WorkerNode
    /// The thread's index on the board (0-based).
    let index: Int
    /// The context handed to every task, updated in place (no per-task copy of its strings).
    private var context: TaskContext
    /// The handler of the last task name run: consecutive tasks mostly share a name.
    private var lastHandler: (name: String, handler: TaskRegistry.Handler)?

    init(node: WorkerNode, index: Int) {
        self.node = node
        self.index = index
        context = TaskContext(
            workerName: node.configuration.name, host: node.configuration.host, events: node.events,
            logger: node.logger)
    }

    /// Runs `task` and counts its outcome; the result says how long it queued and ran.
    mutating func run(_ task: WorkerNode.QueuedTask) -> ResultRecord {
        let record = task.record
        let startedAt = cpool_monotonic_nanoseconds()
        node.board.begin(
            thread: index, task: TaskAttempt(id: record.id, attempt: record.attempt),
            limitMilliseconds: record.timeLimitMilliseconds, startedNanoseconds: startedAt)
        var result = execute(record, startedAt: startedAt)
        result.queuedMicroseconds = UInt32(clamping: (startedAt &- task.receivedAt) / 1_000)
        node.board.end(thread: index)
        if result.status == .ok {
            node.counters.done.add(1, ordering: .relaxed)
        } else {
            node.counters.failed.add(1, ordering: .relaxed)
        }
        return result
    }

    /// Whether this process has run its `--max-tasks-per-child` (it then stops to be replaced).
    func recycleIfDone() {
        guard let limit = node.configuration.maxTasks else { return }
        let ended = node.counters.done.load(ordering: .relaxed) + node.counters.failed.load(ordering: .relaxed)
        if ended >= UInt64(limit) { node.recycle() }
    }

    private mutating func execute(_ record: TaskRecord, startedAt: UInt64) -> ResultRecord {
        context.attempt = record.attempt
        context.taskID = record.id
        if lastHandler?.name != record.name {
            lastHandler = node.registry.handler(named: record.name).map { (record.name, $0) }
        }
        let outcome = lastHandler.map { $0.handler(record.payload, context) } ?? node.registry.unknown(record.name)
        let micros = (cpool_monotonic_nanoseconds() &- startedAt) / 1_000
        var result = ResultRecord(
            id: record.id, attempt: record.attempt, status: outcome.status,
            runMicroseconds: UInt32(clamping: micros), payload: outcome.payload)
        let limit = node.sendLimit - WireFormat.headerSize - ResultRecord.fixedSize
        if result.payload.count > limit {
            result.status = .tooLarge
            result.payload = Array(
                "result of \(outcome.payload.count) bytes exceeds the message limit of \(limit)".utf8)
        }
        if result.status != .ok {
            node.logger.info("task \(record.id) (\(record.name)) \(result.status): \(result.message)")
        }
        return result
    }
}
