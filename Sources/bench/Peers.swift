import Foundation
import WorkerPool

/// `--peers`: the Python peers (`Benchmarks/peers/run_peers.py`: multiprocessing and pyzmq
/// versions of the same workloads), run as they are, their records added to ours.
enum Peers {
    struct Outcome {
        var records: [Record] = []
        var raw: [Any] = []
        /// Why the peers did not run (or failed), if so.
        var skipped: String?
    }

    static func run(script: String, quick: Bool, temporaryDirectory: String) -> Outcome {
        guard let python = Command.which("python3") else { return Outcome(skipped: "python3 is not on PATH") }
        guard FileManager.default.fileExists(atPath: script) else { return Outcome(skipped: "no \(script)") }
        guard let check = try? Command.run(python, ["-c", "import zmq"], captureStderr: true), check.ok else {
            return Outcome(
                skipped:
                    "pyzmq is not installed for \(python) (python3 -m pip install -r Benchmarks/peers/requirements.txt)"
            )
        }
        let output = "\(temporaryDirectory)/peers.json"
        var arguments = [script, "--json", output]
        if quick { arguments.append("--quick") }
        Log.line("bench: running the Python peers: python3 \(arguments.joined(separator: " "))")
        do {
            // The peers' own table and progress go to our stderr.
            let result = try Command.runPassingOutputToStderr(python, arguments)
            guard let data = FileManager.default.contents(atPath: output),
                let list = try JSONSerialization.jsonObject(with: data) as? [Any]
            else {
                return Outcome(skipped: "run_peers.py exited with \(result) and wrote no JSON list to \(output)")
            }
            var outcome = Outcome(raw: list)
            outcome.records = list.compactMap { ($0 as? [String: Any]).flatMap(record(from:)) }
            if result != .exited(0) {
                outcome.skipped = "run_peers.py exited with \(result) (some peers failed; their records say why)"
            }
            return outcome
        } catch {
            return Outcome(skipped: "run_peers.py could not run: \(error)")
        }
    }

    /// A peer record `{peer, workload, workers, chunksize, tasks, seconds, tasks_per_second, runs}`
    /// as a row: mode `peer`, workload `null` or `cpu-<us>`, processes = workers, 1 thread.
    static func record(from fields: [String: Any]) -> Record? {
        guard let peer = fields["peer"] as? String, let workload = fields["workload"] as? String else { return nil }
        var name = workload
        if workload == "cpu", let micros = (fields["cpu_micros"] as? NSNumber)?.doubleValue {
            name =
                micros >= 1000 && micros.truncatingRemainder(dividingBy: 1000) == 0
                ? "cpu-\(Int(micros / 1000))ms" : "cpu-\(Report.number(micros))us"
        }
        let workers = (fields["workers"] as? NSNumber)?.intValue ?? 0
        let tasks = (fields["tasks"] as? NSNumber)?.intValue ?? 0
        let seconds = (fields["seconds"] as? NSNumber)?.doubleValue
        let rate = (fields["tasks_per_second"] as? NSNumber)?.doubleValue
        var record = Record(
            mode: "peer", workload: name, task: workload, processes: workers, threads: 1, tasks: tasks,
            succeeded: rate == nil ? 0 : tasks, failed: 0, seconds: seconds ?? 0, tasksPerSecond: rate ?? 0)
        record.peer = peer
        record.chunksize = (fields["chunksize"] as? NSNumber)?.intValue
        record.runs = (fields["runs"] as? [Any])?.compactMap { ($0 as? NSNumber)?.doubleValue }
        if let error = fields["error"] as? String {
            record.note = "FAILED: \(error)"
            record.skipped = true
        } else if let runs = record.runs, runs.count > 1 {
            record.note = "median of \(runs.count) runs"
        }
        return record
    }
}

extension Command {
    /// Runs a command with its stdout and stderr sent to this process's stderr.
    static func runPassingOutputToStderr(_ executable: String, _ arguments: [String]) throws -> ChildProcess.Status {
        let child = try ChildProcess.spawn(executable: executable, arguments: arguments, inherit: [(2, 1)])
        return child.wait()
    }
}
