import Foundation
import Logging
import Synchronization
import ZeroMQ

/// The pool's producer: binds the three sockets, streams tasks to worker threads within each
/// one's credit, collects each task's end exactly once (sending again what a lost worker held),
/// broadcasts events, and sends workers home at the end (the `JoinableQueue.join()` plus poison
/// pills of the lecture, without the pills).
///
/// The tasks socket is a ROUTER, not the PUSH of the first design: PUSH deals tasks round robin
/// to every connected worker whatever it holds, so a worker stuck on a long task hoards work
/// while others idle. With ROUTER the producer picks a worker thread that has credit.
///
/// ``run(source:onBound:onResult:onProgress:)`` makes every ZeroMQ call on the thread that
/// calls it; ``events`` and ``cancel()`` are safe from any thread.
public final class Producer: Sendable {
    public let configuration: ProducerConfiguration
    /// The pool's events. Setting one here broadcasts it to every worker.
    public let events: PoolEvents
    private let logger: Logger
    private let wakeup = Wakeup()
    private let flags = Mutex(Flags())

    private struct Flags {
        var eventsChanged = false
        var cancelled = false
        var workersRequested = false
    }

    public init(configuration: ProducerConfiguration = .init(), logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.epoch = UInt32.random(in: 1...UInt32.max)
        let box = WakeBox()
        self.events = PoolEvents(forward: { _ in box.notify?() })
        events.table.setEpoch(epoch)
        box.notify = { [weak self] in self?.noteEventsChanged() }
    }

    /// This run's id, stamped on every message so workers and results of other runs are told apart.
    public let epoch: UInt32

    /// `@unchecked Sendable`: written once in `init`, read-only afterwards.
    private final class WakeBox: @unchecked Sendable {
        var notify: (@Sendable () -> Void)?
    }

    private func noteEventsChanged() {
        flags.withLock { $0.eventsChanged = true }
        wakeup.signal()
    }

    /// Stops reading input; tasks already dispatched are still awaited.
    public func cancel() {
        flags.withLock { $0.cancelled = true }
        wakeup.signal()
    }

    /// Asks for the per-worker summary now (delivered to `onWorkers` on the producer's thread).
    public func reportWorkers() {
        flags.withLock { $0.workersRequested = true }
        wakeup.signal()
    }

