import Foundation
import Synchronization

/// Turns snapshots of plain counters into swift-metrics calls, on a thread of its own: whatever
/// the bootstrapped backend costs (locks, histogram buckets) is never paid on the thread that
/// took the snapshot. Only the latest snapshot waits; one that arrives while another is being
/// published replaces it, and deltas between snapshots are exact either way.
final class MetricsPublisher<Publication: MetricsPublication>: Sendable {
    private struct Pending {
        var snapshot: Publication.Snapshot?
        var finishing = false
    }

    private let pending = Mutex(Pending())
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    init(threadName: String) {
        let thread = Thread { [self] in run() }
        thread.name = threadName
        thread.start()
    }

    /// Publishes `snapshot` soon (replacing one not yet published). Cheap: one lock, no allocation.
    func submit(_ snapshot: Publication.Snapshot) {
        pending.withLock { $0.snapshot = snapshot }
        wake.signal()
    }

    /// Publishes `snapshot`, then returns once it has been published and the thread has ended.
    func finish(with snapshot: Publication.Snapshot) {
        pending.withLock {
            $0.snapshot = snapshot
            $0.finishing = true
        }
        wake.signal()
        finished.wait()
    }

    private func run() {
        var publication = Publication()
        while true {
            wake.wait()
            let (snapshot, finishing) = pending.withLock { pending in
                defer { pending.snapshot = nil }
                return (pending.snapshot, pending.finishing)
            }
            if let snapshot { publication.publish(snapshot) }
            if finishing { break }
        }
        finished.signal()
    }
}

/// What a ``MetricsPublisher`` publishes: swift-metrics handles and the last values published.
protocol MetricsPublication {
    associatedtype Snapshot: Sendable
    init()
    /// Publishes what changed since the last snapshot.
    mutating func publish(_ snapshot: Snapshot)
}
