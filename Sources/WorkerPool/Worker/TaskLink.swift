import CPoolSystem
import ZeroMQ

/// The thread that owns a multi-threaded worker process's task sockets: it receives tasks for
/// all of the process's task threads into their ``SharedTaskQueue`` and sends their results
/// together, at most ``WorkerConfiguration/resultDelayMicroseconds`` after they ended while the
/// process is busy, at once when a message is full or a thread ran out of work. So messages per
/// task fall as load rises, whatever the task length: 25 threads running 10 ms tasks send a
/// message every few milliseconds rather than one per task.
struct TaskLink {
    let node: WorkerNode
    let queue: SharedTaskQueue
    private var sockets: TaskLinkSockets

    init(node: WorkerNode, queue: SharedTaskQueue) throws {
        self.node = node
        self.queue = queue
        sockets = try TaskLinkSockets(
            node: node, capacity: node.configuration.threads,
            resultDelayMicroseconds: node.configuration.resultDelayMicroseconds)
    }

    mutating func run() throws {
        var poller = Poller()
        let taskIndex = poller.add(sockets.tasks, .readable)
        let monitorIndex = poller.add(sockets.monitor.socket, .readable)
        let wakeIndex = poller.add(fileDescriptor: queue.linkWakeup.fileDescriptor, .readable)
        let stopIndex = poller.add(fileDescriptor: node.stopSignal.fileDescriptor, .readable)
        let delayNanoseconds = node.configuration.resultDelayMicroseconds * 1_000
        let timeout = Int(max(1, node.configuration.resultDelayMicroseconds / 1_000))
        var lastSent = cpool_monotonic_nanoseconds()
        while true {
            try poller.poll(timeoutMilliseconds: queue.isBusy ? timeout : -1)
            if poller.events(at: stopIndex).contains(.readable) { break }
            if poller.events(at: monitorIndex).contains(.readable) { try sockets.announceHandshakes() }
            if poller.events(at: taskIndex).contains(.readable) { try receive() }
            var now = false
            if poller.events(at: wakeIndex).contains(.readable) {
                queue.linkWakeup.drain()
                now = true
            }
            let time = cpool_monotonic_nanoseconds()
            if now || time &- lastSent >= delayNanoseconds {
                try sendResults()
                lastSent = time
            }
        }
        try finish()
    }

    private mutating func receive() throws {
        var received = TaskQueue()
        var malformed: [(result: ResultRecord, epoch: UInt32)] = []
        _ = try sockets.receiveAvailable(into: &received, malformed: &malformed)
        for (result, epoch) in malformed { queue.add(result, epoch: epoch, sendLimit: node.sendLimit) }
        queue.push(received)
    }

    private mutating func sendResults() throws {
        for (message, epoch) in queue.takeResults() { try sockets.send(message, epoch: epoch) }
    }

    /// Stopping: the threads finish the tasks they run (no new ones start); their results go
    /// out as they end, and the last once every thread has left.
    private mutating func finish() throws {
        queue.stop()
        var poller = Poller()
        let wakeIndex = poller.add(fileDescriptor: queue.linkWakeup.fileDescriptor, .readable)
        while queue.threadsLeft > 0 {
            try poller.poll(timeoutMilliseconds: -1)
            if poller.events(at: wakeIndex).contains(.readable) { queue.linkWakeup.drain() }
            try sendResults()
        }
        try sendResults()
    }
}
