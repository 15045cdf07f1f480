import Foundation

/// Takes finished outcomes off the producer's dispatch thread: a thread of its own appends them
/// to the journal, writes and syncs it in batches (every `interval` or `batchLimit` outcomes,
/// whichever comes first), and only then reports each, in the order submitted. Without a
/// journal it reports them as they come. Cancelled outcomes are reported but never journaled:
/// a resumed run does those tasks.
///
/// A failed write or sync is kept in ``failure``: from then on nothing is journaled or
/// reported (it would not be durable), and the dispatch thread stops the run with the error.
///
/// `@unchecked Sendable`: the queue and the failure are touched only with `condition` locked;
/// the journal and `report` only on the pipeline's own thread.
final class OutcomePipeline: @unchecked Sendable {
    private let condition = NSCondition()
    /// Outcomes as submitted, a batch at a time: handed over and kept whole, never copied one by
    /// one (a journal that falls behind would otherwise have the dispatch thread copy them).
    private var queue: [[TaskOutcome]] = []
    private var finishing = false
    private var done = false
    private var stored: JournalError?

    private let journal: Journal?
    private let checkpoint: (() -> InputCheckpoint?)?
    private let report: @Sendable (TaskOutcome) -> Void
    private let interval: Duration
    private let batchLimit: Int
    private var thread: Thread?

    /// - Parameters:
    ///   - journal: where outcomes are made durable before they are reported; nil for none.
    ///   - checkpoint: the input read so far, recorded with each commit (``TaskFeed/checkpoint()``).
    ///   - report: called on the pipeline's thread, once per outcome, in order.
    init(
        journal: Journal?, checkpoint: (@Sendable () -> InputCheckpoint?)? = nil,
        interval: Duration = .milliseconds(20),
        batchLimit: Int = 16_384, report: @escaping @Sendable (TaskOutcome) -> Void
    ) {
        self.journal = journal
        self.checkpoint = checkpoint
        self.interval = interval
        self.batchLimit = max(batchLimit, 1)
        self.report = report
        let thread = Thread { [self] in run() }
        thread.name = journal == nil ? "outcomes" : "journal"
        self.thread = thread
        thread.start()
    }

    /// Hands over outcomes in the order they ended. Takes one lock; never waits for I/O.
    func submit(_ outcomes: consuming [TaskOutcome]) {
        guard !outcomes.isEmpty else { return }
        condition.lock()
        let wasEmpty = queue.isEmpty
        queue.append(consume outcomes)
        condition.unlock()
        if wasEmpty { condition.signal() }
    }

    /// The journal's write or sync error, once one happened. Any thread.
    var failure: JournalError? {
        condition.lock()
        defer { condition.unlock() }
        return stored
    }

    /// Commits and reports everything submitted, then ends the thread.
    ///
    /// - Throws: the journal's write or sync error, if one happened.
    func finish() throws(JournalError) {
        condition.lock()
        finishing = true
        condition.broadcast()
        while !done { condition.wait() }
        let failure = stored
        condition.unlock()
        if let failure { throw failure }
    }

    private func run() {
        var waiting: [[TaskOutcome]] = []
        var waitingCount = 0
        var firstWaitingAt: ContinuousClock.Instant?
        var taken: [[TaskOutcome]] = []
        var lastCheckpoint: InputCheckpoint?
        var failed = false
        while true {
            condition.lock()
            while queue.isEmpty && !finishing {
                guard let first = firstWaitingAt else {
                    condition.wait()
                    continue
                }
                // Outcomes wait for their commit: sleep only until it is due.
                let waited = first.duration(to: .now)
                if waited >= interval { break }
                let (seconds, attoseconds) = (interval - waited).components
                _ = condition.wait(until: Date(timeIntervalSinceNow: Double(seconds) + Double(attoseconds) / 1e18))
            }
            swap(&taken, &queue)
            let ending = finishing && taken.isEmpty
            condition.unlock()

            guard let journal else {
                for index in taken.indices { Self.report(&taken[index], report) }
                taken.removeAll(keepingCapacity: true)
                if ending { break }
                continue
            }
            if !failed {
                for batch in taken {
                    journal.append(contentsOf: batch)
                    waitingCount += batch.count
                }
                if waiting.isEmpty && !taken.isEmpty { firstWaitingAt = .now }
                waiting.append(contentsOf: taken)
            }
            taken.removeAll(keepingCapacity: true)
            let due =
                ending || waitingCount >= batchLimit
                || firstWaitingAt.map { $0.duration(to: .now) >= interval } ?? false
            if !failed && due && !waiting.isEmpty {
                do {
                    if journal.hasPending, let now = checkpoint?(), now != lastCheckpoint {
                        journal.append(now)
                        lastCheckpoint = now
                    }
                    try journal.commit()
                    for index in waiting.indices { Self.report(&waiting[index], report) }
                } catch {
                    failed = true
                    condition.lock()
                    stored = error
                    condition.unlock()
                }
                waiting.removeAll(keepingCapacity: true)
                waitingCount = 0
                firstWaitingAt = nil
            }
            if ending { break }
        }
        if let journal, !failed {
            // The input's last checkpoint (at its end, when it ended): a resumed run checks it all.
            if let now = checkpoint?(), now != lastCheckpoint {
                journal.append(now)
                do { try journal.commit() } catch {
                    condition.lock()
                    stored = error
                    condition.unlock()
                }
            }
        }
        condition.lock()
        done = true
        condition.broadcast()
        condition.unlock()
    }

    /// `body` for each outcome of `batch`, moved out of it: the batch is done with, and an outcome
    /// read in place was copied before the call (four retains and releases). Each leaves an empty
    /// outcome behind.
    private static func report(_ batch: inout [TaskOutcome], _ body: (TaskOutcome) -> Void) {
        batch.withUnsafeMutableBufferPointer { outcomes in
            for index in outcomes.indices {
                body(outcomes.moveElement(from: index))
                outcomes.initializeElement(
                    at: index, to: TaskOutcome(id: 0, name: "", status: .ok, payloadStorage: [], runMicroseconds: 0))
            }
        }
    }
}
