import Synchronization

/// What a process's task link counted for metrics: the thread owning the link's sockets keeps
/// plain totals and stores them here per message; the control thread reads them. One writer per
/// field, so no read-modify-write.
final class TaskThreadStats: Sendable {
    let tasksBytesReceived = Atomic<UInt64>(0)
    let resultsBytesSent = Atomic<UInt64>(0)
}
