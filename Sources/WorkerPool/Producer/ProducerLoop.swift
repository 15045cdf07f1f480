import DequeModule
import Logging

/// The producer's bookkeeping, owned by its I/O thread: the lease of every task between reading
/// and its end, each worker thread's credit, and the workers' lives.
///
/// Nothing is lost: a task ends once, as a result or a failure. A task whose worker thread
/// reconnects before acknowledging it, whose acknowledgement does not come within the ack
/// timeout, or whose worker dies or leaves, is sent again; a result for a task already ended is
/// dropped. A task running in a process that dies is charged an attempt, and fails after
/// ``ProducerConfiguration/maxAttempts``.
struct ProducerLoop {
    let configuration: ProducerConfiguration
    let logger: Logger
    let events: PoolEvents
    let feed: TaskFeed
    let epoch: UInt32
    // Journal hook: outcomes go to the pipeline (journal, fsync, printing off this thread).
    let pipeline: OutcomePipeline
    let started = ContinuousClock.now

    var leases: [UInt64: Lease] = [:]
    /// Tasks to send again, before new input.
    var retry = Deque<UInt64>()
    private var chunk: [TaskFeed.Entry] = []
    private var chunkIndex = 0
    var inputCancelled = false
    /// Outcomes ended since the last ``submitEnded()`` (journal hook).
    private var ended: [TaskOutcome] = []

    private(set) var submitted: UInt64 = 0
    private(set) var succeeded: UInt64 = 0
    private(set) var failed: UInt64 = 0
    private(set) var duplicates: UInt64 = 0
    private(set) var redeliveries: UInt64 = 0
    private(set) var worstRedelivery: Duration = .zero
    var rejected = RateLimitedLog()
    private var ackTimeouts = RateLimitedLog()

    struct KnownWorker {
        var info: WorkerInfo?
        var lastSeen: ContinuousClock.Instant
        var resultsReceived: UInt64 = 0
        var tasksDone: UInt64 = 0
        var tasksFailed: UInt64 = 0
        var heartbeat: WorkerHeartbeat?
        var goodbyeAfter: UInt64?
        var released = false
        var lost = false
        /// Its supervisor reported the process dead: it cannot come back.
        var dead = false
        /// Heartbeats received, and the tasks the last one listed.
        var heartbeats: UInt64 = 0
        var held: Set<UInt64> = []
        var threads: Set<UInt16> = []
    }
    private var workers: [UInt32: KnownWorker] = [:]
    private var peers = PeerTable()
    /// Workers to confirm as released in the next broadcast.
    var releasable: [UInt32] = []
    private var enoughWorkers = false

    init(
        configuration: ProducerConfiguration, logger: Logger, events: PoolEvents, feed: TaskFeed, epoch: UInt32,
        pipeline: OutcomePipeline
    ) {
        self.configuration = configuration
        self.logger = logger
        self.events = events
        self.feed = feed
        self.epoch = epoch
        self.pipeline = pipeline
    }

    /// Dispatches of one task before it fails (each lost message, reconnection or death is one).
    static let maxDispatches: UInt16 = 100

    var isComplete: Bool {
        leases.isEmpty && retry.isEmpty && (inputCancelled || (chunkIndex >= chunk.count && feed.isDrained))
            && ended.isEmpty
    }

    /// Stops taking input. Lines already read but not sent end as `cancelled` (not journaled,
    /// so a resumed run does them); lines not yet read stay unread.
    mutating func cancelInput() {
        inputCancelled = true
        feed.cancel()
        var unsent = Array(chunk[min(chunkIndex, chunk.count)...])
        while let next = feed.take() { unsent += next }
        chunk = []
        chunkIndex = 0
        // Journal hook: the feed already left out what the journal finished.
        for entry in unsent {
            submitted += 1
            let name: String
            if case .task(let taskName, _, _) = entry.item { name = taskName } else { name = "" }
            end(
                TaskOutcome(
                    id: entry.id, name: name, status: .cancelled,
                    payload: Array("run cancelled before the task was sent".utf8),
                    runMicroseconds: 0))
        }
    }

    // MARK: Dispatch

    /// A message for one worker thread: its routing id and the encoded tasks.
    struct Outgoing {
        var peer: PeerKey
        var identity: [UInt8]
        var bytes: [UInt8]
    }

