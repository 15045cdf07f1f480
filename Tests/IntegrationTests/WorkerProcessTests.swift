import Foundation
import Testing
import WorkerPool

/// The worker's own process management: threads, the supervisor, signals.
@Suite("Worker processes", .serialized, .timeLimit(.minutes(2)))
struct WorkerProcessTests {
    @Test("--threads 2 runs two tasks of one process at once: one task releases the other")
    func threadsRunConcurrently() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("tasks.jsonl")
        // With one thread the first task would hold it for 60 s and time out unset.
        try """
        {"task": "wait-event", "args": {"event": "released", "timeout": 60}}
        {"task": "set-event", "args": {"event": "released"}}

        """.write(to: input, atomically: true, encoding: .utf8)
        let producer = try TestProcess(
            "producer",
            [
                "--ipc", directory.path, "--input", input.path, "--output", "jsonl", "--local-workers", "1",
                "--worker-threads", "2",
            ], in: directory)
        defer { producer.stop() }
        #expect(producer.waitForExit() == 0, "\(producer.stderr)")
        let outcomes = Dictionary(uniqueKeysWithValues: try parseOutcomes(producer.stdout).map { ($0.id, $0) })
        #expect(outcomes[1]?.result?["is_set"] == .bool(true))
        #expect(outcomes[1]?.pid == outcomes[2]?.pid, "both ran in the one worker process")
    }

    @Test("the supervisor restarts a worker process killed with SIGKILL, and the pool then works")
    func supervisorRestarts() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let worker = try TestProcess(
            "worker", ["--ipc", directory.path, "--processes", "2", "--log-level", "debug"], in: directory)
        defer { worker.stop() }
        #expect(worker.waitForStderr(containing: "started Worker-2 (pid "))
        let started = try #require(
            worker.stderr.firstMatch(of: /started Worker-1 \(pid (\d+)\)/).flatMap { Int32($0.1) })
        #expect(kill(started, SIGKILL) == 0)
        #expect(worker.waitForStderr(containing: "Worker-1 (pid \(started)) died with signal 9"), "\(worker.stderr)")
        #expect(worker.waitForStderr(containing: "restarting"))

        let input = try writeTaskFile(
            (1...100).map { #"{"task": "multiply", "args": {"a": \#($0), "b": 1}}"# }, in: directory)
        let producer = try TestProcess(
            "producer", ["--ipc", directory.path, "--input", input.path, "--output", "jsonl", "--wait-workers", "2"],
            in: directory)
        defer { producer.stop() }
        #expect(producer.waitForExit() == 0, "\(producer.stderr)")
        let outcomes = try parseOutcomes(producer.stdout)
        #expect(Set(outcomes.map(\.id)) == Set(1...100))
        #expect(Set(outcomes.compactMap(\.worker)) == ["Worker-1", "Worker-2"])
        #expect(!outcomes.contains { $0.pid == started }, "the killed process ran nothing")
        #expect(worker.waitForExit(timeout: 30) == 0)
    }

    @Test("SIGTERM makes every worker process log Exiting and exit 0, leaving none behind")
    func sigterm() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let worker = try TestProcess(
            "worker", ["--ipc", directory.path, "--processes", "3", "--log-level", "debug"], in: directory)
        defer { worker.stop() }
        #expect(worker.waitForStderr(containing: "[INFO/Worker-3] child process calling self.run()"))
        #expect(worker.waitForStderr(containing: "[INFO/Worker-1] child process calling self.run()"))
        #expect(worker.waitForStderr(containing: "[INFO/Worker-2] child process calling self.run()"))
        let children = worker.stderr.matches(of: /started Worker-\d \(pid (\d+)\)/).compactMap { Int32($0.1) }
        #expect(children.count == 3)
        kill(worker.pid, SIGTERM)
        #expect(worker.waitForExit(timeout: 30) == 0, "\(worker.stderr)")
        for name in ["Worker-1", "Worker-2", "Worker-3"] {
            #expect(worker.stderr.contains("[INFO/\(name)] \(name): Exiting"))
            #expect(worker.stderr.contains("[INFO/\(name)] process exiting with exitcode 0"))
        }
        for pid in children { #expect(!processExists(pid)) }
    }

    @Test("--health-file: waiting without a producer, connected during a run, stale once a process is stuck")
    func healthFile() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let health = directory.appendingPathComponent("health").path
        let worker = try TestProcess(
            "worker", ["--ipc", directory.path, "--processes", "2", "--health-file", health, "--log-level", "debug"],
            in: directory)
        defer { worker.stop() }
        func state() -> String { (try? String(contentsOfFile: health, encoding: .utf8)) ?? "" }
        func age() -> Double {
            let modified = (try? FileManager.default.attributesOfItem(atPath: health))?[.modificationDate] as? Date
            return modified.map { Date().timeIntervalSince($0) } ?? .infinity
        }
        func waitFor(_ condition: () -> Bool, timeout: Double) -> Bool {
            let deadline = Date(timeIntervalSinceNow: timeout)
            while Date() < deadline {
                if condition() { return true }
                usleep(100_000)  // polling a file the worker rewrites every second
            }
            return condition()
        }
        #expect(waitFor({ state() == "waiting\n" }, timeout: 20), "no producer yet: \(state())")

        let input = try writeTaskFile((1...4).map { _ in #"{"task": "sleep", "args": {"ms": 3000}}"# }, in: directory)
        let producer = try TestProcess(
            "producer", ["--ipc", directory.path, "--input", input.path, "--output", "jsonl", "--keep-workers"],
            in: directory)
        defer { producer.stop() }
        #expect(waitFor({ state() == "connected\n" }, timeout: 20), "during the run: \(state())")
        #expect(age() < 3)

        // One process stops answering: the summary is no longer rewritten, so the file goes stale.
        let child = try #require(
            worker.stderr.firstMatch(of: /started Worker-1 \(pid (\d+)\)/).flatMap { Int32($0.1) })
        #expect(kill(child, SIGSTOP) == 0)
        defer { kill(child, SIGCONT) }
        #expect(waitFor({ age() > 3 }, timeout: 20), "stale after a process got stuck (age \(age()) s)")
        kill(child, SIGCONT)
        #expect(waitFor({ age() < 2 }, timeout: 20), "fresh again once it runs (age \(age()) s)")
        #expect(producer.waitForExit(timeout: 60) == 0, "\(producer.stderr)")
    }
}
