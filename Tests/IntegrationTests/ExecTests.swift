import Foundation
import Testing
import WorkerPool

/// One line of `producer exec --output jsonl`.
struct ExecLine: Decodable {
    var job: UInt64
    var status: String
    var error: String?
    var argv: [String]?
    var shell: String?
    var pid: Int32?
    var exitCode: Int32?
    var signal: Int32?
    var stdout: String?
    var stdoutEncoding: String?
    var stdoutBytes: Int?
    var stdoutTruncated: Bool?
    var stderr: String?
    var runSeconds: Double?
    var worker: String?
    var workerPID: Int32?
    var attempts: Int?

    enum CodingKeys: String, CodingKey {
        case job, status, error, argv, shell, pid, signal, stdout, stderr, worker, attempts
        case exitCode = "exit_code"
        case stdoutEncoding = "stdout_encoding"
        case stdoutBytes = "stdout_bytes"
        case stdoutTruncated = "stdout_truncated"
        case runSeconds = "run_s"
        case workerPID = "worker_pid"
    }

    static func parse(_ text: String) throws -> [ExecLine] {
        try text.split(separator: "\n").map { try JSONDecoder().decode(ExecLine.self, from: Data($0.utf8)) }
    }
}

/// Ports the system picks, on loopback.
let loopbackEndpoints = [
    "--tasks", "tcp://127.0.0.1:*", "--results", "tcp://127.0.0.1:*", "--events", "tcp://127.0.0.1:*",
]

/// Waits until `condition` holds, for at most `timeout` seconds.
func eventually(timeout: Double = 10, _ condition: () -> Bool) -> Bool {
    let deadline = Date(timeIntervalSinceNow: timeout)
    while Date() < deadline {
        if condition() { return true }
        usleep(20_000)
    }
    return condition()
}