    /// The next message to send: tasks for a worker thread with credit, retries first.
    mutating func nextMessage() -> Outgoing? {
        if !enoughWorkers {
            // Introduced (hello) and reachable (a thread's `ready`): the two arrive on different sockets.
            let joined = workers.values.filter { worker in
                guard let info = worker.info, !worker.lost else { return false }
                return worker.threads.count >= Int(info.threads)
            }.count
            guard joined >= configuration.minimumWorkers else { return nil }
            enoughWorkers = true
        }
        guard
            let (peer, credit) = peers.nextWithCredit(
                prefetchMicroseconds: configuration.prefetchMicroseconds, maximum: configuration.maxTasksPerThread)
        else { return nil }
        let limit = min(credit, configuration.batchSize)
        var writer = WireFormat.MessageWriter(kind: .tasks, epoch: epoch, capacity: 64 * min(limit, 16))
        let now = ContinuousClock.now
        fill: while Int(writer.count) < limit, let id = nextTaskID() {
            guard let slot = leases.index(forKey: id) else { continue }
            // Through a mutating method: the lease is used in place. Reading its fields through
            // `leases.values[slot]` would copy it, retaining and releasing its name and payload.
            switch leases.values[slot].dispatch(
                id: id, into: &writer, to: peer.key, now: now, maxMessageSize: configuration.maxMessageSize)
            {
            case .added(let lostSince):
                if let since = lostSince {
                    worstRedelivery = max(worstRedelivery, since.duration(to: now))
                    redeliveries += 1
                }
            case .messageFull:
                retry.prepend(id)
                break fill
            case .exhausted(let attempts):
                // Sent again and again without a result (a result too big for this producer, a
                // peer that keeps reconnecting): an explicit failure, not an endless loop.
                let lease = leases.remove(at: slot).value
                let reason = "sent \(attempts) times without a result; giving up"
                logger.error("task \(id) (\(lease.name)): \(reason)")
                end(
                    TaskOutcome(
                        id: id, name: lease.name, status: .failed, payload: Array(reason.utf8), runMicroseconds: 0,
                        digest: lease.digest))
            }
        }
        guard writer.count > 0 else { return nil }  // no work left for anyone
        peers.adjust(peer.key, outstanding: Int(writer.count))
        return Outgoing(peer: peer.key, identity: peer.identity, bytes: writer.finish())
    }

    /// The id of the next task to send: a retry, or a new one from the input.
    private mutating func nextTaskID() -> UInt64? {
        if let id = retry.popFirst() { return id }
        while leases.count < configuration.window, let entry = nextEntry() {
            submitted += 1
            switch entry.item {
            case .invalid(let reason):
                logger.warning("task \(entry.id): \(reason)")
                end(
                    TaskOutcome(
                        id: entry.id, name: "", status: .badInput, payload: Array(reason.utf8), runMicroseconds: 0,
                        digest: entry.digest))
            case .task(let name, _, _) where name.isEmpty || name.utf8.count > WireFormat.maxNameLength:
                let reason = "task names are 1-\(WireFormat.maxNameLength) bytes; this one is \(name.utf8.count)"
                logger.warning("task \(entry.id): \(reason)")
                end(
                    TaskOutcome(
                        id: entry.id, name: "", status: .badInput, payload: Array(reason.utf8), runMicroseconds: 0,
                        digest: entry.digest))
            case .task(let name, let payload, let timeLimit):
                let limit =
                    timeLimit.map { UInt32(clamping: Int(($0 * 1000).rounded(.up))) }
                    ?? configuration.defaultTimeLimitMilliseconds
                let size = TaskRecord.fixedSize + name.utf8.count + payload.count + WireFormat.headerSize
                if size > configuration.maxMessageSize {
                    let reason = "task of \(size) bytes exceeds the message limit of \(configuration.maxMessageSize)"
                    logger.warning("task \(entry.id): \(reason)")
                    end(
                        TaskOutcome(
                            id: entry.id, name: name, status: .tooLarge, payload: Array(reason.utf8),
                            runMicroseconds: 0,
                            digest: entry.digest))
                    continue
                }
                leases[entry.id] = Lease(
                    name: name, payload: payload, timeLimitMilliseconds: limit, digest: entry.digest)
                return entry.id
            }
        }
        return nil
    }

