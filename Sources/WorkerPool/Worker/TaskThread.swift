import CPoolSystem
import ZeroMQ

/// The task thread of a single-threaded worker process: it owns the process's task link (a
/// DEALER receiving tasks, a PUSH sending results) and runs the tasks itself, one at a time, so a
/// task's trip through the worker never crosses a thread. (A process with several threads has
/// a ``TaskLink`` thread and ``TaskRunner``s instead.)
///
/// Between tasks it drains the DEALER without blocking, so tasks that arrive while a long one
/// runs are queued as soon as it ends (after short ones, once a millisecond: see ``Loop/lookDue()``).
struct TaskThread {
    let node: WorkerNode
    /// Where it publishes what it holds, for heartbeats.
    let queue: WorkerNode.LocalQueue

    func run() throws {
        var sockets = try TaskLinkSockets(node: node, capacity: 1, resultDelayMicroseconds: 0)
        var poller = Poller()
        let taskIndex = poller.add(sockets.tasks, .readable)
        let monitorIndex = poller.add(sockets.monitor.socket, .readable)
        let stopIndex = poller.add(fileDescriptor: node.stopSignal.fileDescriptor, .readable)
        var loop = Loop(node: node, queue: queue)
        var busyRounds = 0

        while true {
            let idle = loop.isIdle
            if idle {
                try poller.poll(timeoutMilliseconds: -1)
                loop.timePassed()
                if poller.events(at: stopIndex).contains(.readable) { break }
            } else if node.isStopping {
                break
            }
            // While busy, look for reconnections every 256 tasks rather than after each one.
            busyRounds = idle ? 0 : busyRounds + 1
            if (idle && poller.events(at: monitorIndex).contains(.readable)) || busyRounds % 256 == 1 {
                try sockets.announceHandshakes()
                loop.timePassed()
            }
            if idle ? poller.events(at: taskIndex).contains(.readable) : loop.lookDue() {
                try loop.receiveAvailable(&sockets)
            }
            try loop.runNext(&sockets)
        }
        try loop.flush(&sockets)
    }

    /// The state of the thread's receive-run-send cycle.
    struct Loop {
        let node: WorkerNode
        let queue: WorkerNode.LocalQueue
        var batcher: ResultBatcher
        /// Tasks received and not yet started: this thread's alone, so taking one locks nothing.
        var local = TaskQueue()
        var executor: TaskExecutor
        /// When the DEALER was last drained (monotonic nanoseconds).
        private var lastLook: UInt64 = 0
        /// Now, when the last thing this loop did was to end a task (its end time): the next task
        /// starts then, and the look at the DEALER is timed by it, with no clock read of their own.
        private var now: UInt64?

        init(node: WorkerNode, queue: WorkerNode.LocalQueue) {
            self.node = node
            self.queue = queue
            batcher = ResultBatcher(sender: node.workerID)
            executor = TaskExecutor(node: node, index: 0)
        }

        var isIdle: Bool { local.isEmpty }

        /// What this thread holds, for the control thread's heartbeats: published when it changes
        /// by a batch (tasks received, results sent), not per task. While a task runs nothing
        /// here changes, and the board says which task runs.
        func publishHeld() {
            var held: [UInt64] = []
            held.reserveCapacity(local.count + batcher.unsent.count)
            local.appendIDs(to: &held)
            held += batcher.unsent
            queue.held.withLock { $0 = held }
        }

        /// While busy, whether to drain the DEALER now: once a millisecond has passed since it
        /// last was. A look that finds nothing costs libzmq more than a null task's whole run, and
        /// a task that ran that long is followed by a look at once.
        func lookDue() -> Bool {
            (now ?? cpool_monotonic_nanoseconds()) &- lastLook >= 1_000_000
        }

        /// The loop waited or did I/O: the last task's end is no longer now.
        mutating func timePassed() { now = nil }

        /// Moves every task libzmq has ready into the local queue. No acknowledgement is sent: the
        /// result is one, and the next heartbeat lists what waits.
        mutating func receiveAvailable(_ sockets: inout TaskLinkSockets) throws {
            var malformed: [(result: ResultRecord, epoch: UInt32)] = []
            lastLook = now ?? cpool_monotonic_nanoseconds()
            now = nil
            let received = try sockets.receiveAvailable(into: &local, malformed: &malformed)
            for (result, epoch) in malformed { try add(result, epoch: epoch, &sockets) }
            if received { publishHeld() }
        }

        /// Runs the next queued task, if any; sends results when fast tasks have added up or the queue is empty.
        mutating func runNext(_ sockets: inout TaskLinkSockets) throws {
            guard !local.isEmpty else {
                try flush(&sockets)
                return
            }
            let next = local.removeFirst()
            let startedAt = now
            now = nil
            guard let result = executor.run(next, startedAt: startedAt) else { return }
            now = executor.endedAt
            try add(result, epoch: next.epoch, &sockets)
            if batcher.openMicroseconds >= node.configuration.resultFlushMicroseconds || isIdle {
                try flush(&sockets)
            }
            executor.recycleIfDone()
        }

        mutating func add(_ result: ResultRecord, epoch: UInt32, _ sockets: inout TaskLinkSockets) throws {
            if batcher.add(result, epoch: epoch, sendLimit: node.sendLimit) { try flush(&sockets) }
        }

        mutating func flush(_ sockets: inout TaskLinkSockets) throws {
            guard !batcher.isEmpty else { return }
            now = nil
            for (message, epoch) in batcher.takeAll() { try sockets.send(message, epoch: epoch) }
            publishHeld()
        }
    }
}
