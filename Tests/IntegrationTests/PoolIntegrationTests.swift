import Foundation
import Testing
import WorkerPool
import ZeroMQ

/// The real binaries, real sockets and real worker processes, end to end.
@Suite("Pool, end to end", .serialized, .timeLimit(.minutes(2)))
struct PoolIntegrationTests {
    /// Writes `count` multiply tasks with distinct operands as JSON lines.
    func writeMultiplyTasks(_ count: Int, to url: URL) throws {
        try writeLines(
            (1...count).map { #"{"task": "multiply", "args": {"a": \#($0), "b": \#($0 % 97 + 3)}}"# }, to: url)
    }

    func expectEveryTaskOnceAndRight(_ outcomes: [OutcomeLine], count: Int) {
        #expect(outcomes.count == count)
        #expect(Set(outcomes.map(\.id)) == Set((1...UInt64(count))))
        for outcome in outcomes {
            let a = Int(outcome.id)
            let b = a % 97 + 3
            #expect(outcome.status == "ok")
            #expect(outcome.result == .string("\(a) * \(b) = \(a * b)"), "task \(outcome.id)")
        }
    }

    @Test("2,000 multiply tasks over tcp loopback with 2 worker processes: each id once, right answer, clean exit")
    func tcpRun() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("tasks.jsonl")
        try writeMultiplyTasks(2_000, to: input)
        let producer = try TestProcess(
            "producer",
            [
                "--tasks", "tcp://127.0.0.1:*", "--results", "tcp://127.0.0.1:*", "--events", "tcp://127.0.0.1:*",
                "--input", input.path, "--output", "jsonl", "--local-workers", "2",
            ], in: directory)
        defer { producer.stop() }
        #expect(producer.waitForExit() == 0, "\(producer.stderr)")

        let outcomes = try parseOutcomes(producer.stdout)
        expectEveryTaskOnceAndRight(outcomes, count: 2_000)
        let perWorker = Dictionary(grouping: outcomes, by: { $0.worker ?? "?" }).mapValues(\.count)
        #expect(Set(perWorker.keys) == ["Worker-1", "Worker-2"], "both processes took work: \(perWorker)")
        #expect(producer.stderr.contains("Summary: 2000 tasks, 0 failed"))

        // Shutdown replaced the poison pills: every worker said Exiting and exited 0, none is left.
        for name in ["Worker-1", "Worker-2"] {
            #expect(producer.stderr.contains("[INFO/\(name)] \(name): Exiting"))
            #expect(producer.stderr.contains("[INFO/\(name)] process exiting with exitcode 0"))
        }
        #expect(producer.stderr.contains("[INFO/Supervisor] process exiting with exitcode 0"))
        for pid in Set(outcomes.compactMap(\.pid)) { #expect(!processExists(pid), "worker pid \(pid) is still there") }
    }

    @Test("the same over ipc with a separately started worker that connects before the producer binds")
    func ipcRun() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("tasks.jsonl")
        try writeMultiplyTasks(2_000, to: input)
        let worker = try TestProcess("worker", ["--ipc", directory.path, "--processes", "2"], in: directory)
        defer { worker.stop() }
        let producer = try TestProcess(
            "producer", ["--ipc", directory.path, "--input", input.path, "--output", "jsonl", "--wait-workers", "2"],
            in: directory)
        defer { producer.stop() }
        #expect(producer.waitForExit() == 0, "\(producer.stderr)")
        expectEveryTaskOnceAndRight(try parseOutcomes(producer.stdout), count: 2_000)
        #expect(worker.waitForExit(timeout: 30) == 0, "\(worker.stderr)")
        #expect(worker.stderr.contains("Worker-1: Exiting") && worker.stderr.contains("Worker-2: Exiting"))
    }

    @Test("unknown task names, bad arguments and bad input lines end as failures with clear messages")
    func failures() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("tasks.jsonl")
        try """
        {"task": "multiply", "args": {"a": 2, "b": 21}}
        {"task": "divide", "args": {"a": 1, "b": 2}}
        {"task": "multiply", "args": {"a": 2}}
        this is not json
        {"task": "multiply", "args": {"a": "two", "b": 2}}

        """.write(to: input, atomically: true, encoding: .utf8)
        let producer = try TestProcess(
            "producer", ["--ipc", directory.path, "--input", input.path, "--output", "jsonl", "--local-workers", "1"],
            in: directory)
        defer { producer.stop() }
        #expect(producer.waitForExit() == 1, "any failed task makes the exit status non-zero")

        let outcomes = Dictionary(uniqueKeysWithValues: try parseOutcomes(producer.stdout).map { ($0.id, $0) })
        #expect(outcomes.count == 5)
        #expect(outcomes[1]?.status == "ok")
        #expect(outcomes[1]?.result == .string("2 * 21 = 42"))
        #expect(outcomes[2]?.status == "unknown-task")
        let known = "unknown task 'divide'; this worker knows: blob, crash, fail-first, flaky, locked, multiply"
        #expect(outcomes[2]?.error?.hasPrefix(known) == true)
        #expect(outcomes[3]?.status == "bad-arguments")
        #expect(outcomes[3]?.error == "bad arguments for 'multiply': missing field 'b'")
        #expect(outcomes[4]?.status == "bad-input")
        #expect(outcomes[4]?.error == "line 4 is not valid JSON")
        #expect(outcomes[5]?.error == "bad arguments for 'multiply': field 'a' must be an integer")
        #expect(producer.stderr.contains("Summary: 5 tasks, 4 failed"))
    }