    /// Runs the whole job on the calling thread and returns when every task has ended and the
    /// workers have left (or the goodbye timeout passed).
    ///
    /// - Parameters:
    ///   - onBound: called once the sockets are bound, with addresses a local worker can
    ///     connect to (wildcards and port 0 resolved); start local workers here.
    ///   - onResult: called once per task, in the order tasks end, on a thread of the
    ///     producer's own (not this one; with a journal, once the outcome is durable).
    ///   - onProgress: called on this thread every tick.
    ///   - onWorkers: called on this thread after ``reportWorkers()``.
    public func run(
        source: TaskSource,
        onBound: (PoolEndpoints) throws -> Void = { _ in },
        onResult: @escaping @Sendable (TaskOutcome) -> Void,
        onProgress: ((RunProgress) -> Void)? = nil,
        onWorkers: (([WorkerSummary]) -> Void)? = nil
    ) throws -> RunSummary {
        // Journal hook: opening it reads and checks the file; the feed filters the input.
        var journal: Journal?
        if let path = configuration.journalPath {
            journal = try Journal(
                path: path, mode: configuration.journalResumeMode, ignoreDamage: configuration.journalIgnoresDamage)
        }
        if let journal { logJournal(journal) }
        let feed = TaskFeed(
            capacity: 4_096, wakeup: wakeup,
            resume: journal.map { ResumeFilter(index: $0.index, mode: configuration.journalResumeMode) })
        let checkpoint: (@Sendable () -> InputCheckpoint?)? = journal == nil ? nil : { @Sendable in feed.checkpoint() }
        let pipeline = OutcomePipeline(journal: journal, checkpoint: checkpoint, report: onResult)
        defer { try? pipeline.finish() }
        // Journal hook: the input the journal covers is checked before anything is bound or
        // sent; a changed input ends the run here, before any worker is started.
        feed.start(source)
        defer { feed.cancel() }
        if let mismatch = feed.waitUntilChecked(cancelled: { flags.withLock { $0.cancelled } }) { throw mismatch }
        let context = try Context()
        // Bound before the sockets it guards, so no connection slips in unchecked.
        let authenticator = try configuration.curve.map { try startAuthenticator(context: context, curve: $0) }
        defer { authenticator?.stop() }
        let tasks = try Socket(context, .router)
        try configuration.curve?.apply(to: tasks)
        try tasks.setRouterMandatory(true)
        // Credit, not the high-water mark, bounds what each worker thread holds.
        try tasks.setSendHighWaterMark(0)
        try tasks.setMaxMessageSize(Int64(configuration.maxMessageSize))
        try tasks.bind(configuration.endpoints.tasks)
        let results = try Socket(context, .pull)
        try configuration.curve?.apply(to: results)
        try results.setMaxMessageSize(Int64(configuration.maxMessageSize))
        try results.setReceiveHighWaterMark(0)
        try results.bind(configuration.endpoints.results)
        let publisher = try Socket(context, .xpub)
        try configuration.curve?.apply(to: publisher)
        try publisher.setXPubVerbose(true)
        try publisher.setSendHighWaterMark(10_000)
        try publisher.bind(configuration.endpoints.events)
        // Clients that fail the handshake show up here: a plaintext worker against CURVE, or the
        // reverse. A worker connects to events and results first (tasks only after both work).
        let securityMonitors = try [(results, "results"), (publisher, "events")].map { socket, name in
            let endpoint = "inproc://producer-\(name)-monitor"
            try socket.startMonitor(endpoint, events: .handshakeFailed)
            return try SocketMonitor(context, endpoint: endpoint)
        }

        let listening = PoolEndpoints(
            tasks: try tasks.lastEndpoint, results: try results.lastEndpoint, events: try publisher.lastEndpoint)
        let bound = PoolEndpoints(
            tasks: PoolEndpoints.localConnectAddress(forBound: listening.tasks),
            results: PoolEndpoints.localConnectAddress(forBound: listening.results),
            events: PoolEndpoints.localConnectAddress(forBound: listening.events))
        logger.info("producer bound \(listening)")
        try onBound(bound)

        var loop = ProducerLoop(
            configuration: configuration, logger: logger, events: events,
            feed: feed, epoch: epoch, pipeline: pipeline)

        var poller = Poller()
        let tasksIndex = poller.add(tasks, .readable)
        let resultsIndex = poller.add(results, .readable)
        let publisherIndex = poller.add(publisher, .readable)
        let wakeIndex = poller.add(fileDescriptor: wakeup.fileDescriptor, .readable)
        let securityIndices = securityMonitors.map { poller.add($0.socket, .readable) }
        var handshakeFailures = RateLimitedLog()
        let message = Message()
        let tick = Duration.milliseconds(configuration.tickMilliseconds)
        var lastTick = ContinuousClock.now
        var goodbyeDeadline: ContinuousClock.Instant?
        var cancelDeadline: ContinuousClock.Instant?

        while true {
            try dispatch(&loop, on: tasks)
            try poller.poll(timeoutMilliseconds: configuration.tickMilliseconds)
            if poller.events(at: wakeIndex).contains(.readable) { wakeup.drain() }
            let flagsNow = flags.withLock { flags -> Flags in
                defer {
                    flags.eventsChanged = false
                    flags.workersRequested = false
                }
                return flags
            }
            if flagsNow.cancelled && !loop.inputCancelled {
                loop.cancelInput()
                cancelDeadline = .now + .milliseconds(configuration.cancelGraceMilliseconds)
                logger.warning("input cancelled; waiting for \(loop.leases.count) dispatched tasks")
            }
            if let deadline = cancelDeadline, ContinuousClock.now >= deadline, !loop.leases.isEmpty {
                logger.warning("\(loop.leases.count) tasks did not end in time; reporting them cancelled")
                loop.cancelInFlight(reason: "run cancelled before the task ended")
            }
            if flagsNow.workersRequested { onWorkers?(loop.workerSummaries()) }
            var publishState = flagsNow.eventsChanged

            if poller.events(at: tasksIndex).contains(.readable) {
                while try tasks.receive(into: message, dontWait: true) {
                    let identity = message.bytes
                    guard message.hasMore, try tasks.receive(into: message, dontWait: true) else {
                        loop.rejected.warning(logger, "rejected an empty message on the tasks socket")
                        continue
                    }
                    if try tasks.discardRemainingFrames(of: message) > 0 {
                        loop.rejected.warning(logger, "rejected a message of several frames on the tasks socket")
                        continue
                    }
                    do {
                        let decoded = try message.withUnsafeBytes { bytes throws(WireError) in
                            try WireFormat.decodeTaskChannel(bytes)
                        }
                        loop.ready(identity: identity, message: decoded)
                    } catch {
                        loop.rejected.warning(logger, "rejected a message on the tasks socket: \(error)")
                    }
                }
            }
            if poller.events(at: resultsIndex).contains(.readable) {
                while try results.receive(into: message, dontWait: true) {
                    let extra = try results.discardRemainingFrames(of: message)
                    if extra > 0 {
                        loop.rejected.warning(logger, "rejected a message of \(extra + 1) frames on the results socket")
                        continue
                    }
                    do {
                        let decoded = try message.withUnsafeBytes { bytes throws(WireError) in
                            try WireFormat.decodeWorkerEnvelope(bytes)
                        }
                        if loop.handle(decoded.message, header: decoded.header) { publishState = true }
                    } catch {
                        loop.rejected.warning(logger, "rejected a message on the results socket: \(error)")
                    }
                }
            }
            for (monitor, index) in zip(securityMonitors, securityIndices)
            where poller.events(at: index).contains(.readable) {
                while let event = try monitor.next(dontWait: true) {
                    // A refused key was logged by the ZAP handler, with the key.
                    if let text = handshakeFailureMessage(event) { handshakeFailures.warning(logger, text) }
                }
            }
            if poller.events(at: publisherIndex).contains(.readable) {
                // A subscription: answer with the whole state, so late joiners see events set earlier.
                while try publisher.receive(into: message, dontWait: true) {
                    _ = try publisher.discardRemainingFrames(of: message)
                    if message.withUnsafeBytes({ $0.first == 1 }) { publishState = true }
                }
            }
            let now = ContinuousClock.now
            if now - lastTick >= tick {
                lastTick = now
                publishState = true
                loop.checkLeases(now: now)
                onProgress?(loop.progress())
            }
            // Journal hook: outcomes leave this thread once per turn; a journal failure ends the run.
            loop.submitEnded()
            if let failure = pipeline.failure { throw failure }
            if publishState {
                try publisher.send(WireFormat.encode(stateSnapshot()), dontWait: true)
            }
            if !loop.releasable.isEmpty {
                try publisher.send(WireFormat.encode(releasedWorkers: loop.releasable, epoch: epoch), dontWait: true)
                loop.releasable.removeAll()
            }

            if let deadline = goodbyeDeadline {
                if loop.allLiveWorkersReleased(now: now) { break }
                if now >= deadline {
                    logger.warning("workers did not all leave within the goodbye timeout")
                    break
                }
            } else if loop.isComplete {
                guard configuration.shutdownWorkersAtEnd else { break }
                logger.info("all \(loop.submitted) tasks ended; broadcasting shutdown")
                events.table.change { _, shutdown in shutdown = true }
                try publisher.send(WireFormat.encode(stateSnapshot()), dontWait: true)
                goodbyeDeadline = now + .milliseconds(configuration.goodbyeTimeoutMilliseconds)
                if loop.allLiveWorkersReleased(now: now) { break }
            }
        }
        // Journal hook: everything durable and reported; an input that did not match the journal
        // (nothing was sent) is the run's error.
        loop.submitEnded()
        try pipeline.finish()
        if let failure = feed.failure { throw failure }
        logger.info("process shutting down")
        return loop.summary(notReleased: loop.liveWorkersNotReleased(now: ContinuousClock.now))
    }

