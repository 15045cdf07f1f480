import Glibc
import Logging
import PoolSystem
import ZeroMQ

/// The producer's I/O loop: turns socket reads into calls on ``ProducerCore`` and the core's
/// outputs into sends, log lines and reports. Every step is one short method; the decisions are
/// all the core's.
struct ProducerRunLoop {
    let producer: Producer
    let sockets: ProducerSockets
    let feed: TaskFeed
    /// Journals (with its fsyncs) and reports outcomes on a thread of its own.
    let pipeline: OutcomePipeline
    /// Writes what happens to the pool on a thread of its own, when there is a pool log.
    let poolLog: PoolLog?
    let onProgress: ((RunProgress) -> Void)?
    let onWorkers: (([WorkerSummary]) -> Void)?

    private var core: ProducerCore
    private var poller = Poller()
    private let indices: (tasks: Int, results: Int, publisher: Int, wake: Int, monitors: [Int])
    private let message = Message()
    private var writer: WireFormat.MessageWriter
    private var keys = KeyNumbers()
    private var handshakeFailures = RateLimitedLog()
    private var lastTick: PoolTime
    private var goodbyeDeadline: PoolTime?
    private var publishState = false
    /// The events set as last broadcast, to tell the pool log what changed.
    private var setEvents: Set<String> = []
    /// Who asked for each event change applied since the last broadcast.
    private var eventRequesters: [String: String] = [:]
    /// Publishes snapshots of the core's counters, when metrics are on.
    private let metrics: MetricsPublisher<ProducerMetrics>?
    private var bytes = ProducerMetrics.SocketBytes()

    private var configuration: ProducerConfiguration { producer.configuration }
    private var logger: Logger { producer.logger }

    init(
        producer: Producer, sockets: ProducerSockets, feed: TaskFeed, pipeline: OutcomePipeline, poolLog: PoolLog?,
        onProgress: ((RunProgress) -> Void)?, onWorkers: (([WorkerSummary]) -> Void)?
    ) {
        self.producer = producer
        self.sockets = sockets
        self.feed = feed
        self.pipeline = pipeline
        self.poolLog = poolLog
        self.onProgress = onProgress
        self.onWorkers = onWorkers
        let now = PoolTime.now
        core = ProducerCore(configuration: producer.configuration, epoch: producer.epoch, now: now)
        core.record(
            .runStarted(
                PoolEvent.RunStart(
                    epoch: producer.epoch, pid: PoolLog.processID, host: PoolLog.hostName(),
                    endpoints: sockets.listening)),
            now: now)
        lastTick = now
        writer = WireFormat.MessageWriter(kind: .tasks, epoch: producer.epoch, capacity: 1 << 16)
        var poller = Poller()
        indices = (
            poller.add(sockets.tasks, .readable), poller.add(sockets.results, .readable),
            poller.add(sockets.publisher, .readable),
            poller.add(fileDescriptor: producer.wakeup.fileDescriptor, .readable),
            sockets.securityMonitors.map { poller.add($0.socket, .readable) }
        )
        self.poller = poller
        metrics = producer.configuration.publishesMetrics ? MetricsPublisher(threadName: "producer-metrics") : nil
    }

    /// Runs until every task has ended and the workers have left; returns the summary.
    mutating func run() throws -> RunSummary {
        // The last figures are published before the run returns, however it ends.
        defer { metrics?.finish(with: metricsSnapshot()) }
        while true {
            takeInput()
            try dispatch()
            try poller.poll(timeoutMilliseconds: pollTimeoutMilliseconds())
            let now = PoolTime.now
            if poller.events(at: indices.wake).contains(.readable) { producer.wakeup.drain() }
            followRequests(now: now)
            try receiveReadies(now: now)
            try receiveWorkerMessages(now: now)
            try watchHandshakes()
            try answerSubscriptions()
            if now.since(lastTick) >= .milliseconds(configuration.tickMilliseconds) {
                lastTick = now
                publishState = true
                core.tick(now: now)
                onProgress?(core.progress(now: now))
                metrics?.submit(metricsSnapshot())
            }
            try drainOutputs(now: now)
            if try finished(now: now) { break }
        }
        // Everything durable and reported; an input that did not match the journal is the error.
        try pipeline.finish()
        if let failure = feed.failure { throw failure }
        logger.info("process shutting down")
        let end = PoolTime.now
        var summary = core.summary(now: end)
        summary.resumed = feed.resumed
        core.noteRejections(now: end)
        core.record(.runEnded(summary, cancelled: core.inputCancelled), now: end)
        drainPoolEvents()
        return summary
    }

    /// Until the next tick, or sooner when a failed task's backoff ends before it.
    private func pollTimeoutMilliseconds() -> Int {
        let tick = configuration.tickMilliseconds
        guard let due = core.leases.nextRetryDue else { return tick }
        return min(tick, Int((due.since(.now).nanoseconds + 999_999) / 1_000_000))
    }

