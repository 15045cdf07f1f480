import Foundation
import Synchronization

/// Carries numbered input from the source's thread to the producer's I/O thread, blocking the
/// source while `capacity` items wait, so memory stays bounded.
///
/// Items are handed over in batches of up to ``batchSize``, and whatever is gathered goes at once
/// when the source is about to wait (before each read): a source that pauses (a pipe, a person
/// typing) never leaves tasks stuck behind a half-filled batch. A source that cannot announce its
/// waits (a caller's own closure) has each item handed over as soon as it is emitted. The I/O
/// thread takes whatever is ready, many items per lock.
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

        /// The fields, moved out.
        consuming func parts() -> (id: UInt64, item: SourceItem, digest: TaskDigest) { (id, item, digest) }
    }

    /// Entries as the feed passes them on, in input order. An array: appending moves an entry in
    /// (a `Deque`'s append copied it, some 100 instructions), and the I/O thread moves each out
    /// from the end once the batch is reversed.
    typealias Batch = [Entry]

    private let condition = NSCondition()
    /// Batches in input order, handed over whole; `pendingCount` entries in all.
    private var pending: [Batch] = []
    private var pendingCount = 0
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

    /// Items the feed's thread gathers before it takes the lock to pass them on, when the
    /// source announces its waits (one lock per item costs a null task ~450 instructions).
    static let batchSize = 64

    /// Runs `source` on a new thread, numbering items from 1.
    func start(_ source: TaskSource) {
        let thread = Thread { [self] in
            var intake = Intake(
                feed: self, filter: resumeFilter, batchSize: source.announcesWaits ? Self.batchSize : 1)
            source.run({ intake.accept($0) }, { intake.sourceWillWait() })
            intake.inputEnded()
        }
        thread.name = "task-feed"
        thread.start()
    }

    /// The feed thread's own state: numbering, hashing and resume filtering, and the batch it
    /// gathers. (A struct the closures reach as one local: captured loose, each variable would be
    /// checked for exclusive access at run time, some 150 instructions a task.)
    private struct Intake {
        let feed: TaskFeed
        var nextID: UInt64 = 1
        // Mutated in place (never copied: its tables shrink as lines match).
        var filter: ResumeFilter
        let hashing: Bool
        let batchSize: Int
        /// Items to run, not yet passed on: a batch, or while the journal's part of the input is
        /// being checked, everything read (nothing leaves until it all matched).
        var held = Batch()
        var announced = false
        var stoppedEarly = false

        init(feed: TaskFeed, filter: ResumeFilter?, batchSize: Int) {
            self.feed = feed
            self.filter = filter ?? ResumeFilter()
            hashing = filter != nil
            self.batchSize = batchSize
            held.reserveCapacity(batchSize)
            if !self.filter.isVerifying { announce() }
        }

        /// One item from the source; false once the feed is cancelled or the input stopped.
        mutating func accept(_ item: consuming SourceItem) -> Bool {
            // Hashed before the entry is made: `entry.digest = TaskDigest(of: entry.item)` reads
            // the entry while writing it, so the item was copied first.
            let digest = hashing ? TaskDigest(of: item) : .zero
            let entry = Entry(id: nextID, item: item, digest: digest)
            nextID += 1
            if hashing {
                switch filter.admit(id: entry.id, digest: entry.digest) {
                case .stop(let code, let reason):
                    feed.stop(JournalError(code, reason))
                    stoppedEarly = true
                    return false
                case .skip:
                    feed.resumedCount.add(1, ordering: .relaxed)
                case .run:
                    held.append(consume entry)
                }
                // Until the journal's part of the input has all matched, nothing leaves.
                guard !filter.isVerifying else { return true }
                if !announced { announce() }
            } else {
                held.append(consume entry)
            }
            return held.count < batchSize || passOn()
        }

        /// The source may block next: what is gathered goes now.
        mutating func sourceWillWait() {
            if !filter.isVerifying { _ = passOn() }
        }

        mutating func inputEnded() {
            if stoppedEarly { return }
            if hashing, case .stop(let code, let reason) = filter.inputEnded() {
                feed.stop(JournalError(code, reason))
                return
            }
            guard passOn() else { return }
            feed.finish(checkpoint: hashing && filter.count > 0 ? filter.readSoFar : nil)
        }

        private mutating func passOn() -> Bool {
            guard !held.isEmpty else { return true }
            var batch = Batch()
            batch.reserveCapacity(batchSize)
            swap(&batch, &held)
            return feed.hand(batch, filter: hashing ? filter : nil)
        }

        private mutating func announce() {
            announced = true
            feed.announceChecked()
        }
    }

    /// The input ended; `checkpoint` is what it was, with a journal.
    private func finish(checkpoint: InputCheckpoint?) {
        condition.lock()
        if let checkpoint { latestCheckpoint = checkpoint }
        finished = true
        condition.unlock()
        wakeup.signal()
    }

    private func announceChecked() {
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

    /// Hands `batch` to the I/O thread, waiting while the queue is full; false once cancelled.
    private func hand(_ batch: consuming Batch, filter: ResumeFilter?) -> Bool {
        condition.lock()
        while pendingCount >= capacity && !cancelled { condition.wait() }
        guard !cancelled else {
            condition.unlock()
            return false
        }
        // Only the first item after the I/O thread emptied the queue needs to wake it.
        let wasEmpty = pendingCount == 0
        pendingCount += batch.count
        pending.append(batch)
        if checkpointWanted, let filter {
            checkpointWanted = false
            latestCheckpoint = filter.readSoFar
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

    /// Every item ready now, in batches, or `nil` if none is; `isDrained` tells whether more
    /// will come.
    func take() -> [Batch]? {
        condition.lock()
        defer { condition.unlock() }
        guard pendingCount > 0 else { return nil }
        var taken: [Batch] = []
        swap(&taken, &pending)
        pendingCount = 0
        condition.signal()
        return taken
    }

    /// True once the source has ended and every item was taken.
    var isDrained: Bool {
        condition.lock()
        defer { condition.unlock() }
        return finished && pendingCount == 0
    }

    /// Stops the source at its next item.
    func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }
}
