import Foundation
import Testing
import WorkerPool
import ZeroMQ

/// `producer --pool-log FILE`: what happened to the pool, as JSON lines, from real runs.
@Suite("Pool log", .serialized, .timeLimit(.minutes(3)))
struct PoolLogTests {
    /// The fields each kind of line carries besides `ts`, `t` and `event` (the README's list).
    static let fields: [String: [String]] = [
        "run-started": ["epoch", "pid", "host", "endpoints"],
        "worker-joined": ["worker"], "worker-back": ["worker"], "worker-left": ["worker", "tasks"],
        "worker-lost": ["worker", "cause", "reason", "requeued", "charged"],
        "process-restarted": ["worker", "restarts"],
        "task-redelivered": ["task", "name", "attempt", "reason", "from", "to", "delay_s"],
        "task-failed": ["task", "name", "status", "reason"],
        "event-set": ["name", "by"], "event-cleared": ["name", "by"],
        "messages-rejected": ["reason", "count", "total"],
        "run-ended": ["cancelled", "summary"],
    ]

    /// Every line of the file as a JSON object; each must parse and carry its documented fields.
    static func lines(of url: URL) throws -> [[String: Any]] {
        let text = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
        var objects: [[String: Any]] = []
        var lastTime = 0.0
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().enumerated() {
            let object = try #require(
                try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                "line \(number + 1) is not a JSON object: \(line)")
            let event = try #require(object["event"] as? String, "line \(number + 1) has no event")
            let ts = try #require(object["ts"] as? String)
            #expect(ts.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil, "ts \(ts)")
            let t = try #require(object["t"] as? Double)
            #expect(t >= lastTime, "line \(number + 1): t goes back from \(lastTime) to \(t)")
            lastTime = t
            let expected = try #require(Self.fields[event], "line \(number + 1): unknown event \(event)")
            for field in expected { #expect(object[field] != nil, "\(event) without \(field): \(line)") }
            if let worker = object["worker"] as? [String: Any] {
                for field in ["id", "name", "host", "pid", "threads"] {
                    #expect(worker[field] != nil, "\(event)'s worker without \(field)")
                }
            }
            objects.append(object)
        }
        return objects
    }

    /// Worker processes the pool log says joined and have not been lost or left since.
    static func liveWorkerPids(in lines: [[String: Any]]) -> Set<Int32> {
        var live: Set<Int32> = []
        for line in lines {
            guard let pid = (line["worker"] as? [String: Any])?["pid"] as? Int else { continue }
            switch line["event"] as? String {
            case "worker-joined", "worker-back": live.insert(Int32(pid))
            case "worker-lost", "worker-left": live.remove(Int32(pid))
            default: break
            }
        }
        return live
    }