    /// Moves input from the feed into the core while it wants more.
    private mutating func takeInput() {
        while core.wantsInput {
            guard var batches = feed.take() else {
                if feed.isDrained { core.endInput() }
                return
            }
            let now = PoolTime.now
            for index in batches.indices { core.input(&batches[index], now: now) }
        }
    }

    /// Sends tasks to every worker thread with credit, until none has credit or no task waits.
    private mutating func dispatch() throws {
        let now = PoolTime.now
        while let identity = core.nextDispatch(now: now, into: &writer) {
            let tasks = sockets.tasks
            do {
                guard try identity.withUnsafeBytes({ try tasks.send($0, more: true, dontWait: true) }) else {
                    core.dispatchFailed(peerGone: false)
                    return
                }
                let size = try writer.withFinishedBytes { message -> Int in
                    _ = try tasks.send(message)
                    return message.count
                }
                bytes.tasksSent &+= UInt64(size + identity.count)
            } catch let error as ZeroMQError where error.code == .hostUnreachable {
                // The thread disconnected since its last message; a new `ready` brings it back.
                core.dispatchFailed(peerGone: true)
            }
        }
    }

    /// Cancellation, worker tables and event changes asked for from other threads.
    private mutating func followRequests(now: PoolTime) {
        let flags = producer.takeFlags()
        if flags.cancelled && !core.inputCancelled {
            feed.cancel()
            var unread: [TaskFeed.Entry] = []
            while let batches = feed.take() { unread += batches.joined() }
            core.cancelInput(unread: unread, now: now)
        }
        if flags.workersRequested { onWorkers?(core.workerSummaries()) }
        if flags.eventsChanged { publishState = true }
    }

    /// `ready` messages on the tasks socket: two frames, routing id and message.
    private mutating func receiveReadies(now: PoolTime) throws {
        guard poller.events(at: indices.tasks).contains(.readable) else { return }
        let tasks = sockets.tasks
        while try tasks.receive(into: message, dontWait: true) {
            let identity = message.bytes
            bytes.tasksReceived &+= UInt64(identity.count)
            guard message.hasMore, try tasks.receive(into: message, dontWait: true) else {
                core.rejected.note(.warning, "rejected an empty message on the tasks socket", into: &core.logs)
                continue
            }
            if try tasks.discardRemainingFrames(of: message) > 0 {
                core.rejected.note(
                    .warning, "rejected a message of several frames on the tasks socket", into: &core.logs)
                continue
            }
            bytes.tasksReceived &+= UInt64(message.count)
            let key = keys.number(of: message)
            do {
                let decoded = try message.withUnsafeBytes { bytes throws(WireError) in
                    try WireFormat.decodeTaskChannel(bytes)
                }
                identity.withUnsafeBytes { core.ready(identity: $0, decoded, key: key, now: now) }
            } catch {
                core.rejected.note(.warning, "rejected a message on the tasks socket: \(error)", into: &core.logs)
            }
        }
    }

    /// Everything on the results socket; results are read in place (the hot path).
    private mutating func receiveWorkerMessages(now: PoolTime) throws {
        guard poller.events(at: indices.results).contains(.readable) else { return }
        let results = sockets.results
        while try results.receive(into: message, dontWait: true) {
            bytes.resultsReceived &+= UInt64(message.count)
            let extra = try results.discardRemainingFrames(of: message)
            if extra > 0 {
                core.rejected.note(
                    .warning, "rejected a message of \(extra + 1) frames on the results socket", into: &core.logs)
                continue
            }
            let key = keys.number(of: message)
            message.withUnsafeBytes { core.receive($0, key: key, now: now) }
        }
    }

    /// Failed handshakes: a plaintext worker against CURVE, the reverse, a wrong server key.
    private mutating func watchHandshakes() throws {
        for (monitor, index) in zip(sockets.securityMonitors, indices.monitors)
        where poller.events(at: index).contains(.readable) {
            while let event = try monitor.next(dontWait: true) {
                // A refused key was logged by the ZAP handler, with the key.
                if let text = handshakeFailureMessage(event) { handshakeFailures.warning(logger, text) }
            }
        }
    }

    private func handshakeFailureMessage(_ event: SocketEvent) -> String? {
        if event.isMechanismMismatch {
            return configuration.curve == nil
                ? "a worker using CURVE tried to connect; this producer runs without --curve-key"
                : "a plaintext worker tried to connect; this producer requires CURVE (--curve-key on the worker)"
        }
        if event.isCryptographicError {
            return "a CURVE handshake failed to decrypt: a worker has the wrong --curve-server-key"
        }
        if event.kind == .handshakeFailedAuthentication { return nil }
        let errno = Int32(bitPattern: event.value)
        if configuration.curve != nil, event.kind == .handshakeFailedNoDetail, errno == EPIPE || errno == ECONNRESET {
            // A plaintext worker that read our CURVE greeting first hangs up before we read its
            // own: our write fails, with no detail.
            return "a connection hung up in its handshake (\(Errno(rawValue: errno))): probably a plaintext worker "
                + "tried to connect; this producer requires CURVE (--curve-key on the worker)"
        }
        return "a connection failed its handshake (\(event.kind.rawValue), \(event.value))"
    }

