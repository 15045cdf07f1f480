/// `fail-first`: fails its first tries and then succeeds, to watch `--retries` at work.
extension TaskRegistry {
    /// `{"times": 2}` fails while the task's attempt (``TaskContext/attempt``: the producer counts
    /// every send of the task, a retry or a redelivery) is at most 2, then returns
    /// `{"attempt":3,"worker":"Worker-1"}`. A large `times` fails every time.
    mutating func registerFailFirstTask() {
        register("fail-first", describe: { (input: FailFirst) in "fail the first \(input.times) attempts" }) {
            input, context in
            guard input.times >= 0 else { throw TaskError("times cannot be negative") }
            guard Int(context.attempt) > input.times else {
                throw TaskError(
                    "attempt \(context.attempt) of fail-first \(input.times) fails on \(context.workerName)")
            }
            return FailFirstOutput(attempt: Int(context.attempt), worker: context.workerName)
        }
    }

    struct FailFirst: Codable, Sendable {
        var times: Int
    }

    struct FailFirstOutput: Codable, Sendable {
        var attempt: Int
        var worker: String
    }
}
