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
    ///   - onResult: called on this thread once per task, in the order tasks end (with a
    ///     journal, once the outcome is durable).
    ///   - onProgress: called on this thread every tick.
    ///   - onWorkers: called on this thread after ``reportWorkers()``.
    public func run(
        source: TaskSource,
        onBound: (PoolEndpoints) throws -> Void = { _ in },
        onResult: @escaping (TaskOutcome) -> Void,
        onProgress: ((RunProgress) -> Void)? = nil,
        onWorkers: (([WorkerSummary]) -> Void)? = nil
    ) throws -> RunSummary {
        let journal = try configuration.journalPath.map { try Journal(path: $0) }
        if let journal, !journal.finished.isEmpty {
            logger.info("journal \(journal.path) holds \(journal.finished.count) finished tasks; they are skipped")
        }
        let sockets = try ProducerSockets(configuration: configuration, logger: logger)
        logger.info("producer bound \(sockets.listening)")
        try onBound(sockets.bound)
        let feed = TaskFeed(capacity: 4_096, wakeup: wakeup)
        feed.start(source)
        defer { feed.cancel() }
        var loop = ProducerRunLoop(
            producer: self, sockets: sockets, feed: feed,
            sink: OutcomeSink(journal: journal, report: onResult), onProgress: onProgress, onWorkers: onWorkers)
        return try loop.run()
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

/// Where outcomes go once the core has decided them: the journal first (durable, in batches),
/// then the caller's report. Without a journal, straight to the report.
struct OutcomeSink {
    let journal: Journal?
    let report: (TaskOutcome) -> Void
    /// Outcomes waiting for the journal's next commit before they are reported.
    private var unreported: [TaskOutcome] = []
    private var firstUnreportedAt: PoolTime?
    private(set) var resumed: UInt64 = 0

    init(journal: Journal?, report: @escaping (TaskOutcome) -> Void) {
        self.journal = journal
        self.report = report
    }

    var hasUnreported: Bool { !unreported.isEmpty }

    /// Whether the journal already holds the entry's outcome (a resumed run skips it).
    mutating func alreadyDone(_ entry: TaskFeed.Entry) -> Bool {
        guard journal?.finished.contains(entry.id) == true else { return false }
        resumed += 1
        return true
    }

    mutating func take(_ outcomes: [TaskOutcome], now: PoolTime) {
        guard let journal else {
            for outcome in outcomes { report(outcome) }
            return
        }
        for outcome in outcomes {
            // A cancelled task did not really end: a resumed run should try it again.
            guard outcome.status != .cancelled else {
                report(outcome)
                continue
            }
            journal.append(outcome)
            if unreported.isEmpty { firstUnreportedAt = now }
            unreported.append(outcome)
        }
    }

    /// Reports journaled outcomes once they are durable: every 20 ms or 1,024 outcomes.
    mutating func commit(now: PoolTime, force: Bool = false) throws {
        guard let journal, let since = firstUnreportedAt else { return }
        guard force || unreported.count >= 1_024 || now.since(since) >= .milliseconds(20) else { return }
        try journal.commit()
        for outcome in unreported { report(outcome) }
        unreported.removeAll(keepingCapacity: true)
        firstUnreportedAt = nil
    }
}