    private mutating func nextEntry() -> TaskFeed.Entry? {
        if inputCancelled { return nil }
        if chunkIndex >= chunk.count {
            guard !inputCancelled, let next = feed.take() else { return nil }
            chunk = next
            chunkIndex = 0
        }
        defer { chunkIndex += 1 }
        return chunk[chunkIndex]
    }

    /// A message could not be sent to `peer` (it is gone or full): its tasks wait for another.
    mutating func unsent(_ outgoing: Outgoing, peerGone: Bool) {
        // Rare: read the ids back from the message rather than carry them with every message.
        let ids = ((try? WireFormat.decodeTasks(outgoing.bytes)) ?? []).compactMap { item -> UInt64? in
            if case .task(let record) = item { return record.id }
            return nil
        }
        peers.adjust(outgoing.peer, outstanding: -ids.count)
        for id in ids.reversed() {
            guard var lease = leases[id] else { continue }
            lease.state = .queued
            lease.peer = nil
            lease.attempt -= 1
            leases[id] = lease
            retry.prepend(id)
        }
        if peerGone { peers.remove(outgoing.peer) }
    }

    // MARK: Ending tasks

    private mutating func end(_ outcome: TaskOutcome) {
        if outcome.status == .ok { succeeded += 1 } else { failed += 1 }
        ended.append(outcome)
    }

    /// Journal hook: hands what ended since the last call to the pipeline, one lock per batch.
    mutating func submitEnded() {
        guard !ended.isEmpty else { return }
        pipeline.submit(ended)
        ended = []
    }

    /// Ends every task still in flight as `.cancelled`, so none is left without an outcome.
    mutating func cancelInFlight(reason: String) {
        for (id, lease) in leases.sorted(by: { $0.key < $1.key }) {
            end(
                TaskOutcome(
                    id: id, name: lease.name, status: .cancelled, payload: Array(reason.utf8), runMicroseconds: 0))
        }
        leases.removeAll()
        retry.removeAll()
        peers.resetOutstanding()
    }

    // MARK: Messages from workers

    /// A worker thread's `ready` on the tasks socket: new, or reconnected (what it had not
    /// acknowledged was lost with the old connection).
    mutating func ready(identity: [UInt8], message: TaskChannelMessage) {
        guard case .ready(let sender, let thread) = message else { return }
        let key = PeerKey(worker: sender, thread: thread)
        guard key.identity == identity else {
            rejected.warning(logger, "rejected a ready message whose routing id does not match its sender")
            return
        }
        var worker = workers[sender] ?? KnownWorker(lastSeen: .now)
        guard !worker.released, worker.goodbyeAfter == nil else { return }
        worker.lastSeen = .now
        worker.threads.insert(thread)
        workers[sender] = worker
        if worker.lost { revive(sender) }
        guard workers[sender]?.lost != true else { return }  // reported dead: cannot come back
        if !peers.contains(key) {
            // A thread removed after a failed send comes back still holding what it acknowledged.
            let holding = leases.values.reduce(0) { $0 + ($1.peer == key && $1.state != .queued ? 1 : 0) }
            peers.add(key, outstanding: holding)
            let lost = requeue(where: { $0.peer == key && $0.state == .dispatched }, since: .now)
            if lost > 0 { logger.info("\(name(of: sender)) thread \(thread + 1) is back; \(lost) tasks sent again") }
        } else {
            let lost = requeue(where: { $0.peer == key && $0.state == .dispatched }, since: .now)
            if lost > 0 {
                logger.info("\(name(of: sender)) thread \(thread + 1) reconnected; \(lost) tasks sent again")
            }
        }
    }