    private func logJournal(_ journal: Journal) {
        let index = journal.index
        if index.tornTail { logger.warning("journal \(journal.path): its last line was torn (a crash); cut off") }
        for line in index.damagedLines.prefix(10) {
            logger.warning("journal \(journal.path) line \(line) is damaged; ignored (--journal-ignore-damage)")
        }
        guard index.recordCount > 0 else { return }
        logger.info(
            "journal \(journal.path) holds \(index.recordCount) finished tasks; resuming \(configuration.journalResumeMode)"
        )
    }

    /// Starts the ZAP handler that admits only allowlisted worker keys, logging each refusal.
    private func startAuthenticator(context: Context, curve: CurveServerSettings) throws -> ZAPAuthenticator {
        let refusals = Mutex(Refusals())
        let logger = logger
        let allowed = curve.allowedClients
        if let allowed {
            logger.info("CURVE on; \(allowed.count) worker keys allowed")
        } else {
            logger.warning("CURVE on; any worker that knows this producer's public key is allowed (--curve-allow-any)")
        }
        return try ZAPAuthenticator(context: context) { request in
            if let key = request.clientKey, allowed?.contains(key) ?? true { return true }
            let what =
                request.clientKey.map {
                    "refused worker key \($0.z85) from \(request.address): not in --curve-allow; it gets no task and can send no result"
                } ?? "refused a \(request.mechanism) connection from \(request.address): not CURVE"
            refusals.withLock { $0.note(what, logger: logger) }
            return false
        }
    }