    @Test(
        "chaos run: the pool log names each killed process, and each task sent again, from the dead process to the one that ended it"
    )
    func chaos() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let count = 8_000
        let input = try writeTaskFile((1...count).map { _ in #"{"task": "sleep", "args": {"ms": 1}}"# }, in: directory)
        let poolLog = directory.appendingPathComponent("pool.jsonl")
        let worker = try TestProcess("worker", ["--ipc", directory.path, "--processes", "4"], in: directory)
        defer { worker.stop() }
        let producer = try TestProcess(
            "producer",
            [
                "--ipc", directory.path, "--input", input.path, "--output", "jsonl", "--wait-workers", "4",
                "--pool-log", poolLog.path,
            ], in: directory)
        defer { producer.stop() }

        // Every 300 ms a process the pool log shows at work is killed, until most tasks are done
        // (a kill at the very end could beat its own report).
        var killed: Set<Int32> = []
        var generator = SystemRandomNumberGenerator()
        while producer.waitForExit(timeout: 0.3, killOnTimeout: false) == nil {
            guard producer.stdout.utf8.count(where: { $0 == UInt8(ascii: "\n") }) < count * 3 / 4 else { continue }
            let live = Self.liveWorkerPids(in: (try? Self.lines(of: poolLog)) ?? []).subtracting(killed)
            guard let pid = live.randomElement(using: &generator) else { continue }
            if kill(pid, SIGKILL) == 0 { killed.insert(pid) }
        }
        #expect(producer.waitForExit() == 0, "\(producer.stderr.suffix(3_000))")
        #expect(killed.count >= 3, "the run lasted long enough to kill some workers")

        let lines = try Self.lines(of: poolLog)
        #expect(lines.first?["event"] as? String == "run-started")
        #expect(lines.last?["event"] as? String == "run-ended")
        #expect(lines.first?["pid"] as? Int == Int(producer.pid))
        func events(_ name: String) -> [[String: Any]] { lines.filter { $0["event"] as? String == name } }
        func pid(_ line: [String: Any], _ key: String = "worker") -> Int32? {
            ((line[key] as? [String: Any])?["pid"] as? Int).map(Int32.init)
        }

        // Each killed process: one worker-lost line with its pid, dead by signal 9.
        let deaths = events("worker-lost")
        for victim in killed {
            let its = deaths.filter { pid($0) == victim }
            #expect(its.count == 1, "pid \(victim) killed: \(its.count) worker-lost lines")
            #expect(its.first?["cause"] as? String == "died" && its.first?["signal"] as? Int == 9)
        }
        #expect(Set(deaths.compactMap { pid($0) }) == killed, "no other process is reported lost")

        // Each task sent again: one line per redelivery, as many as the summary counts, every one
        // that followed a death naming the dead process as its source.
        let again = events("task-redelivered")
        let summary = try #require(lines.last?["summary"] as? [String: Any])
        #expect(again.count == summary["redeliveries"] as? Int)
        let printed = producer.stderr.firstMatch(of: /(\d+) sent again/).flatMap { Int($0.1) } ?? 0
        #expect(again.count == printed, "the pool log and the Summary line agree")
        #expect(!again.isEmpty, "killed processes held tasks")
        let afterDeaths = again.filter { $0["reason"] as? String == "worker-lost" }
        #expect(afterDeaths.allSatisfy { pid($0, "from").map(killed.contains) == true })
        let requeued = deaths.reduce(0) { $0 + ($1["requeued"] as? Int ?? 0) }
        // A task a dead process held is sent again once, unless the result it had already sent
        // arrives first (it was sent there, so it may end the task): then it ends with that.
        #expect(afterDeaths.count <= requeued, "no more redeliveries after deaths than tasks requeued")
        let resends = afterDeaths.compactMap { line in (line["task"] as? Int).map { "\($0)/\(pid(line, "from") ?? 0)" }
        }
        #expect(Set(resends).count == resends.count, "each task sent again once per death")
        // The result of a task sent again came from the process it was last sent to.
        let outcomes = Dictionary(try parseOutcomes(producer.stdout).map { ($0.id, $0) }) { first, _ in first }
        #expect(outcomes.count == count)
        var lastSentTo: [UInt64: Int32] = [:]
        for line in afterDeaths {
            if let task = line["task"] as? Int, let to = pid(line, "to") { lastSentTo[UInt64(task)] = to }
        }
        for (task, to) in lastSentTo
        where again.filter({ $0["task"] as? Int == Int(task) }).count
            == afterDeaths.filter({ $0["task"] as? Int == Int(task) }).count
        {
            #expect(outcomes[task]?.pid == to, "task \(task) was last sent to \(to)")
        }
        // Restarted processes say so once their supervisor's count reaches them.
        let joined = Set(events("worker-joined").compactMap { pid($0) })
        #expect(events("process-restarted").allSatisfy { pid($0).map(joined.contains) == true })
        print(
            "pool log figures: \(lines.count) lines, \(killed.count) kills, \(again.count) redeliveries, "
                + "\(events("process-restarted").count) restarts seen")
        #expect(worker.waitForExit(timeout: 30) == 0)
    }

    @Test("events set and cleared, a time-limit kill, and garbage on the results socket are in the pool log")
    func eventsTimeLimitAndRejections() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = try writeTaskFile(
            [
                #"{"task": "set-event", "args": {"event": "go"}}"#,
                #"{"task": "sleep", "args": {"ms": 3000}, "time_limit": 0.5}"#,
                #"{"task": "wait-event", "args": {"event": "go", "timeout": 5}}"#,
            ], in: directory)
        let poolLog = directory.appendingPathComponent("pool.jsonl")
        let producer = try TestProcess(
            "producer",
            [
                "--ipc", directory.path, "--input", input.path, "--output", "jsonl", "--local-workers", "2",
                "--max-attempts", "1", "--pool-log", poolLog.path, "--set-event", "early",
            ], in: directory)
        defer { producer.stop() }
        #expect(producer.waitForStderr(containing: "joined from"), "\(producer.stderr)")
        // Garbage from a raw PUSH socket on the results endpoint.
        let context = try Context()
        let raw = try Socket(context, .push)
        try raw.setLinger(milliseconds: 2_000)
        try raw.connect(PoolEndpoints.ipc(directory: directory.path).results)
        for _ in 0..<25 { _ = try raw.send([0xFF, 0x00, 0x01]) }
        #expect(producer.waitForStderr(containing: "rejected a message"), "\(producer.stderr)")
        #expect(producer.waitForExit() == 1, "the overrun task fails: \(producer.stderr)")
        let lines = try PoolLogTests.lines(of: poolLog)
        func events(_ name: String) -> [[String: Any]] { lines.filter { $0["event"] as? String == name } }
        #expect(
            events("event-set").contains {
                $0["name"] as? String == "go" && ($0["by"] as? String)?.hasPrefix("Worker-") == true
            })
        #expect(events("event-set").contains { $0["name"] as? String == "early" && $0["by"] as? String == "producer" })
        let overrun = try #require(events("worker-lost").first { $0["cause"] as? String == "time-limit" })
        #expect(overrun["task"] as? Int == 2)
        #expect(events("task-failed").contains { $0["task"] as? Int == 2 && $0["status"] as? String == "time-limit" })
        #expect(events("worker-left").count == events("worker-joined").count - events("worker-lost").count)
        let rejected = events("messages-rejected").filter { $0["reason"] as? String == "malformed" }
        #expect(
            rejected.reduce(0) { $0 + ($1["count"] as? Int ?? 0) } == 25,
            "\(events("messages-rejected")) \(producer.stderr)")
        #expect(rejected.allSatisfy { ($0["example"] as? String)?.hasPrefix("rejected a message") == true })
        let ended = try #require(events("run-ended").first?["summary"] as? [String: Any])
        #expect(ended["failed"] as? Int == 1 && ended["tasks"] as? Int == 3)
        print("pool log of a small run:\n" + ((try? String(contentsOf: poolLog, encoding: .utf8)) ?? ""))
    }

    @Test("a pool log that cannot be opened stops the run before it starts, with the reason and exit status 74")
    func unwritable() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let producer = try TestProcess(
            "producer",
            [
                "--ipc", directory.path, "--demo", "--pool-log",
                directory.appendingPathComponent("no/such/dir/log").path,
            ],
            in: directory)
        defer { producer.stop() }
        #expect(producer.waitForExit() == 74)
        #expect(producer.stderr.contains("cannot open the pool log"), "\(producer.stderr)")
        #expect(producer.stderr.contains("No such file or directory"))
    }
}
