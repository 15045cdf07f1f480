import Logging

/// Something that happened to the pool, as the pool log (`--pool-log`) records it: a worker's
/// life, a task sent again or failed by the pool, an event's change, rejected messages, the
/// run's start and end. Rare by design: a task's ordinary end is never one.
///
/// The core records these where it decides them, and the log line a person reads is derived
/// from the same value (``logLine``), so the pool log and the log never tell two stories.
struct PoolEvent: Sendable {
    var time: PoolTime
    var kind: Kind

    enum Kind: Sendable {
        case runStarted(RunStart)
        case workerJoined(WorkerInfo)
        /// Released after its goodbye, having ended `tasks` tasks.
        case workerLeft(WorkerInfo, tasks: UInt64)
        case workerLost(WorkerInfo, WorkerLossDetail)
        /// A worker presumed lost spoke again and takes work again.
        case workerBack(WorkerInfo)
        /// A process whose heartbeats say its supervisor started it `restarts` times in its slot.
        case processRestarted(WorkerInfo, restarts: UInt32)
        case taskRedelivered(TaskRedelivery)
        /// A task the pool failed (its process kept dying, it overran its time limit, or it was
        /// sent too often): failures a handler reports are task results, not pool events.
        case taskFailed(id: UInt64, name: String, status: ResultStatus, reason: String)
        /// `by` names the worker that asked; nil when this process changed it.
        case eventChanged(name: String, isSet: Bool, by: String?)
        case messagesRejected(MessageRejection)
        case runEnded(RunSummary, cancelled: Bool)
    }

    /// Where the run listens, and who runs it.
    struct RunStart: Sendable {
        var epoch: UInt32
        var pid: Int32
        var host: String
        var endpoints: PoolEndpoints
    }

    /// Why a worker was lost, and what it cost.
    struct WorkerLossDetail: Sendable {
        enum Cause: Sendable {
            /// Its supervisor reported it dead: by a signal, or an exit code.
            case died(signal: Int32?, exitCode: Int32?)
            /// Its supervisor killed it because `task` overran its time limit.
            case timeLimit(task: UInt64)
            /// Its heartbeats stopped for longer than the worker timeout.
            case silent(seconds: Double)
        }

        var cause: Cause
        /// The reason in words, as the log line says it.
        var reason: String
        /// Tasks it held that are sent to other workers.
        var requeued: Int
        /// Tasks charged an attempt because they were running when it died.
        var charged: Int
    }

    /// A task sent again: why, from which worker, to which.
    struct TaskRedelivery: Sendable {
        var id: UInt64
        var name: String
        var attempt: UInt16
        var reason: RedeliveryReason
        /// The worker the previous attempt went to, when the roster still knows it.
        var from: WorkerInfo?
        var fromID: UInt32
        var to: WorkerInfo?
        var toID: UInt32
        /// From the previous holder's last sign of life to this send.
        var delaySeconds: Double
    }

    /// Messages refused since the last such event, by reason (at most one event per reason per
    /// tick, so a flood of garbage costs a few lines a second).
    struct MessageRejection: Sendable {
        enum Reason: String, Sendable, CaseIterable {
            /// Did not decode (garbage, wrong version, extra frames) or broke a rule (a ready
            /// whose routing id is not its sender's, an event request beyond the limits).
            case malformed
            /// From a sender that never said hello, or under another worker's key.
            case stranger
            /// A result from a known worker for a task it was never sent.
            case forged
            /// A death report that did not come from the process's supervisor.
            case refusedLossReport = "refused-loss-report"
        }

        var reason: Reason
        var count: UInt64
        var total: UInt64
        /// The latest of these messages the log printed.
        var example: String?
    }

    /// The line the log prints for this event; nil for those only the pool log records.
    var logLine: LogLine? {
        switch kind {
        case .workerJoined(let worker):
            LogLine(
                level: .info,
                message: "\(worker.name) joined from \(worker.host) (pid \(worker.pid), \(worker.threads) threads)")
        case .workerLeft(let worker, let tasks):
            LogLine(level: .info, message: "\(worker.name) left after \(tasks) tasks")
        case .workerLost(let worker, let loss):
            LogLine(
                level: .warning,
                message:
                    "\(worker.name) lost: \(loss.reason); \(loss.requeued) tasks sent again, \(loss.charged) charged an attempt"
            )
        case .workerBack(let worker):
            LogLine(level: .info, message: "\(worker.name) is back; it takes work again")
        case .taskFailed(let id, let name, _, let reason):
            LogLine(level: .error, message: "task \(id) (\(name)) failed: \(reason)")
        case .eventChanged(let name, let isSet, let by?):
            LogLine(level: .info, message: "event '\(name)' \(isSet ? "set" : "cleared") by \(by)")
        case .runStarted, .processRestarted, .taskRedelivered, .eventChanged, .messagesRejected, .runEnded:
            nil
        }
    }
}

/// Why a task had to be sent again; kept in its lease from the loss to the next send.
enum RedeliveryReason: UInt8, Sendable {
    case none = 0
    /// Its worker process died, overran a time limit, or fell silent.
    case workerLost
    /// Its worker thread reconnected before the task was seen there.
    case reconnected
    /// It was not seen at its worker within the ack timeout.
    case notAcknowledged
    /// Its worker stopped listing it in heartbeats and no result came.
    case vanished
    /// Its worker left before starting it.
    case workerLeft

    var name: String {
        switch self {
        case .none: "unknown"
        case .workerLost: "worker-lost"
        case .reconnected: "reconnected"
        case .notAcknowledged: "not-acknowledged"
        case .vanished: "vanished"
        case .workerLeft: "worker-left"
        }
    }
}
