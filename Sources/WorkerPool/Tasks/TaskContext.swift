import Logging

/// What a running task can see of the worker it runs on.
public struct TaskContext: Sendable {
    /// The worker process's name, e.g. `Worker-2`.
    public let workerName: String
    public let host: String
    /// The pool's shared events; `wait` blocks only this task's thread.
    public let events: PoolEvents
    public let logger: Logger
    public let attempt: UInt16
    public let taskID: UInt64
}

/// Throw this from a handler to fail the task with `message` as its error.
public struct TaskError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
