import Foundation

/// Carries numbered input from the source's thread to the producer's I/O thread in chunks,
/// blocking the source while `capacity` chunks wait, so memory stays bounded.
///
/// `@unchecked Sendable`: all state is touched only with `condition` locked.
final class TaskFeed: @unchecked Sendable {
    struct Entry {
        var id: UInt64
        var item: SourceItem
    }

    private let condition = NSCondition()
    private var chunks: [[Entry]] = []
    private var finished = false
    private var cancelled = false
    private let capacity: Int
    private let wakeup: Wakeup

    init(capacity: Int, wakeup: Wakeup) {
        self.capacity = capacity
        self.wakeup = wakeup
    }

    /// Runs `source` on a new thread, numbering items from 1.
    func start(_ source: TaskSource, chunkSize: Int) {
        let thread = Thread { [self] in
            var chunk: [Entry] = []
            chunk.reserveCapacity(chunkSize)
            var nextID: UInt64 = 1
            source.produce { item in
                chunk.append(Entry(id: nextID, item: item))
                nextID += 1
                if chunk.count >= chunkSize {
                    guard push(chunk) else { return false }
                    chunk.removeAll(keepingCapacity: true)
                }
                return true
            }
            if !chunk.isEmpty { _ = push(chunk) }
            condition.lock()
            finished = true
            condition.unlock()
            wakeup.signal()
        }
        thread.name = "task-feed"
        thread.start()
    }

    private func push(_ chunk: [Entry]) -> Bool {
        condition.lock()
        while chunks.count >= capacity && !cancelled { condition.wait() }
        let accepted = !cancelled
        if accepted { chunks.append(chunk) }
        condition.unlock()
        if accepted { wakeup.signal() }
        return accepted
    }

    /// The next chunk, or `nil` if none is ready; `isFinished` tells whether more will come.
    func take() -> [Entry]? {
        condition.lock()
        defer { condition.unlock() }
        guard !chunks.isEmpty else { return nil }
        condition.signal()
        return chunks.removeFirst()
    }

    /// True once the source has ended and every chunk was taken.
    var isDrained: Bool {
        condition.lock()
        defer { condition.unlock() }
        return finished && chunks.isEmpty
    }

    /// Stops the source at its next item.
    func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }
}
