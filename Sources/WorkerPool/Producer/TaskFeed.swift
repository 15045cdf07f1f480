import Foundation
import Synchronization

/// Carries numbered input from the source's thread to the producer's I/O thread, blocking the
/// source while `capacity` items wait, so memory stays bounded.
///
/// Each item is handed over as soon as it is emitted: the I/O thread takes whatever is ready, so a
/// source that pauses (a pipe, a person typing, a caller that waits for results) never leaves
/// tasks stuck behind a half-filled chunk. Under load the I/O thread takes many items per lock.
///
/// With a journal (a ``ResumeFilter``), the feed also hashes each item on its own thread and does
/// all resume filtering itself: items the journal finished are skipped and counted in
/// ``resumed``; items read while the journal's part of the input is still being checked are
/// held back (at most what the journal left unfinished below its highest id, after a crash the
/// in-flight window) and handed over only once it all matched; a mismatch ends the input with
/// ``failure`` set and nothing handed over. The I/O thread only ever sees entries to run.
///
/// `@unchecked Sendable`: all state is touched only with `condition` locked, but for
/// `resumeFilter`, moved to the feed's thread before it starts, and the atomic `resumedCount`.
final class TaskFeed: @unchecked Sendable {
    struct Entry {
        var id: UInt64
        var item: SourceItem
        /// The item's SHA-256, for the journal; ``TaskDigest/zero`` when the run has none.
        var digest: TaskDigest = .zero
    }

    private let condition = NSCondition()
    private var pending: [Entry] = []
    private var finished = false
    private var cancelled = false
    private var stopped: JournalError?
    /// The journal's part of the input has all been read and matched (or there is none).
    private var checked = false
    private var checkpointWanted = false
    private var latestCheckpoint: InputCheckpoint?
    private let capacity: Int
    private let wakeup: Wakeup
    private let resumeFilter: ResumeFilter?
    private let resumedCount = Atomic<UInt64>(0)

    /// - Parameters:
    ///   - capacity: items read ahead of the producer at most.
    ///   - resume: with a journal, what it holds; nil: items are not hashed (no cost).
    init(capacity: Int, wakeup: Wakeup, resume: ResumeFilter? = nil) {
        self.capacity = max(capacity, 1)
        self.wakeup = wakeup
        self.resumeFilter = resume
        pending.reserveCapacity(min(self.capacity, 256))
    }

    /// Input items skipped because the journal recorded them finished (so far).
    var resumed: UInt64 { resumedCount.load(ordering: .relaxed) }

    /// Why the input was stopped: it does not match the journal. Set before ``isDrained``
    /// turns true; no entry was handed over.
    var failure: JournalError? {
        condition.lock()
        defer { condition.unlock() }
        return stopped
    }

    /// The input read so far, as the journal records it: the latest count and digest the feed's
    /// thread published, and a request for a newer one. Any thread; nil without a journal or
    /// before the first item.
    func checkpoint() -> InputCheckpoint? {
        condition.lock()
        defer { condition.unlock() }
        checkpointWanted = true
        return latestCheckpoint
    }

    /// Runs `source` on a new thread, numbering items from 1.
    func start(_ source: TaskSource) {
        let thread = Thread { [self] in
            var nextID: UInt64 = 1
            // Mutated in place (never copied: its tables shrink as lines match).
            var filter = resumeFilter ?? ResumeFilter()
            let hashing = resumeFilter != nil
            var held: [Entry] = []
            var announced = false
            if !filter.isVerifying { announceChecked(&announced) }
            var stoppedEarly = false
            source.produce { item in
                var entry = Entry(id: nextID, item: item)
                nextID += 1
                guard hashing else { return hand(CollectionOfOne(entry), filter: nil) }
                entry.digest = TaskDigest(of: item)
                switch filter.admit(id: entry.id, digest: entry.digest) {
                case .stop(let code, let reason):
                    stop(JournalError(code, reason))
                    stoppedEarly = true
                    return false
                case .skip:
                    resumedCount.add(1, ordering: .relaxed)
                case .run where filter.isVerifying || !held.isEmpty:
                    held.append(entry)
                case .run:
                    return hand(CollectionOfOne(entry), filter: filter)
                }
                // Until the journal's part of the input has all matched, nothing leaves.
                guard !filter.isVerifying else { return true }
                if !announced { announceChecked(&announced) }
                guard !held.isEmpty else { return true }
                defer { held = [] }
                return hand(held, filter: filter)
            }
            if stoppedEarly { return }
            if hashing, case .stop(let code, let reason) = filter.inputEnded() {
                stop(JournalError(code, reason))
                return
            }
            condition.lock()
            if hashing, filter.count > 0 {
                latestCheckpoint = InputCheckpoint(tasks: filter.count, digest: filter.chain.digest)
            }
            finished = true
            condition.unlock()
            wakeup.signal()
        }
        thread.name = "task-feed"
        thread.start()
    }

    private func announceChecked(_ announced: inout Bool) {
        announced = true
        condition.lock()
        checked = true
        condition.broadcast()
        condition.unlock()
    }

    /// Waits until the input the journal covers has all been read and matched, the input ended,
    /// or `cancelled()` (polled every 100 ms) is true; returns the mismatch, if any. Resuming by
    /// position cannot fail later. Without a journal it returns at once.
    func waitUntilChecked(cancelled: () -> Bool) -> JournalError? {
        condition.lock()
        defer { condition.unlock() }
        while !checked && !finished && stopped == nil && !cancelled() {
            _ = condition.wait(until: Date(timeIntervalSinceNow: 0.1))
        }
        return stopped
    }

    /// Hands `entries` to the I/O thread, waiting while the queue is full; false once cancelled.
    private func hand<Entries: Collection<Entry>>(_ entries: Entries, filter: ResumeFilter?) -> Bool {
        condition.lock()
        while pending.count >= capacity && !cancelled { condition.wait() }
        guard !cancelled else {
            condition.unlock()
            return false
        }
        // Only the first item after the I/O thread emptied the queue needs to wake it.
        let wasEmpty = pending.isEmpty
        pending.append(contentsOf: entries)
        if checkpointWanted, let filter {
            checkpointWanted = false
            latestCheckpoint = InputCheckpoint(tasks: filter.count, digest: filter.chain.digest)
        }
        condition.unlock()
        if wasEmpty { wakeup.signal() }
        return true
    }

    /// Ends the input without handing over anything more: it does not match the journal.
    private func stop(_ error: JournalError) {
        condition.lock()
        stopped = error
        finished = true
        condition.broadcast()
        condition.unlock()
        wakeup.signal()
    }

    /// Every item ready now, or `nil` if none is; `isDrained` tells whether more will come.
    func take() -> [Entry]? {
        condition.lock()
        defer { condition.unlock() }
        guard !pending.isEmpty else { return nil }
        var taken: [Entry] = []
        // Small: a trickle of input must not cost a large allocation per item.
        taken.reserveCapacity(min(capacity, 256))
        swap(&taken, &pending)
        condition.signal()
        return taken
    }

    /// True once the source has ended and every item was taken.
    var isDrained: Bool {
        condition.lock()
        defer { condition.unlock() }
        return finished && pending.isEmpty
    }

    /// Stops the source at its next item.
    func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }
}
