import Synchronization

/// What one task thread counted for metrics, as it last published it: the thread keeps plain
/// totals and stores them here when it publishes what it holds (per batch of messages, not per
/// task); the control thread sums every thread's. One writer per field, so no read-modify-write.
final class TaskThreadStats: Sendable {
    let tasksBytesReceived = Atomic<UInt64>(0)
    let resultsBytesSent = Atomic<UInt64>(0)
}
