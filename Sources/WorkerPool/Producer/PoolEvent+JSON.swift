import Foundation

extension PoolEvent {
    /// The event's pool-log line: `{"ts":"2025-06-01T03:12:45.120Z","t":12.345,"event":"worker-lost",...}`,
    /// with a newline. `ts` is wall-clock UTC with milliseconds, `t` seconds since the run started.
    func appendJSONLine(to bytes: inout [UInt8], wallClock: WallClock, runStart: PoolTime) {
        var object = JSONObjectWriter(bytes: bytes)
        object.field("ts", wallClock.iso8601(time))
        object.field("t", seconds: time.since(runStart).seconds)
        object.field("event", name)
        appendFields(to: &object)
        bytes = object.finish()
        bytes.append(0x0A)
    }

    /// The `event` field: what happened, in kebab case.
    var name: String {
        switch kind {
        case .runStarted: "run-started"
        case .workerJoined: "worker-joined"
        case .workerLeft: "worker-left"
        case .workerLost: "worker-lost"
        case .workerBack: "worker-back"
        case .processRestarted: "process-restarted"
        case .taskRedelivered: "task-redelivered"
        case .taskFailed: "task-failed"
        case .eventChanged(_, let isSet, _): isSet ? "event-set" : "event-cleared"
        case .messagesRejected: "messages-rejected"
        case .runEnded: "run-ended"
        }
    }

    private func appendFields(to object: inout JSONObjectWriter) {
        switch kind {
        case .runStarted(let start):
            object.field("epoch", Int(start.epoch))
            object.field("pid", Int(start.pid))
            object.field("host", start.host)
            object.object("endpoints") { endpoints in
                endpoints.field("tasks", start.endpoints.tasks)
                endpoints.field("results", start.endpoints.results)
                endpoints.field("events", start.endpoints.events)
            }
        case .workerJoined(let worker), .workerBack(let worker):
            object.worker("worker", worker)
        case .workerLeft(let worker, let tasks):
            object.worker("worker", worker)
            object.field("tasks", Int(tasks))
        case .workerLost(let worker, let loss):
            object.worker("worker", worker)
            appendCause(loss.cause, to: &object)
            object.field("reason", loss.reason)
            object.field("requeued", loss.requeued)
            object.field("charged", loss.charged)
        case .processRestarted(let worker, let restarts):
            object.worker("worker", worker)
            object.field("restarts", Int(restarts))
        case .taskRedelivered(let redelivery):
            object.field("task", Int(redelivery.id))
            object.field("name", redelivery.name)
            object.field("attempt", Int(redelivery.attempt))
            object.field("reason", redelivery.reason.name)
            object.worker("from", redelivery.from, id: redelivery.fromID)
            object.worker("to", redelivery.to, id: redelivery.toID)
            object.field("delay_s", seconds: redelivery.delaySeconds)
        case .taskFailed(let id, let name, let status, let reason):
            object.field("task", Int(id))
            object.field("name", name)
            object.field("status", status.description)
            object.field("reason", reason)
        case .eventChanged(let name, _, let by):
            object.field("name", name)
            object.field("by", by ?? "producer")
        case .messagesRejected(let rejection):
            object.field("reason", rejection.reason.rawValue)
            object.field("count", Int(rejection.count))
            object.field("total", Int(rejection.total))
            if let example = rejection.example { object.field("example", example) }
        case .runEnded(let summary, let cancelled):
            object.field("cancelled", cancelled)
            object.object("summary") { summary.appendFields(to: &$0) }
        }
    }

    private func appendCause(_ cause: WorkerLossDetail.Cause, to object: inout JSONObjectWriter) {
        switch cause {
        case .died(let signal, let exitCode):
            object.field("cause", "died")
            if let signal { object.field("signal", Int(signal)) }
            if let exitCode { object.field("exit_code", Int(exitCode)) }
        case .timeLimit(let task):
            object.field("cause", "time-limit")
            object.field("task", Int(task))
        case .silent(let seconds):
            object.field("cause", "silent")
            object.field("silent_s", seconds: seconds)
        }
    }
}

extension RunSummary {
    fileprivate func appendFields(to object: inout JSONObjectWriter) {
        object.field("tasks", Int(tasks))
        object.field("succeeded", Int(succeeded))
        object.field("failed", Int(failed))
        object.field("wall_s", seconds: wallSeconds)
        object.field("tasks_per_s", seconds: tasksPerSecond)
        object.field("redeliveries", Int(redeliveries))
        object.field("worst_redelivery_s", seconds: worstRedeliverySeconds)
        object.field("rejected_messages", Int(rejectedMessages))
        object.field("duplicate_results", Int(duplicateResults))
        object.field("resumed", Int(resumed))
        object.array("workers_not_released", workersNotReleased) { $0.string($1) }
        object.array("workers", workers) { array, worker in
            array.object { entry in
                entry.field("name", worker.name)
                entry.field("host", worker.host)
                entry.field("pid", Int(worker.pid))
                entry.field("done", Int(worker.tasksDone))
                entry.field("failed", Int(worker.tasksFailed))
                entry.field("restarts", Int(worker.restarts))
                entry.field("state", worker.state)
            }
        }
    }
}

extension JSONObjectWriter {
    /// A worker as `{"id":..,"name":..,"host":..,"pid":..,"threads":..}`; just its id when the
    /// roster no longer knows it.
    fileprivate mutating func worker(_ key: String, _ worker: WorkerInfo?, id: UInt32? = nil) {
        object(key) { object in
            object.field("id", Int(worker?.id ?? id ?? 0))
            guard let worker else { return }
            object.field("name", worker.name)
            object.field("host", worker.host)
            object.field("pid", Int(worker.pid))
            object.field("threads", Int(worker.threads))
        }
    }
}