    /// Applies one decoded worker message; returns whether the event state changed.
    mutating func handle(_ message: WorkerMessage, header: MessageHeader) -> Bool {
        let now = ContinuousClock.now
        let sender = header.sender
        switch message {
        case .results(_, let records):
            var worker = workers[sender] ?? KnownWorker(lastSeen: now)
            worker.lastSeen = now
            if header.epoch == epoch {
                worker.resultsReceived += UInt64(records.count)
                for record in records { finish(record, from: sender, worker: &worker) }
            } else {
                duplicates += UInt64(records.count)
                logger.debug("dropped \(records.count) results from an earlier producer run")
            }
            workers[sender] = worker
            if worker.goodbyeAfter != nil { releaseIfComplete(sender) }
        case .started(_, let tasks):
            workers[sender]?.lastSeen = now
            guard header.epoch == epoch else { break }
            let heartbeats = workers[sender]?.heartbeats ?? 0
            for task in tasks {
                guard let slot = leases.index(forKey: task.id),
                    let (key, dispatchedAt) = leases.values[slot].acknowledge(
                        task, by: sender, heartbeats: heartbeats)
                else { continue }
                peers.observeAcknowledgement(key, after: dispatchedAt.duration(to: now), now: now)
            }
        case .hello(_, let hello):
            if workers[sender]?.lost == true { revive(sender) }
            var worker = workers[sender] ?? KnownWorker(lastSeen: now)
            if worker.info == nil {
                logger.info("\(hello.name) joined from \(hello.host) (pid \(hello.pid), \(hello.threads) threads)")
            }
            worker.info = WorkerInfo(
                id: sender, name: hello.name, host: hello.host, pid: hello.pid, threads: hello.threads)
            worker.lastSeen = now
            workers[sender] = worker
        case .heartbeat(_, let heartbeat):
            if workers[sender]?.lost == true { revive(sender) }
            workers[sender]?.lastSeen = now
            workers[sender]?.heartbeat = heartbeat
            workers[sender]?.heartbeats += 1
            workers[sender]?.held = Set(heartbeat.held.map(\.id))
        case .goodbye(_, var goodbye):
            // A goodbye to another run (or from a worker that never saw ours) owes us nothing.
            if header.epoch != epoch { goodbye.resultsSent = 0 }
            var worker = workers[sender] ?? KnownWorker(lastSeen: now)
            if worker.goodbyeAfter == nil {
                logger.debug("\(name(of: sender)) is leaving after \(goodbye.resultsSent) results")
            }
            worker.goodbyeAfter = goodbye.resultsSent
            worker.lastSeen = now
            workers[sender] = worker
            // It takes no more work; what it still holds is sent elsewhere once it is released.
            peers.removeAll(ofWorker: sender)
            releaseIfComplete(sender)
        case .eventRequests(_, let requests):
            var changed = false
            for request in requests {
                let verb = request.operation == .set ? "set" : "cleared"
                guard PoolEvents.isValidName(request.name), events.table.apply(request) else {
                    let who = name(of: sender)
                    rejected.warning(
                        logger, "refused to have an event \(verb) by \(who): too many events or a bad name")
                    continue
                }
                changed = true
                logger.info("event '\(request.name)' \(verb) by \(name(of: sender))")
            }
            return changed
        case .workerLost(let lostID, let loss):
            let how = loss.signalled ? "signal \(loss.detail)" : "exit code \(loss.detail)"
            let reason =
                loss.reason == .timeLimit
                ? "its task \(loss.culprit) exceeded the time limit" : "it died with \(how)"
            workerLost(lostID, reason: reason, loss: loss, lastSign: now)
        }
        return false
    }

    private mutating func finish(_ record: ResultRecord, from sender: UInt32, worker: inout KnownWorker) {
        guard let lease = leases.removeValue(forKey: record.id) else {
            duplicates += 1
            logger.debug("dropped a result for task \(record.id), which already ended")
            return
        }
        if let key = lease.peer {
            peers.adjust(key, outstanding: -1)
            if key.worker == sender { peers.observe(key, runMicroseconds: record.runMicroseconds) }
        }
        if lease.state == .queued, let index = retry.firstIndex(of: record.id) { retry.remove(at: index) }
        if record.status == .ok {
            worker.tasksDone += 1
        } else {
            worker.tasksFailed += 1
        }
        end(
            TaskOutcome(
                id: record.id, name: lease.name, status: record.status, payload: record.payload,
                runMicroseconds: record.runMicroseconds, worker: worker.info, digest: lease.digest))
    }

    // MARK: Losing workers and tasks

