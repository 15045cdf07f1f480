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
    /// The time-limit slack of the last task name run (see `TaskRegistry.registerRaw`).
    private var lastSlack: (name: String, milliseconds: UInt32)?

    init(node: WorkerNode, index: Int) {
        self.node = node
        self.index = index
        context = TaskContext(
            workerName: node.configuration.name, host: node.configuration.host, events: node.events,
            logger: node.logger)
        context.stopFileDescriptor = node.stopSignal.fileDescriptor
        context.board = node.board
        context.thread = index
    }

    /// Runs `task` and counts its outcome; the result says how long it queued and ran. Nil when
    /// this worker's stop interrupted it: no result, so the producer sends it elsewhere.
    mutating func run(_ task: WorkerNode.QueuedTask) -> ResultRecord? {
        let record = task.record
        let startedAt = cpool_monotonic_nanoseconds()
        node.board.begin(
            thread: index, task: TaskAttempt(id: record.id, attempt: record.attempt),
            limitMilliseconds: supervisedLimit(record), startedNanoseconds: startedAt)
        guard var result = execute(record, startedAt: startedAt) else {
            node.board.end(thread: index)
            return nil
        }
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

    /// The limit the supervisor enforces for `record`, looked up once per task name.
    private mutating func supervisedLimit(_ record: TaskRecord) -> UInt32 {
        guard record.timeLimitMilliseconds > 0 else { return 0 }
        if lastSlack?.name != record.name {
            lastSlack = (record.name, node.registry.timeLimitSlack(named: record.name))
        }
        let (limit, overflow) = record.timeLimitMilliseconds.addingReportingOverflow(lastSlack?.milliseconds ?? 0)
        return overflow ? .max : limit
    }

    private mutating func execute(_ record: TaskRecord, startedAt: UInt64) -> ResultRecord? {
        context.attempt = record.attempt
        context.taskID = record.id
        context.timeLimitMilliseconds = record.timeLimitMilliseconds
        if lastHandler?.name != record.name {
            lastHandler = node.registry.handler(named: record.name).map { (record.name, $0) }
        }
        let outcome = lastHandler.map { $0.handler(record.payload, context) } ?? node.registry.unknown(record.name)
        if outcome.abandoned {
            node.logger.info("task \(record.id) (\(record.name)) interrupted: this worker is stopping")
            return nil
        }
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
