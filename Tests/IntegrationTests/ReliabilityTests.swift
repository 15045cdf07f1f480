import Foundation
import Testing
import WorkerPool

/// Nothing is lost: workers killed, tasks that crash or overrun, a producer killed and resumed.
@Suite("Reliability", .serialized, .timeLimit(.minutes(3)))
struct ReliabilityTests {
    /// The latest pid of each worker slot, from the supervisor's debug log.
    func childPids(in stderr: String) -> [Int: Int32] {
        var pids: [Int: Int32] = [:]
        for match in stderr.matches(of: /started Worker-(\d+) \(pid (\d+)\)/) {
            if let slot = Int(match.1), let pid = Int32(match.2) { pids[slot] = pid }
        }
        return pids
    }

    func expectEachOnce(_ outcomes: [OutcomeLine], ids: ClosedRange<UInt64>, _ comment: Comment? = nil) {
        let counts = Dictionary(grouping: outcomes, by: \.id).mapValues(\.count)
        let missing = Set(ids).subtracting(counts.keys).sorted()
        let unexpected = Set(counts.keys).subtracting(ids).sorted()
        let duplicated = counts.filter { $0.value > 1 }.keys.sorted()
        #expect(missing.isEmpty, "\(comment?.rawValue ?? ""): \(missing.count) missing, first \(missing.prefix(10))")
        #expect(unexpected.isEmpty, "\(comment?.rawValue ?? ""): unexpected ids \(unexpected.prefix(10))")
        #expect(
            duplicated.isEmpty,
            "\(comment?.rawValue ?? ""): \(duplicated.count) duplicated, first \(duplicated.prefix(10))")
    }

    @Test("chaos: 20,000 tasks on 4 processes, one killed with SIGKILL every 500 ms: each task ends once, as a result")
    func chaos() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = try writeTaskFile((1...20_000).map { _ in #"{"task": "sleep", "args": {"ms": 1}}"# }, in: directory)
        let worker = try TestProcess(
            "worker", ["--ipc", directory.path, "--processes", "4", "--log-level", "debug"], in: directory)
        defer { worker.stop() }
        let producer = try TestProcess(
            "producer", ["--ipc", directory.path, "--input", input.path, "--output", "jsonl", "--wait-workers", "4"],
            in: directory)
        defer { producer.stop() }

        var killed: Set<Int32> = []
        var generator = SystemRandomNumberGenerator()
        // The chaos cadence: a random child dies every 500 ms until the run ends.
        while producer.waitForExit(timeout: 0.5, killOnTimeout: false) == nil {
            let live = childPids(in: worker.stderr).values.filter { !killed.contains($0) }
            guard let pid = live.randomElement(using: &generator) else { continue }
            if kill(pid, SIGKILL) == 0 { killed.insert(pid) }
        }
        let kills = killed.count
        #expect(producer.waitForExit() == 0, "\(producer.stderr.suffix(3_000))")
        let outcomes = try parseOutcomes(producer.stdout)
        expectEachOnce(outcomes, ids: 1...20_000)
        #expect(outcomes.allSatisfy { $0.status == "ok" })
        #expect(kills >= 4, "the run lasted long enough to kill some workers")
        let restarts = worker.stderr.matches(of: /restarting Worker-\d/).count
        #expect(restarts >= kills - 1, "the supervisor restarted the killed children (\(restarts) of \(kills))")
        let summary = producer.stderr.split(separator: "\n").last { $0.hasPrefix("Summary:") } ?? ""
        print("chaos figures: 20000 tasks, \(kills) kills, \(restarts) restarts, lost 0, duplicates 0 | \(summary)")
        #expect(worker.waitForExit(timeout: 30) == 0)
    }

    @Test("a whole worker (supervisor and child) killed mid-run: its tasks complete on another worker")
    func wholeWorkerKilled() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = try writeTaskFile((1...400).map { _ in #"{"task": "sleep", "args": {"ms": 5}}"# }, in: directory)
        let doomed = try TestProcess("worker", ["--ipc", directory.path, "--log-level", "debug"], in: directory)
        defer { doomed.stop() }
        let survivor = try TestProcess("worker", ["--ipc", directory.path], in: directory)
        defer { survivor.stop() }
        let producer = try TestProcess(
            "producer",
            [
                "--ipc", directory.path, "--input", input.path, "--output", "jsonl", "--wait-workers", "2",
                "--worker-timeout", "1.5",
            ], in: directory)
        defer { producer.stop() }
        #expect(producer.waitForStdout(lines: 40), "\(producer.stderr)")
        let child = try #require(childPids(in: doomed.stderr)[1])
        // Like a machine dying: the supervisor cannot report, the child cannot say goodbye. The
        // supervisor is frozen first, so neither its report nor the child's parent-death
        // signal (a graceful exit) can race the kill.
        kill(doomed.pid, SIGSTOP)
        kill(child, SIGKILL)
        kill(doomed.pid, SIGKILL)
        #expect(producer.waitForExit() == 0, "\(producer.stderr)")
        let outcomes = try parseOutcomes(producer.stdout)
        expectEachOnce(outcomes, ids: 1...400)
        #expect(outcomes.allSatisfy { $0.status == "ok" })
        #expect(producer.stderr.contains("lost: no heartbeat"))
        #expect(outcomes.suffix(100).allSatisfy { $0.pid != child }, "the end of the run ran on the survivor")
        #expect(survivor.waitForExit(timeout: 30) == 0)
    }

    @Test("a worker frozen for a while (SIGSTOP) loses its tasks to others, and takes work again when it thaws")
    func frozenWorkerComesBack() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = try writeTaskFile((1...3_000).map { _ in #"{"task": "sleep", "args": {"ms": 2}}"# }, in: directory)
        let frozen = try TestProcess("worker", ["--ipc", directory.path, "--log-level", "debug"], in: directory)
        defer { frozen.stop() }
        let other = try TestProcess("worker", ["--ipc", directory.path], in: directory)
        defer { other.stop() }
        let producer = try TestProcess(
            "producer",
            [
                "--ipc", directory.path, "--input", input.path, "--output", "jsonl", "--wait-workers", "2",
                "--worker-timeout", "1.5",
            ], in: directory)
        defer { producer.stop() }
        #expect(producer.waitForStdout(lines: 100))
        let child = try #require(childPids(in: frozen.stderr)[1])
        kill(child, SIGSTOP)
        #expect(producer.waitForStderr(containing: "lost: no heartbeat"), "\(producer.stderr)")
        kill(child, SIGCONT)
        #expect(producer.waitForStderr(containing: "is back; it takes work again"), "\(producer.stderr)")
        #expect(producer.waitForExit() == 0, "\(producer.stderr)")
        let outcomes = try parseOutcomes(producer.stdout)
        expectEachOnce(outcomes, ids: 1...3_000)
        #expect(frozen.waitForExit(timeout: 30) == 0)
        #expect(other.waitForExit(timeout: 30) == 0)
    }

    @Test("a result waiting behind a long task still counts as held: nothing is sent again")
    func resultWaitingInBatchIsHeld() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("tasks.jsonl")
        // On one thread, the multiply result waits in the result batch while the sleep runs,
        // across more than three heartbeats.
        try writeLines(
            [#"{"task": "multiply", "args": {"a": 2, "b": 2}}"#, #"{"task": "sleep", "args": {"ms": 4500}}"#],
            to: input)
        let producer = try TestProcess(
            "producer",
            ["--ipc", directory.path, "--input", input.path, "--output", "jsonl", "--local-workers", "1"],
            in: directory)
        defer { producer.stop() }
        #expect(producer.waitForExit() == 0, "\(producer.stderr)")
        expectEachOnce(try parseOutcomes(producer.stdout), ids: 1...2)
        #expect(!producer.stderr.contains("sending it again"), "\(producer.stderr)")
    }

    @Test("a task that kills its worker is retried up to --max-attempts, then fails; the run completes")
    func poisonTasks() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("tasks.jsonl")
        var lines = (1...20).map { #"{"task": "multiply", "args": {"a": \#($0), "b": 2}}"# }
        lines.insert(#"{"task": "crash", "args": {"how": "fatal"}}"#, at: 5)
        lines.insert(#"{"task": "crash", "args": {"how": "exit"}}"#, at: 15)
        try writeLines(lines, to: input)
        let producer = try TestProcess(
            "producer",
            ["--ipc", directory.path, "--input", input.path, "--output", "jsonl", "--local-workers", "2"],
            in: directory)
        defer { producer.stop() }
        #expect(producer.waitForExit() == 1, "\(producer.stderr)")
        let outcomes = Dictionary(uniqueKeysWithValues: try parseOutcomes(producer.stdout).map { ($0.id, $0) })
        #expect(outcomes.count == 22)
        for id in [UInt64(6), 16] {
            #expect(outcomes[id]?.status == "worker-died")
            #expect(outcomes[id]?.error?.contains("died while running this task, 3 times") == true, "\(id)")
        }
        #expect(outcomes.values.filter { $0.status == "ok" }.count == 20)
        #expect(producer.stderr.contains("Summary: 22 tasks, 2 failed"))
    }

    @Test("a task over its time limit is killed and reported; the next tasks on that worker run")
    func timeLimit() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("tasks.jsonl")
        var lines = [#"{"task": "sleep", "args": {"ms": 60000}, "time_limit": 0.3}"#]
        lines += (1...10).map { #"{"task": "multiply", "args": {"a": \#($0), "b": 3}}"# }
        try writeLines(lines, to: input)
        let producer = try TestProcess(
            "producer",
            [
                "--ipc", directory.path, "--input", input.path, "--output", "jsonl", "--local-workers", "1",
                "--max-attempts", "2",
            ], in: directory)
        defer { producer.stop() }
        #expect(producer.waitForExit() == 1, "\(producer.stderr)")
        let outcomes = Dictionary(uniqueKeysWithValues: try parseOutcomes(producer.stdout).map { ($0.id, $0) })
        #expect(outcomes[1]?.status == "time-limit")
        #expect(outcomes[1]?.error == "time limit of 0.3 s exceeded (its process killed 2 of 2 times, --max-attempts)")
        #expect((2...11).allSatisfy { outcomes[$0]?.status == "ok" })
        #expect(producer.stderr.contains("exceeded its time limit of 0.3 s"))
    }

    @Test("a producer killed mid-run and restarted with --journal: both runs together output each task once")
    func journalResume() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("tasks.jsonl")
        let journal = directory.appendingPathComponent("journal.jsonl")
        try writeLines((1...3_000).map { #"{"task": "sleep", "args": {"ms": \#($0 % 3)}}"# }, to: input)
        let worker = try TestProcess("worker", ["--ipc", directory.path, "--processes", "2"], in: directory)
        defer { worker.stop() }
        let arguments = [
            "--ipc", directory.path, "--input", input.path, "--output", "jsonl", "--journal", journal.path,
            "--wait-workers", "2",
        ]
        let first = try TestProcess("producer", arguments, in: directory)
        defer { first.stop() }
        #expect(first.waitForStdout(lines: 600), "\(first.stderr)")
        kill(first.pid, SIGKILL)
        _ = first.waitForExit()
        let firstJournal = try journalOutcomes(journal).map(\.id)
        let journaledByFirst = Set(firstJournal)
        // A line cut by the kill is not an output.
        let complete = first.stdout.split(separator: "\n").filter { $0.hasSuffix("}") }.joined(separator: "\n")
        let firstOutcomes = try parseOutcomes(complete)
        #expect(firstOutcomes.count < 3_000, "the first run was cut short")
        // Each commit is printed after its fsync, in the journal's order: what the first run printed
        // is the start of what it journaled, whatever the size of a commit.
        #expect(firstOutcomes.map(\.id) == Array(firstJournal.prefix(firstOutcomes.count)), "printed in journal order")

        let second = try TestProcess("producer", arguments, in: directory)
        defer { second.stop() }
        #expect(second.waitForExit() == 0, "\(second.stderr)")
        let secondOutcomes = try parseOutcomes(second.stdout)
        // The journal holds every task exactly once: it is the durable record.
        expectEachOnce(try journalOutcomes(journal), ids: 1...3_000, "the journal")
        // Printing follows the journal's fsync, so the outputs never repeat a task; a kill between
        // an fsync and the printing of that batch can leave its lines out of the first output only.
        let printed = Dictionary(grouping: firstOutcomes + secondOutcomes, by: \.id).mapValues(\.count)
        #expect(printed.values.allSatisfy { $0 == 1 }, "no task printed twice")
        let unprinted = Set(1...3_000).subtracting(printed.keys)
        #expect(unprinted.isSubset(of: journaledByFirst), "what is missing from the outputs is in the journal")
        #expect(second.stderr.contains("already done (journal)"))
        #expect(worker.waitForExit(timeout: 30) == 0)
    }

    @Test("running workers pick up a producer restarted on the same endpoints")
    func producerRestart() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = try writeTaskFile(
            (1...200).map { #"{"task": "multiply", "args": {"a": \#($0), "b": 5}}"# }, in: directory)
        let worker = try TestProcess("worker", ["--ipc", directory.path, "--processes", "2"], in: directory)
        defer { worker.stop() }
        for run in 1...2 {
            var arguments = [
                "--ipc", directory.path, "--input", input.path, "--output", "jsonl", "--wait-workers", "2",
            ]
            if run == 1 { arguments.append("--keep-workers") }
            let producer = try TestProcess("producer", arguments, in: directory)
            defer { producer.stop() }
            #expect(producer.waitForExit() == 0, "run \(run): \(producer.stderr)")
            expectEachOnce(try parseOutcomes(producer.stdout), ids: 1...200, "run \(run)")
        }
        #expect(worker.waitForExit(timeout: 30) == 0, "the second producer's shutdown reached the workers")
    }

    @Test("--max-tasks-per-child replaces worker processes as they reach the limit")
    func maxTasksPerChild() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = try writeTaskFile(
            (1...100).map { #"{"task": "multiply", "args": {"a": \#($0), "b": 1}}"# }, in: directory)
        let worker = try TestProcess(
            "worker", ["--ipc", directory.path, "--processes", "2", "--max-tasks-per-child", "10"], in: directory)
        defer { worker.stop() }
        let producer = try TestProcess(
            "producer", ["--ipc", directory.path, "--input", input.path, "--output", "jsonl", "--wait-workers", "2"],
            in: directory)
        defer { producer.stop() }
        #expect(producer.waitForExit() == 0, "\(producer.stderr)")
        let outcomes = try parseOutcomes(producer.stdout)
        expectEachOnce(outcomes, ids: 1...100)
        #expect(Set(outcomes.compactMap(\.pid)).count >= 8, "about one process per 10 tasks")
        #expect(worker.stderr.matches(of: /reached its task limit/).count >= 6)
        #expect(worker.waitForExit(timeout: 30) == 0, "\(worker.stderr.suffix(4_000))")
    }
}

@Suite("Interrupting a run", .timeLimit(.minutes(2)))
struct InterruptTests {
    @Test("Ctrl-C: every line read ends once (done or cancelled), and the exit status is 130")
    func interrupt() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("tasks.jsonl")
        try ((1...400).map { _ in #"{"task": "sleep", "args": {"ms": 50}}"# }.joined(separator: "\n") + "\n")
            .write(to: input, atomically: true, encoding: .utf8)
        let producer = try TestProcess(
            "producer", ["--ipc", directory.path, "--input", input.path, "--output", "jsonl", "--local-workers", "1"],
            in: directory)
        defer { producer.stop() }
        #expect(producer.waitForStdout(lines: 5))
        kill(producer.pid, SIGINT)
        #expect(producer.waitForExit(timeout: 60) == 130, "\(producer.stderr)")
        let outcomes = try parseOutcomes(producer.stdout)
        let ids = outcomes.map(\.id)
        #expect(Set(ids).count == ids.count, "no task ends twice")
        #expect(Set(ids) == Set(1...UInt64(ids.count)), "the lines read, in order, all have an outcome")
        #expect(outcomes.contains { $0.status == "cancelled" })
        #expect(outcomes.allSatisfy { $0.status == "ok" || $0.status == "cancelled" })
    }
}