    /// A worker process is gone: its running tasks are charged an attempt (failing after the
    /// last), everything else it held is sent again.
    private mutating func workerLost(
        _ id: UInt32, reason: String, loss: WorkerLoss?, lastSign: ContinuousClock.Instant
    ) {
        guard var worker = workers[id], !worker.lost, !worker.released else { return }
        worker.lost = true
        worker.dead = loss != nil
        workers[id] = worker
        peers.removeAll(ofWorker: id)
        // The process's own report names attempts exactly; a silent death has only the last heartbeat.
        let running: Set<UInt64> =
            loss.map { Set($0.running.filter { self.leases[$0.id]?.attempt == $0.attempt }.map(\.id)) }
            ?? Set(worker.heartbeat?.held.filter(\.running).map(\.id) ?? [])
        let culprit = loss?.reason == .timeLimit ? loss?.culprit : nil
        var charged = 0
        for taskID in running.sorted() {
            guard var lease = leases[taskID], lease.peer?.worker == id else { continue }
            // The other tasks running beside an overrun one are innocent.
            if let culprit, culprit != taskID { continue }
            charged += 1
            lease.deaths += 1
            leases[taskID] = lease
            guard lease.deaths >= configuration.maxAttempts else { continue }
            leases[taskID] = nil
            let message: String
            let status: ResultStatus
            if culprit == taskID {
                status = .timeLimit
                message =
                    "time limit of \(Double(lease.timeLimitMilliseconds) / 1000) s exceeded "
                    + "(\(lease.deaths) of \(configuration.maxAttempts) attempts)"
            } else {
                status = .workerDied
                message =
                    "the worker process died while running this task, \(lease.deaths) times "
                    + "(last: \(reason)); giving up after \(configuration.maxAttempts) attempts"
            }
            logger.error("task \(taskID) (\(lease.name)) failed: \(message)")
            end(
                TaskOutcome(
                    id: taskID, name: lease.name, status: status, payload: Array(message.utf8), runMicroseconds: 0,
                    worker: worker.info, digest: lease.digest))
        }
        let again = requeue(where: { $0.peer?.worker == id }, since: lastSign)
        logger.warning("\(name(of: id)) lost: \(reason); \(again) tasks sent again, \(charged) charged an attempt")
    }

    /// A worker presumed dead speaks again (a cut link came back before its connections timed
    /// out): its threads take work again. What it held was already sent elsewhere; whichever
    /// result arrives first counts.
    private mutating func revive(_ id: UInt32) {
        guard var worker = workers[id], worker.lost, !worker.dead, !worker.released, worker.goodbyeAfter == nil
        else { return }
        worker.lost = false
        worker.lastSeen = .now
        workers[id] = worker
        for thread in worker.threads { peers.add(PeerKey(worker: id, thread: thread)) }
        logger.info("\(name(of: id)) is back; it takes work again")
    }

    /// Puts matching leases back in the retry queue; returns how many.
    @discardableResult
    private mutating func requeue(where matches: (Lease) -> Bool, since lastSign: ContinuousClock.Instant) -> Int {
        var ids: [UInt64] = []
        for (id, lease) in leases where lease.state != .queued && matches(lease) { ids.append(id) }
        ids.sort()
        for id in ids { requeue(id, since: lastSign) }
        return ids.count
    }

    /// Puts one dispatched or acknowledged task back in the retry queue, returning its credit.
    private mutating func requeue(_ id: UInt64, since lastSign: ContinuousClock.Instant) {
        guard let slot = leases.index(forKey: id), leases.values[slot].state != .queued else { return }
        if let key = leases.values[slot].peer { peers.adjust(key, outstanding: -1) }
        leases.values[slot].state = .queued
        leases.values[slot].peer = nil
        leases.values[slot].lostSince = lastSign
        retry.append(id)
    }