    /// Logs each distinct refusal once (a refused worker retries on every socket, every few
    /// seconds), and a count now and then.
    private struct Refusals {
        var seen = Set<String>()
        var count: UInt64 = 0

        mutating func note(_ what: String, logger: Logger) {
            count += 1
            if seen.count < 10_000, seen.insert(what).inserted {
                logger.warning("\(what)")
            } else if count % 1_000 == 0 {
                logger.warning("\(count) connections refused so far")
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
        return "a connection failed its handshake (\(event.kind.rawValue), \(event.value))"
    }

    /// The event state as broadcast: with this producer's message limit, which workers respect.
    private func stateSnapshot() -> EventSnapshot {
        var snapshot = events.table.snapshot()
        snapshot.maxMessageSize = UInt32(clamping: configuration.maxMessageSize)
        return snapshot
    }

    /// Sends tasks to every worker thread with credit, until none has credit or no task waits.
    private func dispatch(_ loop: inout ProducerLoop, on tasks: Socket) throws {
        while let outgoing = loop.nextMessage() {
            do {
                guard try outgoing.identity.withUnsafeBytes({ try tasks.send($0, more: true, dontWait: true) }) else {
                    loop.unsent(outgoing, peerGone: false)
                    return
                }
                try tasks.send(outgoing.bytes)
            } catch let error as ZeroMQError where error.code == .hostUnreachable {
                // The thread disconnected since its last message; a new `ready` brings it back.
                loop.unsent(outgoing, peerGone: true)
            }
        }
    }

    /// Runs ``run(source:onBound:onResult:onProgress:)`` on a dedicated thread, keeping Swift's
    /// cooperative pool free.
    public func run(
        source: TaskSource,
        onBound: @escaping @Sendable (PoolEndpoints) throws -> Void = { _ in },
        onResult: @escaping @Sendable (TaskOutcome) -> Void
    ) async throws -> RunSummary {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(with: Result { try self.run(source: source, onBound: onBound, onResult: onResult) })
            }
            thread.name = "producer-io"
            thread.start()
        }
    }
}
