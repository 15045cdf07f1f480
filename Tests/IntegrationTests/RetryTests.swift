import Foundation
import Testing
import WorkerPool

/// `--retries` with real workers: the built-in `fail-first` task fails its first attempts (it
/// reads the attempt number the producer sends with each try).
@Suite("Retries", .serialized, .timeLimit(.minutes(3)))
struct RetryTests {
    static func failFirst(_ times: Int, retries: Int? = nil) -> String {
        #"{"task": "fail-first", "args": {"times": \#(times)}"# + (retries.map { #", "retries": \#($0)"# } ?? "") + "}"
    }

    static func multiply(_ a: Int) -> String { #"{"task": "multiply", "args": {"a": \#(a), "b": 2}}"# }

    /// Runs a producer with `--local-workers` over `lines` and waits for it to exit.
    static func run(
        _ lines: [String], workers: Int = 1, _ options: [String], in directory: URL
    ) throws -> (status: Int32?, stdout: String, stderr: String) {
        let input = try writeTaskFile(lines, in: directory)
        let producer = try TestProcess(
            "producer",
            ["--ipc", directory.path, "--input", input.path, "--local-workers", "\(workers)"] + options, in: directory)
        defer { producer.stop() }
        let status = producer.waitForExit()
        return (status, producer.stdout, producer.stderr)
    }

    /// The workers each attempt of task `id` failed on, in attempt order, from the producer's log.
    static func failedOn(_ id: Int, in stderr: String) -> [String] {
        stderr.matches(of: /task (\d+) \(fail-first\) attempt (\d+) of \d+ failed on (Worker-\d+)/)
            .filter { Int($0.1) == id }.sorted { Int($0.2) ?? 0 < Int($1.2) ?? 0 }.map { String($0.3) }
    }

    @Test("a task that fails twice then succeeds: three attempts, one outcome, journaled once")
    func failTwiceThenSucceed() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let journal = directory.appendingPathComponent("run.journal")
        let lines = [Self.failFirst(2)] + (1...5).map(Self.multiply)
        let run = try Self.run(
            lines, ["--retries", "2", "--retry-backoff", "0.05", "--output", "jsonl", "--journal", journal.path],
            in: directory)
        #expect(run.status == 0, "\(run.stderr)")
        let outcomes = try parseOutcomes(run.stdout)
        #expect(outcomes.map(\.id).sorted() == Array(1...6), "each task ends once")
        let flaky = try #require(outcomes.first { $0.id == 1 })
        #expect(flaky.status == "ok" && flaky.attempts == 3 && flaky.deliveries == nil)
        #expect(flaky.result?["attempt"] == .number(3), "the worker saw the retry's attempt number")
        #expect(outcomes.filter { $0.id != 1 }.allSatisfy { $0.status == "ok" && $0.attempts == nil })
        #expect(Self.failedOn(1, in: run.stderr).count == 2, "\(run.stderr)")
        #expect(run.stderr.contains("2 failed attempts retried"))
        let recorded = try journalOutcomes(journal)
        #expect(recorded.filter { $0.id == 1 }.map(\.attempts) == [3], "the journal holds the final outcome only")
        #expect(recorded.count == 6)

        // Resumed: every task ended, so none runs again.
        let again = try Self.run(
            lines, ["--retries", "2", "--retry-backoff", "0.05", "--output", "jsonl", "--journal", journal.path],
            in: directory)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.isEmpty && again.stderr.contains("6 already done"), "\(again.stderr)")
    }

    @Test(
        "a task that always fails ends after --retries + 1 attempts with its last error; permanent failures are not retried"
    )
    func alwaysFails() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let lines = [
            Self.failFirst(100), Self.failFirst(100, retries: 0), #"{"task": "no-such-task", "args": {}}"#,
            #"{"task": "fail-first", "args": {"times": "two"}}"#,
        ]
        let run = try Self.run(
            lines, ["--retries", "2", "--retry-backoff", "0.02", "--output", "jsonl"], in: directory)
        #expect(run.status == 1, "\(run.stderr)")
        let outcomes = Dictionary(uniqueKeysWithValues: try parseOutcomes(run.stdout).map { ($0.id, $0) })
        #expect(outcomes.count == 4)
        #expect(outcomes[1]?.status == "failed" && outcomes[1]?.attempts == 3)
        #expect(outcomes[1]?.error == "attempt 3 of fail-first 100 fails on Worker-1", "the last attempt's error")
        #expect(outcomes[2]?.status == "failed" && outcomes[2]?.attempts == nil, "\"retries\": 0 wins over --retries")
        #expect(outcomes[3]?.status == "unknown-task" && outcomes[3]?.attempts == nil)
        #expect(outcomes[4]?.status == "bad-arguments" && outcomes[4]?.attempts == nil)
        #expect(Self.failedOn(1, in: run.stderr).count == 2)

        let human = try Self.run([Self.failFirst(100)], ["--retries", "1", "--retry-backoff", "0.02"], in: directory)
        #expect(human.status == 1)
        #expect(
            human.stdout
                == "Failed: task 1 (fail-first) failed: attempt 2 of fail-first 100 fails on Worker-1 (after 2 attempts)\n"
        )
    }

    @Test("a time limit is a failure to retry: with --max-attempts 1 each overrun is an attempt")
    func timeLimitRetried() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let lines = [#"{"task": "sleep", "args": {"ms": 60000}, "time_limit": 0.3}"#, Self.multiply(1)]
        let run = try Self.run(
            lines, workers: 2,
            ["--retries", "1", "--retry-backoff", "0.05", "--max-attempts", "1", "--output", "jsonl"], in: directory)
        #expect(run.status == 1, "\(run.stderr)")
        let outcomes = Dictionary(uniqueKeysWithValues: try parseOutcomes(run.stdout).map { ($0.id, $0) })
        #expect(outcomes[1]?.status == "time-limit" && outcomes[1]?.attempts == 2, "\(run.stdout)")
        #expect(outcomes[2]?.status == "ok")
        #expect(run.stderr.contains("task 1 (sleep) attempt 1 of 2 failed on Worker-"), "\(run.stderr)")
    }

    @Test("with two workers each retry goes to the other one")
    func retriesPreferAnotherWorker() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let run = try Self.run(
            [Self.failFirst(3)], workers: 2, ["--retries", "3", "--retry-backoff", "0.05", "--output", "jsonl"],
            in: directory)
        #expect(run.status == 0, "\(run.stderr)")
        let outcome = try #require(try parseOutcomes(run.stdout).first)
        #expect(outcome.status == "ok" && outcome.attempts == 4)
        let workers = Self.failedOn(1, in: run.stderr) + [outcome.worker ?? "?"]
        #expect(workers.count == 4, "\(run.stderr)")
        #expect(zip(workers, workers.dropFirst()).allSatisfy { $0 != $1 }, "attempts alternate: \(workers)")
    }

    @Test("Ctrl-C while a task waits for its retry: it ends cancelled once, is not journaled, and runs on resume")
    func cancelledWhileWaiting() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let journal = directory.appendingPathComponent("run.journal")
        let input = try writeTaskFile([Self.failFirst(1)] + (1...3).map(Self.multiply), in: directory)
        let producer = try TestProcess(
            "producer",
            [
                "--ipc", directory.path, "--input", input.path, "--local-workers", "1", "--retries", "1",
                "--retry-backoff", "600", "--output", "jsonl", "--journal", journal.path,
            ], in: directory)
        defer { producer.stop() }
        #expect(producer.waitForStdout(lines: 3), "\(producer.stderr)")
        #expect(producer.waitForStderr(containing: "retrying in"), "\(producer.stderr)")
        kill(producer.pid, SIGINT)
        #expect(producer.waitForExit() == 130, "\(producer.stderr)")
        let outcomes = try parseOutcomes(producer.stdout)
        #expect(outcomes.map(\.id).sorted() == [1, 2, 3, 4], "each task ends once")
        #expect(outcomes.first { $0.id == 1 }?.status == "cancelled")
        #expect(try journalOutcomes(journal).map(\.id).sorted() == [2, 3, 4], "a cancelled task is not journaled")

        let resumed = try TestProcess(
            "producer",
            [
                "--ipc", directory.path, "--input", input.path, "--local-workers", "1", "--retries", "1",
                "--retry-backoff", "0.05", "--output", "jsonl", "--journal", journal.path,
            ], in: directory)
        defer { resumed.stop() }
        #expect(resumed.waitForExit() == 0, "\(resumed.stderr)")
        let rerun = try parseOutcomes(resumed.stdout)
        #expect(rerun.map(\.id) == [1] && rerun.first?.status == "ok" && rerun.first?.attempts == 2)
        #expect(try journalOutcomes(journal).map(\.id).sorted() == [1, 2, 3, 4])
    }
}
