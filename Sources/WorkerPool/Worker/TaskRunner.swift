/// One task thread of a multi-threaded worker process: takes tasks from the process's
/// ``SharedTaskQueue`` and runs them, one at a time; its ``TaskLink`` does the sending.
struct TaskRunner {
    let node: WorkerNode
    /// 0-based; the thread's row on the running-task board.
    let index: Int
    let queue: SharedTaskQueue

    func run() {
        var executor = TaskExecutor(node: node, index: index)
        var last: SharedTaskQueue.Ended?
        // The last result is let go once batched, so its answer's room serves the next task's.
        while let task = queue.next(after: last.take(), sendLimit: node.sendLimit) {
            last = SharedTaskQueue.Ended(result: executor.run(task), epoch: task.epoch)
            executor.recycleIfDone()
        }
        queue.threadLeft()
    }
}