    /// A subscription: answer with the whole state, so late joiners see events set earlier.
    private mutating func answerSubscriptions() throws {
        guard poller.events(at: indices.publisher).contains(.readable) else { return }
        let publisher = sockets.publisher
        while try publisher.receive(into: message, dontWait: true) {
            bytes.eventsReceived &+= UInt64(message.count)
            _ = try publisher.discardRemainingFrames(of: message)
            if message.withUnsafeBytes({ $0.first == 1 }) { publishState = true }
        }
    }

    /// Logs, outcomes, event requests and releases the core produced.
    private mutating func drainOutputs(now: PoolTime) throws {
        for line in core.logs { logger.log(level: line.level, "\(line.message)") }
        core.logs.removeAll(keepingCapacity: true)
        if !core.outcomes.isEmpty {
            // One hand-over per turn; the pipeline journals, syncs and prints them. Handed over
            // whole, so the pipeline holds the only reference and can move each outcome out.
            var ended: [TaskOutcome] = []
            ended.reserveCapacity(core.outcomes.count)
            swap(&ended, &core.outcomes)
            pipeline.submit(ended)
        }
        if let failure = pipeline.failure { throw failure }
        for (request, requester) in core.eventRequests {
            let verb = request.operation == .set ? "set" : "cleared"
            guard PoolEvents.isValidName(request.name), producer.events.table.apply(request) else {
                core.rejected.note(
                    .warning, "refused to have an event \(verb) by \(requester): too many events or a bad name",
                    into: &core.logs)
                continue
            }
            publishState = true
            eventRequesters[request.name] = requester
        }
        core.eventRequests.removeAll()
        if publishState {
            let snapshot = stateSnapshot()
            noteEventChanges(snapshot, now: now)
            try broadcast(WireFormat.encode(snapshot))
            publishState = false
        }
        drainPoolEvents()
        if !core.releasable.isEmpty {
            try broadcast(WireFormat.encode(releasedWorkers: core.releasable, epoch: producer.epoch))
            core.releasable.removeAll()
        }
    }

    /// Events set or cleared since the last broadcast, by a worker's request or by this process.
    private mutating func noteEventChanges(_ snapshot: EventSnapshot, now: PoolTime) {
        let names = Set(snapshot.setEvents)
        for name in names.subtracting(setEvents).sorted() {
            core.record(.eventChanged(name: name, isSet: true, by: eventRequesters[name]), now: now)
        }
        for name in setEvents.subtracting(names).sorted() {
            core.record(.eventChanged(name: name, isSet: false, by: eventRequesters[name]), now: now)
        }
        setEvents = names
        eventRequesters.removeAll()
        for line in core.logs { logger.log(level: line.level, "\(line.message)") }
        core.logs.removeAll(keepingCapacity: true)
    }

    /// Hands the core's pool events to the pool log (they are dropped without one).
    private mutating func drainPoolEvents() {
        guard !core.poolEvents.isEmpty else { return }
        poolLog?.submit(core.poolEvents)
        core.poolEvents.removeAll(keepingCapacity: true)
    }

    /// Sends a message on the events socket, counting its bytes.
    private mutating func broadcast(_ message: [UInt8]) throws {
        _ = try sockets.publisher.send(message, dontWait: true)
        bytes.eventsSent &+= UInt64(message.count)
    }

    /// The core's counters with the sockets' byte counts.
    private func metricsSnapshot() -> ProducerMetrics.Snapshot {
        var snapshot = core.metricsSnapshot()
        snapshot.bytes = bytes
        return snapshot
    }

    /// The event state as broadcast: with this producer's message limit, which workers respect.
    private func stateSnapshot() -> EventSnapshot {
        var snapshot = producer.events.table.snapshot()
        snapshot.maxMessageSize = UInt32(clamping: configuration.maxMessageSize)
        return snapshot
    }

    /// Once every task has ended: broadcast shutdown, then wait for the workers' goodbyes.
    private mutating func finished(now: PoolTime) throws -> Bool {
        if let deadline = goodbyeDeadline {
            if core.allLiveWorkersReleased(now: now) { return true }
            if now >= deadline {
                logger.warning("workers did not all leave within the goodbye timeout")
                return true
            }
            return false
        }
        guard core.isComplete else { return false }
        guard configuration.shutdownWorkersAtEnd else { return true }
        logger.info("all \(core.submitted) tasks ended; broadcasting shutdown")
        producer.events.table.change { _, shutdown in shutdown = true }
        try broadcast(WireFormat.encode(stateSnapshot()))
        goodbyeDeadline = now + .milliseconds(configuration.goodbyeTimeoutMilliseconds)
        return core.allLiveWorkersReleased(now: now)
    }
}
