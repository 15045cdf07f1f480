import Logging

/// The producer's bookkeeping, owned by its I/O thread: what is staged, in flight, and ended,
/// and which workers are known and leaving.
struct ProducerLoop {
    let configuration: ProducerConfiguration
    let logger: Logger
    let events: PoolEvents
    let feed: TaskFeed
    let onResult: (TaskOutcome) -> Void
    let started = ContinuousClock.now

    /// The next message to send, already encoded.
    var staged: [UInt8]?
    /// Task name by id, for every task dispatched or staged and not yet ended.
    var inFlight: [UInt64: String] = [:]
    private var chunk: [TaskFeed.Entry] = []
    private var chunkIndex = 0
    var inputCancelled = false

    private(set) var submitted: UInt64 = 0
    private(set) var succeeded: UInt64 = 0
    private(set) var failed: UInt64 = 0
    private(set) var duplicates: UInt64 = 0
    var rejected = RateLimitedLog()

    struct KnownWorker {
        var info: WorkerInfo?
        var lastSeen: ContinuousClock.Instant
        var resultsReceived: UInt64 = 0
        var tasksEnded: UInt64 = 0
        var goodbyeAfter: UInt64?
        var released = false
    }
    private var workers: [UInt32: KnownWorker] = [:]
    /// Workers to confirm as released in the next broadcast.
    var releasable: [UInt32] = []

    init(
        configuration: ProducerConfiguration, logger: Logger, events: PoolEvents, feed: TaskFeed,
        onResult: @escaping (TaskOutcome) -> Void
    ) {
        self.configuration = configuration
        self.logger = logger
        self.events = events
        self.feed = feed
        self.onResult = onResult
    }

    var isComplete: Bool {
        staged == nil && inFlight.isEmpty && chunkIndex >= chunk.count && (inputCancelled || feed.isDrained)
    }

    private mutating func nextEntry() -> TaskFeed.Entry? {
        if chunkIndex >= chunk.count {
            guard !inputCancelled, let next = feed.take() else { return nil }
            chunk = next
            chunkIndex = 0
        }
        defer { chunkIndex += 1 }
        return chunk[chunkIndex]
    }

    private var enoughWorkers = false

    /// Encodes the next message from the input, if the window has room and none is staged.
    mutating func stage() {
        guard staged == nil else { return }
        if !enoughWorkers {
            let joined = workers.values.filter { $0.info != nil }.count
            guard joined >= configuration.minimumWorkers else { return }
            enoughWorkers = true
        }
        var writer = WireFormat.MessageWriter(kind: .tasks, capacity: 64 * configuration.batchSize)
        let limit = configuration.maxMessageSize
        while writer.count < configuration.batchSize && inFlight.count < configuration.window {
            guard let entry = nextEntry() else { break }
            switch entry.item {
            case .invalid(let reason):
                submitted += 1
                logger.warning("task \(entry.id): \(reason)")
                end(
                    TaskOutcome(
                        id: entry.id, name: "", status: .badInput, payload: Array(reason.utf8), runMicroseconds: 0))
            case .task(let name, let payload):
                let record = TaskRecord(id: entry.id, name: name, payload: payload)
                if record.encodedSize + WireFormat.headerSize > limit {
                    submitted += 1
                    let reason = "task of \(record.encodedSize) bytes exceeds the message limit of \(limit)"
                    logger.warning("task \(entry.id): \(reason)")
                    end(
                        TaskOutcome(
                            id: entry.id, name: name, status: .tooLarge, payload: Array(reason.utf8), runMicroseconds: 0
                        ))
                    continue
                }
                if writer.count > 0 && writer.byteCount + record.encodedSize > limit {
                    chunkIndex -= 1  // it starts the next message
                    break
                }
                submitted += 1
                writer.append(record)
                inFlight[entry.id] = name
            }
        }
        if writer.count > 0 { staged = writer.finish() }
    }

    /// Ends every task still in flight as `.cancelled`, so none is left without an outcome.
    mutating func cancelInFlight(reason: String) {
        staged = nil
        for (id, name) in inFlight.sorted(by: { $0.key < $1.key }) {
            end(TaskOutcome(id: id, name: name, status: .cancelled, payload: Array(reason.utf8), runMicroseconds: 0))
        }
        inFlight.removeAll()
    }

    private mutating func end(_ outcome: TaskOutcome) {
        if outcome.status == .ok { succeeded += 1 } else { failed += 1 }
        onResult(outcome)
    }

