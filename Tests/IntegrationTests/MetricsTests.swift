import Foundation
import Testing

/// `--metrics`, scraped by a real Prometheus while a real pool runs.
@Suite("Metrics, scraped by Prometheus", .serialized, .timeLimit(.minutes(3)))
struct MetricsTests {
    /// Task lines ending in several ways: ok, unknown-task, bad-arguments, bad-input.
    static func tasks(_ range: ClosedRange<Int>) -> String {
        range.map { index -> String in
            switch index % 50 {
            case 7: #"{"task": "no-such-task", "args": {}}"#
            case 13: #"{"task": "multiply", "args": {"a": "x"}}"#
            case 29: "not json"
            default: #"{"task": "multiply", "args": {"a": \#(index), "b": 3}}"#
            }
        }.joined(separator: "\n") + "\n"
    }

    /// The `http://127.0.0.1:PORT/metrics` a process logged, as `127.0.0.1:PORT`.
    static func metricsTarget(of process: TestProcess) throws -> String {
        guard process.waitForStderr(containing: "/metrics"),
            let range = process.stderr.range(
                of: #"metrics on http://127\.0\.0\.1:[0-9]+/metrics"#, options: .regularExpression)
        else { throw TestFailure("\(process.name) logged no metrics address: \(process.stderr)") }
        return String(process.stderr[range].dropFirst("metrics on http://".count).dropLast("/metrics".count))
    }

    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The metric names of an exposition's samples (`name{labels} value` or `name value`).
    static func sampleNames(_ exposition: String) -> Set<String> {
        Set(
            exposition.split(separator: "\n").filter { !$0.hasPrefix("#") }.map {
                String($0.prefix(while: { $0 != "{" && $0 != " " }))
            })
    }

    /// Every `workerpool_...` name in `text`.
    static func metricNames(in text: String) -> Set<String> {
        Set(text.matches(of: /workerpool_[a-z_]+/).map { String($0.output) })
    }

    @Test(
        "Prometheus scrapes a producer and two workers during a run; its tasks ended by status equal the run's outcomes and summary; promtool accepts the exposition"
    )
    func scrapedRun() throws {
        guard
            let promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"].first(where: {
                FileManager.default.isExecutableFile(atPath: $0)
            }), PrometheusServer.binary != nil
        else {
            Issue.record(
                "prometheus and promtool are needed (Debian's prometheus package; scripts/setup.sh installs it)")
            return
        }
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let fifo = directory.appendingPathComponent("tasks.fifo")
        #expect(mkfifo(fifo.path, 0o600) == 0)
        let linger = ["--metrics", "127.0.0.1:0", "--metrics-linger", "30"]
        let producer = try TestProcess(
            "producer",
            ["--ipc", directory.path, "--input", fifo.path, "--output", "jsonl", "--wait-workers", "2"] + linger,
            in: directory)
        defer { producer.stop() }
        // Blocks until the producer opens its end.
        guard let input = FileHandle(forWritingAtPath: fifo.path) else { throw TestFailure("cannot open the fifo") }
        var inputOpen = true
        defer { if inputOpen { try? input.close() } }
        let workers = try (1...2).map { _ in
            try TestProcess("worker", ["--ipc", directory.path, "--processes", "1"] + linger, in: directory)
        }
        defer { for worker in workers { worker.stop() } }
        let producerTarget = try Self.metricsTarget(of: producer)
        let workerTargets = try workers.map(Self.metricsTarget(of:))

        let prometheus = try PrometheusServer(
            jobs: ["producer": [producerTarget], "worker": workerTargets], in: directory)
        defer { prometheus.stop() }
        #expect(prometheus.waitUntilReady(), "\(prometheus.process.stderr)")

        // The first half; then Prometheus must have seen tasks end while the run goes on.
        input.write(Data(Self.tasks(1...500).utf8))
        let seenDuringRun = waitFor(timeout: 60) {
            (prometheus.query("sum(workerpool_tasks_ended_total)")?.first?.value ?? 0) > 0
                && prometheus.query("sum(workerpool_worker_tasks_total)")?.first.map { $0.value > 0 } == true
        }
        #expect(seenDuringRun, "no scrape saw a task end during the run: \(prometheus.process.stderr)")
        #expect(producer.process.isRunning, "the run is still going (its input is open)")

