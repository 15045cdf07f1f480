import Foundation

/// What a process's task link and its task threads share: tasks received and not yet started,
/// and results waiting to be sent. The link thread owns the sockets; a task thread takes its next
/// task and hands back its last result in one lock, and wakes the link only when a message of
/// results is full or when it runs out of work (so the producer hears at once that this process
/// could take more). Otherwise the link sends what waited every ``WorkerConfiguration/resultDelayMicroseconds``.
///
/// `@unchecked Sendable`: every stored property is read and written only with `condition` locked.
/// The lock also rules out overlapping accesses, so the variables skip the dynamic exclusivity
/// check (a few of them per task otherwise: several hundred instructions).
final class SharedTaskQueue: @unchecked Sendable {
    private let condition = NSCondition()
    @exclusivity(unchecked) private var tasks = TaskQueue()
    @exclusivity(unchecked) private var results: ResultBatcher
    @exclusivity(unchecked) private var running = 0
    @exclusivity(unchecked) private var waiting = 0
    @exclusivity(unchecked) private var stopping = false
    @exclusivity(unchecked) private var liveThreads: Int
    /// Wakes the link thread: results to send now, or a task thread left.
    let linkWakeup = Wakeup()

    init(sender: UInt32, threads: Int) {
        results = ResultBatcher(sender: sender)
        liveThreads = threads
    }

    private func locked<R>(_ body: () -> R) -> R {
        condition.lock()
        defer { condition.unlock() }
        return body()
    }

    // MARK: The link thread

    /// Queues tasks the link received, waking as many waiting threads.
    func push(_ received: TaskQueue) {
        let count = received.count
        guard count > 0 else { return }
        locked {
            tasks.append(contentsOf: received)
            if waiting >= count { for _ in 0..<count { condition.signal() } } else { condition.broadcast() }
        }
    }

    /// Adds a result the link made itself (a malformed task record).
    func add(_ result: ResultRecord, epoch: UInt32, sendLimit: Int) {
        locked { _ = results.add(result, epoch: epoch, sendLimit: sendLimit) }
    }

    /// Every results message waiting, for the link to send.
    func takeResults() -> [(message: WireFormat.MessageWriter, epoch: UInt32)] {
        locked { results.isEmpty ? [] : results.takeAll() }
    }

    /// Whether tasks run or wait here, or results wait to be sent: the link then sends on a timer.
    var isBusy: Bool { locked { running > 0 || !tasks.isEmpty || !results.isEmpty } }

    /// Task threads take no more tasks; those waiting for one leave.
    func stop() {
        locked {
            stopping = true
            condition.broadcast()
        }
    }

    var threadsLeft: Int { locked { liveThreads } }

    /// Queued tasks and unsent results, for heartbeats (running tasks are on the board).
    func held() -> [UInt64] {
        locked {
            var held: [UInt64] = []
            tasks.appendIDs(to: &held)
            return held + results.unsent
        }
    }

    // MARK: Task threads

    /// A task a thread ran: its result, or nil when the worker's stop interrupted it.
    struct Ended {
        var result: ResultRecord?
        var epoch: UInt32
    }

    /// Hands back the thread's last task (if any) and waits for its next; nil when the process
    /// stops.
    func next(after last: Ended?, sendLimit: Int) -> WorkerNode.QueuedTask? {
        condition.lock()
        defer { condition.unlock() }
        var wakeLink = false
        if let last {
            running -= 1
            if let result = last.result { wakeLink = results.add(result, epoch: last.epoch, sendLimit: sendLimit) }
        }
        while tasks.isEmpty && !stopping {
            // Out of work: results must not wait for the timer, they are this process's credit.
            if wakeLink || !results.isEmpty {
                linkWakeup.signal()
                wakeLink = false
            }
            waiting += 1
            condition.wait()
            waiting -= 1
        }
        if wakeLink { linkWakeup.signal() }
        guard !stopping, !tasks.isEmpty else { return nil }
        running += 1
        return tasks.removeFirst()
    }

    /// A task thread is leaving (after its last result went in with ``next(after:)``).
    func threadLeft() {
        locked { liveThreads -= 1 }
        linkWakeup.signal()
    }
}
