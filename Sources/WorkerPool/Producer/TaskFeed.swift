import Foundation

/// Carries numbered input from the source's thread to the producer's I/O thread, blocking the
/// source while `capacity` items wait, so memory stays bounded.
///
/// Each item is handed over as soon as it is emitted: the I/O thread takes whatever is ready, so a
/// source that pauses (a pipe, a person typing, a caller that waits for results) never leaves
/// tasks stuck behind a half-filled chunk. Under load the I/O thread takes many items per lock.
///
/// `@unchecked Sendable`: all state is touched only with `condition` locked.
final class TaskFeed: @unchecked Sendable {
    struct Entry {
        var id: UInt64
        var item: SourceItem
    }

    private let condition = NSCondition()
    private var pending: [Entry] = []
    private var finished = false
    private var cancelled = false
    private let capacity: Int
    private let wakeup: Wakeup

    /// - Parameter capacity: items read ahead of the producer at most.
    init(capacity: Int, wakeup: Wakeup) {
        self.capacity = max(capacity, 1)
        self.wakeup = wakeup
        pending.reserveCapacity(min(self.capacity, 256))
    }

    /// Runs `source` on a new thread, numbering items from 1.
    func start(_ source: TaskSource) {
        let thread = Thread { [self] in
            var nextID: UInt64 = 1
            source.produce { item in
                condition.lock()
                while pending.count >= capacity && !cancelled { condition.wait() }
                guard !cancelled else {
                    condition.unlock()
                    return false
                }
                // Only the first item after the I/O thread emptied the queue needs to wake it.
                let wasEmpty = pending.isEmpty
                pending.append(Entry(id: nextID, item: item))
                condition.unlock()
                nextID += 1
                if wasEmpty { wakeup.signal() }
                return true
            }
            condition.lock()
            finished = true
            condition.unlock()
            wakeup.signal()
        }
        thread.name = "task-feed"
        thread.start()
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