        // The exposition as Prometheus reads it, linted by promtool.
        var exposed = Set<String>()
        for target in [producerTarget] + workerTargets {
            let exposition = try #require(httpGet("http://\(target)/metrics")?.body)
            let lint = try runProgram(promtool, ["check", "metrics"], input: exposition)
            #expect(lint.status == 0, "promtool check metrics on \(target): \(lint.output)")
            exposed.formUnion(Self.sampleNames(String(decoding: exposition, as: UTF8.self)))
        }
        // The dashboard in deploy/ asks only for metrics a real run exposes.
        let dashboard = try String(
            contentsOf: Self.repository.appendingPathComponent("deploy/grafana/workerpool-dashboard.json"),
            encoding: .utf8)
        let wanted = Self.metricNames(in: dashboard)
        #expect(wanted.count >= 20, "\(wanted)")
        #expect(
            wanted.subtracting(exposed).isEmpty,
            "the dashboard names metrics nobody exposes: \(wanted.subtracting(exposed))")

        input.write(Data(Self.tasks(501...1_000).utf8))
        try input.close()
        inputOpen = false
        #expect(producer.waitForExit(timeout: 90) == 1, "some tasks fail on purpose: \(producer.stderr)")
        for worker in workers { #expect(worker.waitForExit(timeout: 60) == 0, "\(worker.stderr)") }
        // Each lingered until a scrape read its final figures.
        for process in [producer] + workers {
            #expect(!process.stderr.contains("no scrape of the final figures"), "\(process.stderr)")
        }

        // What the run says: its outcomes by status, and its summary line.
        let outcomes = try parseOutcomes(producer.stdout)
        let byStatus = Dictionary(grouping: outcomes, by: \.status).mapValues { Double($0.count) }
        #expect(byStatus.count == 4, "ok, unknown-task, bad-arguments and bad-input: \(byStatus)")
        let failedCount = outcomes.filter { $0.status != "ok" }.count
        #expect(producer.stderr.contains("Summary: 1000 tasks, \(failedCount) failed"), "\(producer.stderr)")
        #expect(outcomes.count == 1_000)

        // What Prometheus says: the last sample of each series (the targets are gone now).
        var scraped: [String: Double] = [:]
        let settled = waitFor(timeout: 30) {
            scraped = [:]
            for sample in prometheus.query(#"last_over_time(workerpool_tasks_ended_total{job="producer"}[5m])"#) ?? []
            where sample.value > 0 {
                scraped[sample.labels["status"] ?? "?"] = sample.value
            }
            return scraped == byStatus
        }
        #expect(settled, "Prometheus \(scraped) != outcomes \(byStatus)")
        let workerTotals =
            prometheus.query(
                #"sum by (result) (last_over_time(workerpool_worker_tasks_total{job="worker"}[5m]))"#) ?? []
        let workerOK = workerTotals.first { $0.labels["result"] == "ok" }?.value
        let workerFailed = workerTotals.first { $0.labels["result"] == "failed" }?.value
        // No task was sent twice in this run, so the workers ran each task that reached them once.
        #expect(!producer.stderr.contains("sent again"))
        #expect(workerOK == byStatus["ok"], "\(workerTotals)")
        #expect(workerFailed == (byStatus["unknown-task"] ?? 0) + (byStatus["bad-arguments"] ?? 0), "\(workerTotals)")
        let read = prometheus.query(#"last_over_time(workerpool_tasks_read_total{job="producer"}[5m])"#)?.first?.value
        #expect(read == 1_000)
    }
}

/// Runs `executable` with `input` on stdin; its exit status and combined output.
func runProgram(_ executable: String, _ arguments: [String], input: Data) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let stdin = Pipe()
    let stdout = Pipe()
    process.standardInput = stdin
    process.standardOutput = stdout
    process.standardError = stdout
    try process.run()
    stdin.fileHandleForWriting.write(input)
    try stdin.fileHandleForWriting.close()
    let output = stdout.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: output, as: UTF8.self))
}
