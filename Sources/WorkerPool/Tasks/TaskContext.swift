import Logging

/// What a running task can see of the worker it runs on.
public struct TaskContext: Sendable {
    /// The worker process's name, e.g. `Worker-2`.
    public let workerName: String
    public let host: String
    /// The pool's shared events; `wait` blocks only this task's thread.
    public let events: PoolEvents
    public let logger: Logger
    /// Which send of this task this is: 1 the first time, one more for every retry of a failed
    /// attempt (`--retries`) and every redelivery of lost work.
    public internal(set) var attempt: UInt16
    public internal(set) var taskID: UInt64
    /// This task's time limit in milliseconds (0: none). The supervisor kills the process when
    /// it is exceeded, unless the handler was registered to enforce it itself.
    public internal(set) var timeLimitMilliseconds: UInt32 = 0
    /// Readable (for ever) once the worker is stopping: a handler that runs a long time polls it.
    /// -1 outside a worker.
    var stopFileDescriptor: Int32 = -1
    /// Where a handler records the process group of a command it runs, so the supervisor can
    /// kill it if this process dies first; nil outside a worker.
    var board: RunningTaskBoard?
    /// The task thread's index on ``board``.
    var thread = 0
    /// The level of a ``ProcessLogHandler``, read once: it is a value inside the `let` logger, so
    /// its level cannot change. Nil for other handlers, which may change theirs at any time (a
    /// global override).
    private let fixedLogLevel: Logger.Level?

    /// `logger.logLevel`, which costs a dynamic exclusivity check and a copy of the handler when
    /// asked of the logger: the fast paths look at it for every task.
    var logLevel: Logger.Level { fixedLogLevel ?? logger.logLevel }

    /// For running tasks outside a worker, e.g. `TaskRegistry.run` on threads of your own.
    public init(
        workerName: String, host: String, events: PoolEvents = PoolEvents(), logger: Logger, attempt: UInt16 = 1,
        taskID: UInt64 = 0
    ) {
        self.workerName = workerName
        self.host = host
        self.events = events
        self.logger = logger
        fixedLogLevel = logger.handler is ProcessLogHandler ? logger.logLevel : nil
        self.attempt = attempt
        self.taskID = taskID
    }
}

/// Throw this from a handler to fail the task with `message` as its error.
public struct TaskError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