    /// Every tick: workers whose heartbeats stopped are lost; unacknowledged tasks past the ack
    /// timeout are sent again.
    mutating func checkLeases(now: ContinuousClock.Instant) {
        let silentLimit = Duration.milliseconds(configuration.workerTimeoutMilliseconds)
        for (id, worker) in workers where !worker.lost && !worker.released && now - worker.lastSeen > silentLimit {
            let holds = leases.values.contains { $0.peer?.worker == id }
            guard holds || !peers.keys(ofWorker: id).isEmpty else { continue }
            workerLost(
                id, reason: "no heartbeat for \(silentLimit)", loss: nil, lastSign: worker.lastSeen)
        }
        // One pass over the leases. Acknowledged tasks that three heartbeats since no longer list,
        // and whose result never came, were lost on the way (a dropped connection, a refused
        // message); unacknowledged ones past the ack timeout were lost before they arrived.
        let ackLimit = Duration.milliseconds(configuration.ackTimeoutMilliseconds)
        var vanished: [UInt64] = []
        var overdue: [(id: UInt64, since: ContinuousClock.Instant)] = []
        for (id, lease) in leases {
            switch lease.state {
            case .started:
                guard let key = lease.peer, let worker = workers[key.worker], !worker.lost else { continue }
                if worker.heartbeats >= lease.acknowledgedAtHeartbeat + 3 && !worker.held.contains(id) {
                    vanished.append(id)
                }
            case .dispatched:
                if now - lease.dispatchedAt > ackLimit { overdue.append((id, lease.dispatchedAt)) }
            case .queued:
                continue
            }
        }
        for id in vanished.sorted() {
            ackTimeouts.warning(logger, "task \(id) left its worker without a result arriving; sending it again")
            requeue(id, since: now)
        }
        for (id, since) in overdue.sorted(by: { $0.id < $1.id }) {
            ackTimeouts.warning(logger, "task \(id) was not acknowledged within \(ackLimit); sending it again")
            requeue(id, since: since)
        }
    }

    // MARK: Leaving

    /// A leaving worker is released once every result it sent has arrived; what it still held
    /// (queued but never started) is sent to others.
    private mutating func releaseIfComplete(_ id: UInt32) {
        guard var worker = workers[id], let expected = worker.goodbyeAfter, worker.resultsReceived >= expected
        else { return }
        if !worker.released {
            logger.info("\(name(of: id)) left after \(worker.tasksDone + worker.tasksFailed) tasks")
            worker.released = true
            workers[id] = worker
            let again = requeue(where: { $0.peer?.worker == id }, since: .now)
            if again > 0 { logger.info("\(again) tasks \(name(of: id)) had not started are sent to other workers") }
        }
        releasable.append(id)
    }

    private func name(of id: UInt32) -> String { workers[id]?.info?.name ?? "worker \(id)" }

    /// Introduced workers heard from recently that have not been released.
    func liveWorkersNotReleased(now: ContinuousClock.Instant) -> [String] {
        workers.filter {
            $0.value.info != nil && !$0.value.released && !$0.value.lost
                && now - $0.value.lastSeen < .milliseconds(configuration.workerTimeoutMilliseconds)
        }
        .map { $0.value.info.map { "\($0.name)@\($0.host)" } ?? "worker \($0.key)" }
        .sorted()
    }

    func allLiveWorkersReleased(now: ContinuousClock.Instant) -> Bool {
        liveWorkersNotReleased(now: now).isEmpty
    }

    // MARK: Reporting

    func progress() -> RunProgress {
        RunProgress(
            submitted: submitted, succeeded: succeeded, failed: failed, inFlight: leases.count,
            workers: workers.values.filter { !$0.released && !$0.lost && $0.info != nil }.count,
            inputFinished: inputCancelled || feed.isDrained, elapsedSeconds: seconds(started.duration(to: .now)))
    }

    func workerSummaries() -> [WorkerSummary] {
        workers.values.compactMap { worker in
            guard let info = worker.info else { return nil }
            return WorkerSummary(
                name: info.name, host: info.host, pid: info.pid, tasksDone: worker.tasksDone,
                tasksFailed: worker.tasksFailed, restarts: worker.heartbeat?.restarts ?? 0,
                state: worker.lost ? "lost" : worker.released ? "left" : "running")
        }
        .sorted { ($0.host, $0.name, $0.pid) < ($1.host, $1.name, $1.pid) }
    }

    func summary(notReleased: [String]) -> RunSummary {
        var perWorker: [String: UInt64] = [:]
        for (id, worker) in workers where worker.tasksDone + worker.tasksFailed > 0 {
            let key = worker.info.map { "\($0.name)@\($0.host)" } ?? "worker \(id)"
            perWorker[key, default: 0] += worker.tasksDone + worker.tasksFailed
        }
        return RunSummary(
            tasks: submitted, succeeded: succeeded, failed: failed, wallSeconds: progress().elapsedSeconds,
            rejectedMessages: rejected.count, duplicateResults: duplicates, perWorker: perWorker,
            workersNotReleased: notReleased, workers: workerSummaries(), redeliveries: redeliveries,
            resumed: feed.resumed, worstRedeliverySeconds: seconds(worstRedelivery))
    }

    private func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
