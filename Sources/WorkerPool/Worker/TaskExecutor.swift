import CPoolSystem
import Glibc

/// Runs tasks for one task thread: looks up each task's handler (cached for consecutive tasks
/// of one name), hands it a context updated in place, marks it on the running-task board, and
/// returns its result record.
struct TaskExecutor {
    let node: WorkerNode
    /// The thread's index on the board (0-based).
    let index: Int
    /// The node's board and counters, held here: called through `node` they are retained and
    /// released around every use.
    private let board: RunningTaskBoard
    private let counters: WorkerNode.Counters
    /// The context handed to every task, updated in place (no per-task copy of its strings).
    private var context: TaskContext
    /// What the last task name run resolved to: consecutive tasks mostly share a name, so a
    /// task's name is compared byte for byte with it, and no String is made.
    private var resolved = ResolvedName(name: [], handler: nil, slackMilliseconds: 0)
    /// The last answer's bytes: its room serves the next answer, so a handler that appends to it
    /// allocates nothing once the last result has been let go (batched).
    private var answer: [UInt8] = []
    /// When the last task run ended (monotonic nanoseconds): the next one's start when it follows
    /// at once.
    private(set) var endedAt: UInt64 = 0

    struct ResolvedName {
        let name: [UInt8]
        /// Nil: no handler has the name.
        let handler: TaskRegistry.Handler?
        /// The time-limit slack of the name (see `TaskRegistry.registerRaw`).
        let slackMilliseconds: UInt32

        func matches(_ other: UnsafeBufferPointer<UInt8>) -> Bool {
            name.withUnsafeBufferPointer { name in
                guard name.count == other.count else { return false }
                return name.isEmpty || memcmp(name.baseAddress!, other.baseAddress!, name.count) == 0
            }
        }
    }

    init(node: WorkerNode, index: Int) {
        self.node = node
        self.index = index
        board = node.board
        counters = node.counters
        context = TaskContext(
            workerName: node.configuration.name, host: node.configuration.host, events: node.events,
            logger: node.logger)
        context.stopFileDescriptor = node.stopSignal.fileDescriptor
        context.board = node.board
        context.thread = index
    }

    /// Runs `task` and counts its outcome; the result says how long it queued and ran. Nil when
    /// this worker's stop interrupted it: no result, so the producer sends it elsewhere.
    ///
    /// - Parameter startedAt: now, on the monotonic clock, when the caller knows it (the last
    ///   task's ``endedAt``, with nothing done since); read here when nil. A clock read is 25 ns
    ///   here, a tenth of a null task's trip through the worker.
    mutating func run(_ task: borrowing WorkerNode.QueuedTask, startedAt known: UInt64? = nil) -> ResultRecord? {
        if !task.withName({ resolved.matches($0) }) {
            let name = task.name
            resolved = ResolvedName(
                name: Array(name.utf8), handler: node.registry.handler(named: name),
                slackMilliseconds: node.registry.timeLimitSlack(named: name))
        }
        let startedAt = known ?? cpool_monotonic_nanoseconds()
        board.begin(
            thread: index, task: TaskAttempt(id: task.id, attempt: task.attempt),
            limitMilliseconds: supervisedLimit(task), startedNanoseconds: startedAt)
        guard var result = execute(task, startedAt: startedAt) else {
            board.end(thread: index)
            return nil
        }
        result.queuedMicroseconds = UInt32(clamping: (startedAt &- task.receivedAt) / 1_000)
        board.end(thread: index)
        if result.status == .ok {
            counters.done.add(1, ordering: .relaxed)
        } else {
            counters.failed.add(1, ordering: .relaxed)
        }
        return result
    }

    /// Whether this process has run its `--max-tasks-per-child` (it then stops to be replaced).
    func recycleIfDone() {
        guard let limit = node.configuration.maxTasks else { return }
        let ended = counters.done.load(ordering: .relaxed) + counters.failed.load(ordering: .relaxed)
        if ended >= UInt64(limit) { node.recycle() }
    }

    /// The limit the supervisor enforces for `task`.
    private func supervisedLimit(_ task: borrowing WorkerNode.QueuedTask) -> UInt32 {
        guard task.timeLimitMilliseconds > 0 else { return 0 }
        let (limit, overflow) = task.timeLimitMilliseconds.addingReportingOverflow(resolved.slackMilliseconds)
        return overflow ? .max : limit
    }

    private mutating func execute(_ task: borrowing WorkerNode.QueuedTask, startedAt: UInt64) -> ResultRecord? {
        context.attempt = task.attempt
        context.taskID = task.id
        context.timeLimitMilliseconds = task.timeLimitMilliseconds
        var outcome = TaskRegistry.Outcome(status: .ok, payload: [])
        swap(&outcome.payload, &answer)
        outcome.reset()
        run(task, into: &outcome)
        // Not the room of a large answer: it would stay allocated for as long as the thread runs.
        if outcome.payload.capacity <= 1 << 16 { answer = outcome.payload }
        if outcome.abandoned {
            node.logger.info("task \(task.id) (\(task.name)) interrupted: this worker is stopping")
            return nil
        }
        endedAt = cpool_monotonic_nanoseconds()
        let micros = (endedAt &- startedAt) / 1_000
        var result = ResultRecord(
            id: task.id, attempt: task.attempt, status: outcome.status,
            runMicroseconds: UInt32(clamping: micros), payload: outcome.payload)
        let limit = node.sendLimit - WireFormat.headerSize - ResultRecord.fixedSize
        if result.payload.count > limit {
            result.status = .tooLarge
            result.payload = Array(
                "result of \(outcome.payload.count) bytes exceeds the message limit of \(limit)".utf8)
        }
        if result.status != .ok {
            node.logger.info("task \(task.id) (\(task.name)) \(result.status): \(result.message)")
        }
        return result
    }

    /// Not `mutating`: the context is handed to the handler as it is, not copied first.
    private func run(_ task: borrowing WorkerNode.QueuedTask, into outcome: inout TaskRegistry.Outcome) {
        guard let handler = resolved.handler else {
            outcome = node.registry.unknown(task.name)
            return
        }
        task.withPayload { handler($0, context, &outcome) }
    }
}
