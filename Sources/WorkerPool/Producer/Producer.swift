import Foundation
import Logging
import Synchronization
import ZeroMQ

/// The pool's producer: binds the three sockets, streams tasks to worker threads within each
/// one's credit, collects each task's end exactly once (sending again what a lost worker held),
/// broadcasts events, and sends workers home at the end (the `JoinableQueue.join()` plus poison
/// pills of the lecture, without the pills).
///
/// The decisions are ``ProducerCore``'s, which does no I/O; this type owns the sockets and the
/// threads around it: ``run(source:onBound:onResult:onProgress:onWorkers:)`` makes every
/// ZeroMQ call on the thread that calls it; ``events`` and ``cancel()`` are safe from any thread.
public final class Producer: Sendable {
    public let configuration: ProducerConfiguration
    /// The pool's events. Setting one here broadcasts it to every worker.
    public let events: PoolEvents
    let logger: Logger
    let wakeup = Wakeup()
    private let flags = Mutex(Flags())

    struct Flags {
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

    /// The requests made from other threads since the last call.
    func takeFlags() -> Flags {
        flags.withLock { flags -> Flags in
            defer {
                flags.eventsChanged = false
                flags.workersRequested = false
            }
            return flags
        }
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
        // Opening the journal reads and checks it; the feed filters the input against it.
        let journal = try configuration.journalPath.map {
            try Journal(
                path: $0, mode: configuration.journalResumeMode, ignoreDamage: configuration.journalIgnoresDamage)
        }
        if let journal { logJournal(journal) }
        let poolLog = try configuration.poolLogPath.map { path throws(PoolLogError) in
            try PoolLog(path: path, logger: logger)
        }
        defer { poolLog?.finish() }
        let feed = TaskFeed(
            capacity: 4_096, wakeup: wakeup,
            resume: journal.map { ResumeFilter(index: $0.index, mode: configuration.journalResumeMode) })
        let checkpoint: (@Sendable () -> InputCheckpoint?)? = journal == nil ? nil : { @Sendable in feed.checkpoint() }
        let pipeline = OutcomePipeline(journal: journal, checkpoint: checkpoint, report: onResult)
        defer { try? pipeline.finish() }
        // The input the journal covers is checked before anything is bound or sent: a changed
        // input ends the run here, before any worker is started.
        feed.start(source)
        defer { feed.cancel() }
        if let mismatch = feed.waitUntilChecked(cancelled: { flags.withLock { $0.cancelled } }) { throw mismatch }
        let sockets = try ProducerSockets(configuration: configuration, logger: logger)
        logger.info("producer bound \(sockets.listening)")
        try onBound(sockets.bound)
        var loop = ProducerRunLoop(
            producer: self, sockets: sockets, feed: feed, pipeline: pipeline, poolLog: poolLog,
            onProgress: onProgress, onWorkers: onWorkers)
        return try loop.run()
    }

    private func logJournal(_ journal: Journal) {
        let index = journal.index
        if !journal.writesDirect {
            logger.debug("journal \(journal.path): its file system refuses O_DIRECT; writing through the page cache")
        }
        if index.tornTail { logger.warning("journal \(journal.path): its last line was torn (a crash); cut off") }
        for line in index.damagedLines.prefix(10) {
            logger.warning("journal \(journal.path) line \(line) is damaged; ignored (--journal-ignore-damage)")
        }
        guard index.recordCount > 0 else { return }
        logger.info(
            "journal \(journal.path) holds \(index.recordCount) finished tasks; resuming \(configuration.journalResumeMode)"
        )
    }

    /// Runs ``run(source:onBound:onResult:onProgress:onWorkers:)`` on a dedicated thread, keeping
    /// Swift's cooperative pool free.
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