    /// Applies one decoded worker message; returns whether the event state changed.
    mutating func handle(_ message: WorkerMessage) -> Bool {
        let now = ContinuousClock.now
        switch message {
        case .results(let sender, let records):
            var worker = workers[sender] ?? KnownWorker(lastSeen: now)
            worker.lastSeen = now
            worker.resultsReceived += UInt64(records.count)
            for record in records {
                guard let name = inFlight.removeValue(forKey: record.id) else {
                    duplicates += 1
                    logger.debug("dropped a result for task \(record.id), which is not in flight")
                    continue
                }
                worker.tasksEnded += 1
                end(
                    TaskOutcome(
                        id: record.id, name: name, status: record.status, payload: record.payload,
                        runMicroseconds: record.runMicroseconds, worker: worker.info))
            }
            workers[sender] = worker
            if worker.goodbyeAfter != nil { releaseIfComplete(sender) }
        case .hello(let sender, let hello):
            var worker = workers[sender] ?? KnownWorker(lastSeen: now)
            if worker.info == nil {
                logger.info("\(hello.name) joined from \(hello.host) (pid \(hello.pid), \(hello.threads) threads)")
            }
            worker.info = WorkerInfo(
                id: sender, name: hello.name, host: hello.host, pid: hello.pid, threads: hello.threads)
            worker.lastSeen = now
            workers[sender] = worker
        case .goodbye(let sender, let goodbye):
            var worker = workers[sender] ?? KnownWorker(lastSeen: now)
            if worker.goodbyeAfter == nil {
                logger.debug(
                    "\(worker.info?.name ?? "worker \(sender)") is leaving after \(goodbye.resultsSent) results")
            }
            worker.goodbyeAfter = goodbye.resultsSent
            worker.lastSeen = now
            workers[sender] = worker
            releaseIfComplete(sender)
        case .eventRequests(let sender, let requests):
            let who = workers[sender]?.info?.name ?? "worker \(sender)"
            for request in requests {
                switch request.operation {
                case .set: events.table.change { names, _ in names.insert(request.name) }
                case .clear: events.table.change { names, _ in names.remove(request.name) }
                }
                logger.info("event '\(request.name)' \(request.operation == .set ? "set" : "cleared") by \(who)")
            }
            return !requests.isEmpty
        }
        return false
    }

    /// A leaving worker is released once every result it sent has arrived.
    private mutating func releaseIfComplete(_ id: UInt32) {
        guard var worker = workers[id], let expected = worker.goodbyeAfter,
            worker.resultsReceived >= expected
        else { return }
        if !worker.released {
            logger.info("\(worker.info?.name ?? "worker \(id)") left after \(worker.tasksEnded) tasks")
        }
        worker.released = true
        workers[id] = worker
        releasable.append(id)
    }

    /// Introduced workers heard from recently (hello every second) that have not been released.
    func liveWorkersNotReleased(now: ContinuousClock.Instant) -> [String] {
        workers.filter { $0.value.info != nil && !$0.value.released && now - $0.value.lastSeen < .seconds(3) }
            .map { $0.value.info.map { "\($0.name)@\($0.host)" } ?? "worker \($0.key)" }
            .sorted()
    }

    func allLiveWorkersReleased(now: ContinuousClock.Instant) -> Bool {
        liveWorkersNotReleased(now: now).isEmpty
    }

    func progress() -> RunProgress {
        let elapsed = started.duration(to: .now)
        return RunProgress(
            submitted: submitted, succeeded: succeeded, failed: failed, inFlight: inFlight.count,
            workers: workers.values.filter { !$0.released && $0.info != nil }.count,
            inputFinished: inputCancelled || feed.isDrained,
            elapsedSeconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    func summary(notReleased: [String]) -> RunSummary {
        var perWorker: [String: UInt64] = [:]
        for (id, worker) in workers where worker.tasksEnded > 0 {
            perWorker[worker.info.map { "\($0.name)@\($0.host)" } ?? "worker \(id)", default: 0] += worker.tasksEnded
        }
        return RunSummary(
            tasks: submitted, succeeded: succeeded, failed: failed, wallSeconds: progress().elapsedSeconds,
            rejectedMessages: rejected.count, duplicateResults: duplicates, perWorker: perWorker,
            workersNotReleased: notReleased)
    }
}
