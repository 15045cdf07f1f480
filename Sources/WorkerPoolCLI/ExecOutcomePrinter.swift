import Foundation
import WorkerPool

/// How `producer exec` shows a job's end: human (the job's stdout to ours, its stderr and a
/// line per failure to stderr) or one JSON object per job with every field of the result.
/// With `keepOrder`, jobs are shown in input order, each as soon as those before it have ended.
struct ExecOutcomePrinter {
    let keepOrder: Bool
    private var next: UInt64 = 1
    private var pending: [UInt64: TaskOutcome] = [:]

    init(keepOrder: Bool) { self.keepOrder = keepOrder }

    mutating func add(
        _ outcome: TaskOutcome, format: ResultPrinter.Format, stdout: inout [UInt8], stderr: inout [UInt8]
    ) {
        guard keepOrder else {
            Self.render(outcome, format: format, stdout: &stdout, stderr: &stderr)
            return
        }
        pending[outcome.id] = outcome
        while let ready = pending.removeValue(forKey: next) {
            Self.render(ready, format: format, stdout: &stdout, stderr: &stderr)
            next += 1
        }
    }

    /// What is still held back (jobs a resumed run skipped leave gaps), in order.
    mutating func drainAll(format: ResultPrinter.Format, stdout: inout [UInt8], stderr: inout [UInt8]) {
        for id in pending.keys.sorted() {
            if let outcome = pending[id] { Self.render(outcome, format: format, stdout: &stdout, stderr: &stderr) }
        }
        pending.removeAll()
    }

    static func render(
        _ outcome: TaskOutcome, format: ResultPrinter.Format, stdout: inout [UInt8], stderr: inout [UInt8]
    ) {
        switch format {
        case .none: return
        case .jsonl: appendJSONLine(outcome, to: &stdout)
        case .human: appendHuman(outcome, stdout: &stdout, stderr: &stderr)
        }
    }

    /// The exec result object a payload holds, if it is one.
    static func fields(_ payload: [UInt8]) -> [String: Any]? {
        guard payload.first == UInt8(ascii: "{") else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(payload))) as? [String: Any]
    }

    static func stream(_ name: String, in fields: [String: Any]) -> [UInt8] {
        guard let text = fields[name] as? String else { return [] }
        if fields[name + "_encoding"] as? String == "base64" {
            return Data(base64Encoded: text).map { Array($0) } ?? []
        }
        return Array(text.utf8)
    }

    static func appendHuman(_ outcome: TaskOutcome, stdout: inout [UInt8], stderr: inout [UInt8]) {
        guard let fields = fields(outcome.payload) else {
            let message = outcome.status == .ok ? outcome.resultText : outcome.message
            stderr += Array("exec: job \(outcome.id) \(outcome.status): \(message)\n".utf8)
            return
        }
        stdout += stream("stdout", in: fields)
        stderr += stream("stderr", in: fields)
        for name in ["stdout", "stderr"] where fields[name + "_truncated"] as? Bool == true {
            let total = fields[name + "_bytes"] as? Int ?? 0
            stderr += Array(
                "exec: job \(outcome.id): \(name) truncated to the worker's limit (\(total) bytes written)\n".utf8)
        }
        guard outcome.status != .ok else { return }
        let error = fields["error"] as? String ?? "\(outcome.status)"
        stderr += Array("exec: job \(outcome.id) failed (\(outcome.status)): \(error): \(command(fields))\n".utf8)
    }

    /// The command as a shell would read it.
    static func command(_ fields: [String: Any]) -> String {
        if let script = fields["shell"] as? String { return "sh -c " + ExecTemplate.shellQuoted(script) }
        let argv = fields["argv"] as? [String] ?? []
        return argv.map(ExecTemplate.shellQuoted).joined(separator: " ")
    }

    /// `{"job":N,"status":...,` the result's own fields `,"worker":...,"host":...,"worker_pid":...}`.
    static func appendJSONLine(_ outcome: TaskOutcome, to bytes: inout [UInt8]) {
        bytes += Array(#"{"job":\#(outcome.id),"status":"\#(outcome.status)""#.utf8)
        let payload = outcome.payload
        if payload.count >= 2, payload.first == UInt8(ascii: "{"), payload.last == UInt8(ascii: "}") {
            if payload.count > 2 {
                bytes.append(UInt8(ascii: ","))
                bytes += payload[1..<(payload.count - 1)]
            }
        } else {
            bytes += Array(#","error":"#.utf8) + quoted(outcome.status == .ok ? outcome.resultText : outcome.message)
        }
        if let worker = outcome.worker {
            bytes += Array(#","worker":"#.utf8) + quoted(worker.name)
            bytes += Array(#","host":"#.utf8) + quoted(worker.host)
            bytes += Array(#","worker_pid":\#(worker.pid)"#.utf8)
        }
        // A job run again after failing (--retries) says how many runs it took.
        if outcome.attempts > 1 { bytes += Array(#","attempts":\#(outcome.attempts)"#.utf8) }
        bytes += Array("}\n".utf8)
    }

    static func quoted(_ text: String) -> [UInt8] {
        (try? JSONSerialization.data(withJSONObject: text, options: [.fragmentsAllowed, .withoutEscapingSlashes]))
            .map { Array($0) } ?? Array(#""""#.utf8)
    }
}