/// The pids (one per line) a command wrote into `url`.
func pids(in url: URL) -> [Int32] {
    ((try? String(contentsOf: url, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { Int32($0) }
}

/// `producer exec` and the `exec` task, with real worker processes running real programs.
@Suite("Running programs (exec)", .serialized, .timeLimit(.minutes(3)))
struct ExecTests {
    /// Runs `producer [producerArguments] exec [execArguments]` on `lines`, and waits for it.
    static func runExec(
        lines: [String], producer producerArguments: [String] = ["--local-workers", "2"],
        exec execArguments: [String], output: String = "jsonl", in directory: URL, timeout: Double = 90
    ) throws -> (TestProcess, Int32?) {
        let input = directory.appendingPathComponent("lines-\(UUID().uuidString.prefix(6)).txt")
        try writeLines(lines, to: input)
        let producer = try TestProcess(
            "producer",
            loopbackEndpoints + ["--input", input.path, "--output", output, "--progress", "never"]
                + producerArguments + ["exec"] + execArguments, in: directory)
        return (producer, producer.waitForExit(timeout: timeout))
    }

    @Test("--retries runs a job that fails twice again until it succeeds: three runs, one outcome")
    func retries() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // Each job counts its runs in a file of its own and succeeds on the third.
        let counters = (1...4).map { directory.appendingPathComponent("runs-\($0)").path }
        let (producer, status) = try Self.runExec(
            lines: counters,
            producer: ["--local-workers", "2", "--retries", "2", "--retry-backoff", "0.05"],
            exec: [
                "--", "sh", "-c", #"n=$(cat "$1" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$1"; [ $n -ge 3 ]"#,
                "sh",
                "{}",
            ], in: directory)
        defer { producer.stop() }
        #expect(status == 0, "every job succeeded in the end: \(producer.stderr)")
        let jobs = try ExecLine.parse(producer.stdout)
        #expect(jobs.count == 4, "one outcome per job")
        #expect(jobs.allSatisfy { $0.status == "ok" && $0.attempts == 3 }, "\(producer.stdout)")
        for path in counters {
            #expect((try? String(contentsOfFile: path, encoding: .utf8)) == "3\n", "ran exactly three times")
        }
    }

    @Test("success, a failing exit code, death by a signal, binary and oversized output: each job's outcome says so")
    func outcomes() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (producer, status) = try Self.runExec(
            lines: [
                "echo hello; echo warn >&2", "exit 3", "kill -SEGV $$", #"printf '\377\376\000'"#,
                "head -c 3000000 /dev/zero | tr '\\0' y",
            ], exec: ["--", "sh", "-c", "{}"], in: directory)
        defer { producer.stop() }
        #expect(status == 1, "a failed job makes the exit status 1: \(producer.stderr)")
        let jobs = Dictionary(uniqueKeysWithValues: try ExecLine.parse(producer.stdout).map { ($0.job, $0) })
        #expect(jobs.count == 5)
        #expect(jobs[1]?.status == "ok" && jobs[1]?.exitCode == 0)
        #expect(jobs[1]?.stdout == "hello\n" && jobs[1]?.stderr == "warn\n")
        #expect(jobs[1]?.argv == ["sh", "-c", "echo hello; echo warn >&2"], "argv, not a shell line")
        #expect(jobs[2]?.status == "failed" && jobs[2]?.exitCode == 3 && jobs[2]?.error == "exit code 3")
        #expect(jobs[3]?.status == "failed" && jobs[3]?.signal == 11 && jobs[3]?.exitCode == nil)
        #expect(jobs[3]?.error?.contains("SIGSEGV") == true)
        #expect(jobs[4]?.status == "ok" && jobs[4]?.stdoutEncoding == "base64")
        #expect(jobs[4]?.stdout.flatMap { Data(base64Encoded: $0) } == Data([0xFF, 0xFE, 0x00]))
        #expect(jobs[5]?.status == "ok" && jobs[5]?.stdoutTruncated == true, "more than the 1 MiB cap")
        #expect(jobs[5]?.stdoutBytes == 3_000_000, "all of it was read and counted")
        #expect(jobs[5]?.stdout?.utf8.count == 1 << 20, "the cap was kept")
        #expect(producer.stderr.contains("Summary: 5 tasks, 2 failed"))
    }

    @Test("a time limit kills the command's whole process group and fails it time-limit; the worker takes the next job")
    func timeLimit() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let grandchildren = directory.appendingPathComponent("grandchildren")
        let (producer, status) = try Self.runExec(
            lines: [
                "sleep 60 & echo $! >> \(grandchildren.path); wait",
                "trap '' TERM; sleep 60 & echo $! >> \(grandchildren.path); wait; wait",
                "echo next",
            ], producer: ["--local-workers", "1", "--time-limit", "1"], exec: ["--", "sh", "-c", "{}"],
            in: directory)
        defer { producer.stop() }
        #expect(status == 1, "\(producer.stderr)")
        let jobs = Dictionary(uniqueKeysWithValues: try ExecLine.parse(producer.stdout).map { ($0.job, $0) })
        #expect(jobs[1]?.status == "time-limit" && jobs[1]?.signal == SIGTERM, "\(producer.stdout)")
        #expect(jobs[1]?.error?.contains("time limit of 1.0 s") == true)
        #expect(jobs[2]?.status == "time-limit" && jobs[2]?.signal == SIGKILL, "ignored SIGTERM: SIGKILL after grace")
        #expect(jobs[3]?.status == "ok" && jobs[3]?.stdout == "next\n")
        #expect(Set(jobs.values.compactMap(\.workerPID)).count == 1, "one worker process ran all three: it survived")
        let sleepers = pids(in: grandchildren)
        #expect(sleepers.count == 2, "both commands started a grandchild")
        for pid in sleepers {
            #expect(eventually { !processExists(pid) }, "grandchild \(pid) was killed with its group")
        }
        #expect(!producer.stderr.contains("exceeded its time limit"), "the supervisor never had to kill the process")
    }

    @Test("replacement strings {} {.} {/} {//} {/.} {#}, the line appended when none is given, and --shell quoting")
    func replacements() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let lines = ["dir/sub/a.tar.gz", "plain", "it's here.txt"]
        let (producer, status) = try Self.runExec(
            lines: lines, exec: ["--keep-order", "--", "printf", "%s|", "{}", "{.}", "{/}", "{//}", "{/.}", "{#}"],
            output: "human", in: directory)
        defer { producer.stop() }
        #expect(status == 0, "\(producer.stderr)")
        #expect(
            producer.stdout
                == "dir/sub/a.tar.gz|dir/sub/a.tar|a.tar.gz|dir/sub|a.tar|1|plain|plain|plain|.|plain|2|"
                + "it's here.txt|it's here|it's here.txt|.|it's here|3|")
        let (appended, appendedStatus) = try Self.runExec(
            lines: lines, exec: ["--keep-order", "--", "echo", "got"], output: "human", in: directory)
        defer { appended.stop() }
        #expect(appendedStatus == 0)
        #expect(appended.stdout == "got dir/sub/a.tar.gz\ngot plain\ngot it's here.txt\n")
        let (shell, shellStatus) = try Self.runExec(
            lines: lines, exec: ["--shell", "--keep-order", "--", "echo {/} | tr a-z A-Z"], output: "human",
            in: directory)
        defer { shell.stop() }
        #expect(shellStatus == 0)
        #expect(shell.stdout == "A.TAR.GZ\nPLAIN\nIT'S HERE.TXT\n", "a quote in the line cannot break the script")
    }

    @Test("--keep-order prints in input order though jobs end in reverse; without it, as they end")
    func keepOrder() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let lines = (1...6).map { "\($0)" }
        let command = ["--", "sh", "-c", "sleep 0.$((7 - $1))$((7 - $1)); echo $1", "sh", "{}"]
        let (ordered, status) = try Self.runExec(
            lines: lines, producer: ["--local-workers", "3"], exec: ["--keep-order"] + command, output: "human",
            in: directory)
        defer { ordered.stop() }
        #expect(status == 0, "\(ordered.stderr)")
        #expect(ordered.stdout == "1\n2\n3\n4\n5\n6\n")
        let (unordered, _) = try Self.runExec(
            lines: lines, producer: ["--local-workers", "3"], exec: command, output: "human", in: directory)
        defer { unordered.stop() }
        #expect(Set(unordered.stdout.split(separator: "\n")) == Set(lines.map { Substring($0) }))
        #expect(unordered.stdout != "1\n2\n3\n4\n5\n6\n", "the later lines end first")
    }

    @Test("Ctrl-C with commands running: the producer exits 130 and no command or grandchild is left")
    func interrupt() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let started = directory.appendingPathComponent("started")
        let input = directory.appendingPathComponent("lines.txt")
        try writeLines((1...4).map { "\($0)" }, to: input)
        let producer = try TestProcess(
            "producer",
            loopbackEndpoints + [
                "--input", input.path, "--local-workers", "2", "exec", "--", "sh", "-c",
                "echo $$ >> \(started.path); sleep 60 & echo $! >> \(started.path); wait",
            ], in: directory)
        defer { producer.stop() }
        #expect(eventually(timeout: 30) { pids(in: started).count >= 4 }, "two commands running: \(producer.stderr)")
        kill(producer.pid, SIGINT)
        #expect(producer.waitForExit(timeout: 30) == 130, "\(producer.stderr)")
        let running = pids(in: started)
        for pid in running { #expect(eventually { !processExists(pid) }, "pid \(pid) outlived the run") }
        #expect(producer.stderr.contains("Summary: 4 tasks"), "every job ended (cancelled): \(producer.stderr)")
    }

    @Test("exec is refused by a worker without --allow-exec (naming the flag) and outside --exec-allow")
    func refused() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let tasks = try writeTaskFile(
            [
                #"{"task": "exec", "args": {"argv": ["echo", "hi"]}}"#,
                #"{"task": "exec", "args": {"argv": ["ls", "/"]}}"#,
            ], in: directory)
        // Plain `producer --local-workers` starts workers without exec.
        let plain = try TestProcess(
            "producer", loopbackEndpoints + ["--input", tasks.path, "--output", "jsonl", "--local-workers", "1"],
            in: directory)
        defer { plain.stop() }
        #expect(plain.waitForExit() == 1)
        let refused = try parseOutcomes(plain.stdout)
        #expect(refused.count == 2 && refused.allSatisfy { $0.status == "unknown-task" })
        #expect(refused.first?.error?.contains("--allow-exec") == true, "\(plain.stdout)")

        let worker = try TestProcess(
            "worker", ["--ipc", directory.path, "--allow-exec", "--exec-allow", "echo"], in: directory)
        defer { worker.stop() }
        let producer = try TestProcess(
            "producer", ["--ipc", directory.path, "--input", tasks.path, "--output", "jsonl", "--wait-workers", "1"],
            in: directory)
        defer { producer.stop() }
        #expect(producer.waitForExit() == 1, "\(producer.stderr)")
        let outcomes = try parseOutcomes(producer.stdout).sorted { $0.id < $1.id }
        #expect(outcomes.map(\.status) == ["ok", "failed"])
        #expect(outcomes.last?.error?.contains("is not on this worker's --exec-allow list") == true)
        #expect(worker.waitForExit(timeout: 30) == 0)
    }

    @Test("--allow-exec over plaintext tcp to a producer elsewhere refuses to start, and says why")
    func plaintextRefused() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let worker = try TestProcess("worker", ["--connect", "192.0.2.10", "--allow-exec"], in: directory)
        defer { worker.stop() }
        #expect(worker.waitForExit(timeout: 30) == 64)
        #expect(worker.stderr.contains("could run any program"), "\(worker.stderr)")
        #expect(worker.stderr.contains("CURVE") && worker.stderr.contains("--allow-exec-insecure"))
    }

    @Test("bad input: empty argv, missing program, non-executable file, missing cwd, a daemon, stdin, env")
    func badInput() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let notExecutable = directory.appendingPathComponent("script.sh")
        try "echo hi\n".write(to: notExecutable, atomically: true, encoding: .utf8)
        let daemon = directory.appendingPathComponent("daemon")
        let tasks = try writeTaskFile(
            [
                #"{"task": "exec", "args": {"argv": []}}"#,
                #"{"task": "exec", "args": {"argv": ["no-such-program-zwp"]}}"#,
                #"{"task": "exec", "args": {"argv": ["\#(notExecutable.path)"]}}"#,
                #"{"task": "exec", "args": {"argv": ["ls"], "cwd": "/no/such/dir"}}"#,
                #"{"task": "exec", "args": {"shell": "sleep 60 & echo $! > \#(daemon.path); echo forked"}}"#,
                #"{"task": "exec", "args": {"argv": ["tr", "a-z", "A-Z"], "stdin": "fed in"}}"#,
                #"{"task": "exec", "args": {"shell": "echo $ZWP_X; pwd", "env": {"ZWP_X": "set"}, "cwd": "/tmp"}}"#,
                #"{"task": "exec", "args": {"argv": ["echo"], "shell": "echo"}}"#,
            ], in: directory)
        let worker = try TestProcess("worker", ["--ipc", directory.path, "--allow-exec"], in: directory)
        defer { worker.stop() }
        let producer = try TestProcess(
            "producer", ["--ipc", directory.path, "--input", tasks.path, "--output", "jsonl", "--wait-workers", "1"],
            in: directory)
        defer { producer.stop() }
        #expect(producer.waitForExit(timeout: 30) == 1, "\(producer.stderr)")
        let outcomes = Dictionary(uniqueKeysWithValues: try parseOutcomes(producer.stdout).map { ($0.id, $0) })
        #expect(outcomes.count == 8)
        #expect(outcomes[1]?.status == "bad-arguments" && outcomes[1]?.error?.contains("argv is empty") == true)
        #expect(outcomes[2]?.error?.contains("program 'no-such-program-zwp' not found in PATH") == true)
        #expect(outcomes[3]?.error?.contains("is not executable") == true)
        #expect(outcomes[4]?.error?.contains("cwd '/no/such/dir' does not exist") == true)
        #expect(outcomes[5]?.status == "ok" && outcomes[5]?.result?["stdout"] == .string("forked\n"))
        if case .number(let seconds) = outcomes[5]?.result?["run_s"] {
            #expect(seconds < 5, "the daemon holding stdout did not hold the task")
        }
        for pid in pids(in: daemon) { #expect(eventually { !processExists(pid) }, "the daemon \(pid) was killed") }
        #expect(outcomes[6]?.result?["stdout"] == .string("FED IN"))
        #expect(outcomes[7]?.result?["stdout"] == .string("set\n/tmp\n"))
        #expect(outcomes[8]?.status == "bad-arguments")
        #expect(worker.waitForExit(timeout: 30) == 0, "no task took the worker down")
    }

    @Test("--journal: a rerun with lines added runs only the new jobs, as parallel --resume")
    func journalResume() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let ran = directory.appendingPathComponent("ran")
        let journal = directory.appendingPathComponent("run.journal")
        let command = ["--", "sh", "-c", "echo $1 >> \(ran.path); [ $1 != 2 ]", "sh", "{}"]
        let arguments = ["--local-workers", "2", "--journal", journal.path]
        let (first, firstStatus) = try Self.runExec(
            lines: ["1", "2", "3"], producer: arguments, exec: command, in: directory)
        defer { first.stop() }
        #expect(firstStatus == 1, "job 2 failed: \(first.stderr)")
        let (second, secondStatus) = try Self.runExec(
            lines: ["1", "2", "3", "4", "5"], producer: arguments, exec: command, in: directory)
        defer { second.stop() }
        #expect(secondStatus == 0, "only jobs 4 and 5 ran, both ok: \(second.stderr)")
        #expect(second.stderr.contains("3 already done (journal)"), "\(second.stderr)")
        let lines = ((try? String(contentsOf: ran, encoding: .utf8)) ?? "").split(separator: "\n")
        #expect(lines.sorted() == ["1", "2", "3", "4", "5"], "each job ran once across both runs")
        #expect(try ExecLine.parse(second.stdout).map(\.job).sorted() == [4, 5])
    }

    @Test("2,000 lines of `true`: every job ends exactly once, ok")
    func manyLines() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (producer, status) = try Self.runExec(
            lines: (1...2_000).map { "\($0)" }, exec: ["--", "true", "{#}"], in: directory, timeout: 120)
        defer { producer.stop() }
        #expect(status == 0, "\(producer.stderr)")
        let jobs = try ExecLine.parse(producer.stdout)
        #expect(jobs.count == 2_000)
        #expect(Set(jobs.map(\.job)) == Set(1...2_000))
        #expect(jobs.allSatisfy { $0.status == "ok" && $0.argv?.last == "\($0.job)" })
    }

    /// A task file of one exec job that, on its first run, starts a sleeping child and writes both
    /// pids to `started`, then waits; run again, it prints `second`.
    static func jobThatWaitsOnItsFirstRun(in directory: URL) throws -> (started: URL, tasks: URL) {
        let started = directory.appendingPathComponent("started")
        let script = "echo $$ >> \(started.path); sleep 60 & echo $! >> \(started.path); wait"
        let tasks = try writeTaskFile(
            [
                #"{"task": "exec", "args": {"shell": "if [ -e \#(started.path) ]; then echo second; else \#(script); fi"}}"#
            ],
            in: directory)
        return (started, tasks)
    }

    /// A worker and a producer running ``jobThatWaitsOnItsFirstRun(in:)``, returned once the job's
    /// command and its child run.
    static func startJobThatWaits(in directory: URL) throws -> (
        started: URL, worker: TestProcess, producer: TestProcess
    ) {
        let (started, tasks) = try jobThatWaitsOnItsFirstRun(in: directory)
        let worker = try TestProcess("worker", ["--ipc", directory.path, "--allow-exec"], in: directory)
        let producer: TestProcess
        do {
            producer = try TestProcess(
                "producer",
                ["--ipc", directory.path, "--input", tasks.path, "--output", "jsonl", "--wait-workers", "1"],
                in: directory)
        } catch {
            worker.stop()
            throw error
        }
        #expect(eventually(timeout: 30) { pids(in: started).count == 2 }, "\(producer.stderr)")
        return (started, worker, producer)
    }

    @Test("a worker stopped (SIGTERM) mid-command: the command is killed and the job runs on another worker")
    func workerStopsMidCommand() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (started, first, producer) = try Self.startJobThatWaits(in: directory)
        defer { first.stop() }
        defer { producer.stop() }
        kill(first.pid, SIGTERM)
        #expect(first.waitForExit(timeout: 30) == 0, "\(first.stderr)")
        for pid in pids(in: started) { #expect(eventually { !processExists(pid) }, "pid \(pid) outlived its worker") }
        #expect(first.stderr.contains("interrupted: this worker is stopping"))
        let second = try TestProcess("worker", ["--ipc", directory.path, "--allow-exec"], in: directory)
        defer { second.stop() }
        #expect(producer.waitForExit(timeout: 30) == 0, "\(producer.stderr)")
        let outcomes = try parseOutcomes(producer.stdout)
        #expect(outcomes.count == 1 && outcomes.first?.result?["stdout"] == .string("second\n"))
    }

    @Test("a worker process killed (SIGKILL) mid-command: its supervisor kills the command's group")
    func workerKilledMidCommand() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (started, worker, producer) = try Self.startJobThatWaits(in: directory)
        defer { worker.stop() }
        defer { producer.stop() }
        let joined = producer.stderr.firstMatch(of: /Worker-1 joined from \S+ \(pid (\d+)/)
        let child = try #require(joined.flatMap { Int32($0.1) }, "\(producer.stderr)")
        kill(child, SIGKILL)
        for pid in pids(in: started) { #expect(eventually { !processExists(pid) }, "pid \(pid) outlived its worker") }
        #expect(
            producer.waitForExit(timeout: 30) == 0, "the job ran again on the restarted process: \(producer.stderr)")
        #expect(try parseOutcomes(producer.stdout).first?.result?["stdout"] == .string("second\n"))
        #expect(worker.stderr.contains("killed the process groups of 1 commands"), "\(worker.stderr)")
    }
}