    @Test("an event set before a worker starts is seen set by it; wait with a timeout returns false when unset")
    func eventsForLateJoiners() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("tasks.jsonl")
        try """
        {"task": "wait-event", "args": {"event": "go", "timeout": 0}}
        {"task": "wait-event", "args": {"event": "never", "timeout": 0.2}}

        """.write(to: input, atomically: true, encoding: .utf8)
        let producer = try TestProcess(
            "producer",
            [
                "--ipc", directory.path, "--input", input.path, "--output", "jsonl", "--wait-workers", "1",
                "--set-event", "go",
            ], in: directory)
        defer { producer.stop() }
        #expect(producer.waitForStderr(containing: "event 'go' is set"), "\(producer.stderr)")

        let worker = try TestProcess("worker", ["--ipc", directory.path], in: directory)
        defer { worker.stop() }
        #expect(producer.waitForExit() == 0, "\(producer.stderr)")
        let outcomes = Dictionary(uniqueKeysWithValues: try parseOutcomes(producer.stdout).map { ($0.id, $0) })
        #expect(outcomes[1]?.result?["is_set"] == .bool(true), "the late worker sees 'go' set")
        #expect(outcomes[2]?.result?["is_set"] == .bool(false))
        if case .number(let waited) = outcomes[2]?.result?["waited_s"] { #expect(waited >= 0.19) }
        #expect(worker.waitForExit(timeout: 30) == 0)
    }

    @Test("the lecture's Event demo: one task blocks until set, the other times out first")
    func lectureEventDemo() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("tasks.jsonl")
        try """
        {"task": "wait-event", "args": {"event": "e"}}
        {"task": "wait-event", "args": {"event": "e", "timeout": 0.3}}

        """.write(to: input, atomically: true, encoding: .utf8)
        let producer = try TestProcess(
            "producer",
            [
                "--ipc", directory.path, "--input", input.path, "--output", "jsonl", "--local-workers", "2",
                "--set-event", "e:1.5",
            ], in: directory)
        defer { producer.stop() }
        #expect(producer.waitForExit() == 0, "\(producer.stderr)")
        let outcomes = Dictionary(uniqueKeysWithValues: try parseOutcomes(producer.stdout).map { ($0.id, $0) })
        #expect(outcomes[1]?.result?["is_set"] == .bool(true))
        #expect(outcomes[2]?.result?["is_set"] == .bool(false))
        #expect(outcomes[1]?.worker != outcomes[2]?.worker, "the two waits ran in parallel on both workers")
    }
}

extension PoolIntegrationTests {
    @Test("tasks arriving one at a time on a pipe are each run at once, not held for a batch")
    func pausingInput() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let fifo = directory.appendingPathComponent("input").path
        #expect(mkfifo(fifo, 0o600) == 0)
        // Read-write, so opening does not wait for the reader; closing it is the end of input.
        let writer = open(fifo, O_RDWR)
        try #require(writer >= 0)
        var writerOpen = true
        defer { if writerOpen { close(writer) } }
        let producer = try TestProcess(
            "producer", ["--ipc", directory.path, "--output", "jsonl", "--local-workers", "1"], in: directory,
            stdin: URL(fileURLWithPath: fifo))
        defer { producer.stop() }
        for value in 1...3 {
            let line = Array("{\"task\": \"multiply\", \"args\": {\"a\": \(value), \"b\": 10}}\n".utf8)
            #expect(write(writer, line, line.count) == line.count)
            // The next line is written only after this one's result: a producer that waited for
            // more input before sending would never answer.
            #expect(producer.waitForStdout(lines: value, timeout: 30), "result \(value) arrived: \(producer.stderr)")
        }
        close(writer)
        writerOpen = false
        #expect(producer.waitForExit() == 0, "\(producer.stderr)")
        let outcomes = try parseOutcomes(producer.stdout)
        #expect(outcomes.map(\.result) == [.string("1 * 10 = 10"), .string("2 * 10 = 20"), .string("3 * 10 = 30")])
    }
}

@Suite("Custom worker binary", .timeLimit(.minutes(2)))
struct CustomWorkerTests {
    @Test("the README's custom worker runs its own tasks and the built-in ones")
    func customTasks() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("tasks.jsonl")
        try """
        {"task": "greet", "args": "Fancy Dan"}
        {"task": "resize", "args": {"path": "a.png", "width": 0}}
        {"task": "multiply", "args": {"a": 4, "b": 5}}

        """.write(to: input, atomically: true, encoding: .utf8)
        let producer = try TestProcess(
            "producer",
            [
                "--ipc", directory.path, "--input", input.path, "--output", "jsonl", "--local-workers", "1",
                "--worker-path", TestProcess.binDirectory.appendingPathComponent("custom-worker").path,
            ], in: directory)
        defer { producer.stop() }
        #expect(producer.waitForExit() == 1, "\(producer.stderr)")
        let outcomes = Dictionary(uniqueKeysWithValues: try parseOutcomes(producer.stdout).map { ($0.id, $0) })
        #expect(outcomes[1]?.result == .string("hello, Fancy Dan"))
        #expect(outcomes[2]?.status == "failed")
        #expect(outcomes[2]?.error == "width must be positive")
        #expect(outcomes[3]?.result == .string("4 * 5 = 20"))
    }
}
