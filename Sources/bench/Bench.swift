import ArgumentParser
import Foundation
import Logging
import WorkerPool

/// `bench`: the same registered tasks run four ways (threads of one process, worker processes
/// over ipc, over tcp loopback, and in network-namespace hosts), swept over processes ×
/// threads; a table on stdout, JSON and an SVG chart on request.
@main
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract:
            "Run the same tasks as threads, local worker processes (ipc, tcp) and network hosts (netns); compare.",
        discussion: """
            Modes: threads (N threads of this process call TaskRegistry.run directly: no sockets, \
            no encoding), ipc and tcp (the Producer on a thread of this process, `worker --processes P \
            --threads T` beside it), netns (one worker process in each of P network-namespace hosts from \
            deploy/netns/cluster.sh, the producer on the bridge; needs root). threads runs once per \
            total P × T. Each run: tasks/s from the first submit to the last result; p50/p99 from each \
            task's submit to its result (HdrHistogram); CPU time of this process and the workers; peak \
            RSS. Then one task in flight at a time (round trips) per mode. Progress on stderr, the table \
            on stdout.
            """)

    @Option(help: "Modes, comma-separated: threads, ipc, tcp, netns (default: all; with --quick: threads,ipc,tcp).")
    var modes: String?

    @Option(help: "Workloads, comma-separated (default: all): \(Workload.names.joined(separator: ", ")).")
    var workloads: String?

    @Option(help: "Worker processes to sweep, comma-separated (default 1,2,4; with --quick 1,2).")
    var processes: String?

    @Option(help: "Threads per worker process to sweep, comma-separated (default 1,2; with --quick 1).")
    var threads: String?

    @Option(
        help: ArgumentHelp(
            "netns: round-trip times to add, in ms, comma-separated (e.g. 0,1,10).",
            discussion: "netem delays every packet to and from each host by half of it."))
    var delay: String = "0"

    @Option(help: "Workloads for netns runs with an added delay.")
    var delayWorkloads: String = "null,cpu-100us,cpu-1ms,large-64k"

    @Option(help: "Round trips for the one-task-in-flight latency runs (default 2000; with --quick 200; 0: none).")
    var roundTrips: Int?

    @Option(help: "Multiply every workload's task count by this.")
    var scale: Double = 1

    @Flag(help: "A smoke run: small task counts and few configurations (under a minute).")
    var quick = false

    @Option(help: "Write every record, the options and machine info as JSON to this file.")
    var json: String?

    @Option(help: "Draw the charts as SVG to this file.")
    var svg: String?

    @Flag(help: "Also run Benchmarks/peers/run_peers.py (Python peers) if python3 and pyzmq are available.")
    var peers = false

    @Option(help: "The worker binary (default: `worker` beside this one).")
    var workerPath: String?

    @Option(help: "deploy/netns/cluster.sh (default: found from the working directory or the build directory).")
    var clusterScript: String?

    @Option(help: "Keep the worker processes' logs in this directory (default: a temporary one, removed).")
    var logDirectory: String?

    @Flag(help: "The producer's info logs on stderr.")
    var verbose = false

    init() {}

    static let allModes = ["threads", "ipc", "tcp", "netns"]

    var modeList: [String] { list(modes) ?? (quick ? ["threads", "ipc", "tcp"] : Self.allModes) }
    var workloadList: [Workload] { (list(workloads) ?? Workload.names).compactMap(Workload.named) }
    var processList: [Int] { (list(processes) ?? (quick ? ["1", "2"] : ["1", "2", "4"])).compactMap { Int($0) } }
    var threadList: [Int] { (list(threads) ?? (quick ? ["1"] : ["1", "2"])).compactMap { Int($0) } }
    var delayList: [Double] { (list(delay) ?? ["0"]).compactMap { Double($0) } }
    var roundTripCount: Int { roundTrips ?? (quick ? 200 : 2_000) }

    private func list(_ text: String?) -> [String]? {
        guard let text else { return nil }
        let items = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return items.isEmpty ? nil : items
    }

    func validate() throws {
        for mode in list(modes) ?? [] where !Self.allModes.contains(mode) {
            throw ValidationError("unknown mode '\(mode)'; choose from \(Self.allModes.joined(separator: ", "))")
        }
        for name in (list(workloads) ?? []) + (list(delayWorkloads) ?? []) where Workload.named(name) == nil {
            throw ValidationError("unknown workload '\(name)'; choose from \(Workload.names.joined(separator: ", "))")
        }
        for item in list(processes) ?? [] where !((Int(item) ?? 0) >= 1 && (Int(item) ?? 0) <= 256) {
            throw ValidationError("--processes takes numbers 1-256, comma-separated")
        }
        for item in list(threads) ?? [] where !((Int(item) ?? 0) >= 1 && (Int(item) ?? 0) <= 1024) {
            throw ValidationError("--threads takes numbers 1-1024, comma-separated")
        }
        for item in list(delay) ?? [] where !((Double(item) ?? -1) >= 0 && (Double(item) ?? -1) <= 10_000) {
            throw ValidationError("--delay takes round-trip times in ms (0-10000), comma-separated")
        }
        guard roundTrips.map({ $0 >= 0 }) ?? true else { throw ValidationError("--round-trips cannot be negative") }
        guard scale > 0, scale <= 1000 else { throw ValidationError("--scale must be more than 0 and at most 1000") }
    }

    /// One run of the plan.
    struct Job {
        var mode: String
        /// nil: the round-trip run.
        var workload: Workload?
        var processes: Int
        var threads: Int
        var addedRTTMs: Double = 0
        var count: Int

        var label: String {
            let name = workload?.name ?? "rtt"
            let delay = addedRTTMs > 0 ? "+\(Report.number(addedRTTMs))ms" : ""
            return "\(mode)\(delay) \(name) P=\(processes) T=\(threads)"
        }
    }

    func plan() -> [Job] {
        let modes = modeList
        let configurations = processList.flatMap { p in threadList.map { (p, $0) } }
        func count(_ workload: Workload) -> Int {
            max(1, Int((Double(quick ? workload.quickCount : workload.fullCount) * scale).rounded()))
        }
        var jobs: [Job] = []
        // Local modes, interleaved per configuration so slow drifts of a shared machine spread.
        for workload in workloadList {
            var threadTotals = Set<Int>()
            for (index, (p, t)) in configurations.enumerated() {
                var group: [Job] = []
                if modes.contains("threads") && threadTotals.insert(p * t).inserted {
                    group.append(
                        Job(mode: "threads", workload: workload, processes: 1, threads: p * t, count: count(workload)))
                }
                for mode in ["ipc", "tcp"] where modes.contains(mode) {
                    group.append(Job(mode: mode, workload: workload, processes: p, threads: t, count: count(workload)))
                }
                // Each mode goes first in turn, so no mode always follows the same one.
                let shift = group.isEmpty ? 0 : index % group.count
                jobs += group[shift...] + group[..<shift]
            }
        }
        let trips = roundTripCount
        if trips > 0 {
            for mode in ["threads", "ipc", "tcp"] where modes.contains(mode) {
                jobs.append(Job(mode: mode, workload: nil, processes: 1, threads: 1, count: trips))
            }
        }
        if modes.contains("netns") {
            let delayed = Set(list(delayWorkloads) ?? [])
            for rtt in delayList {
                for workload in workloadList where rtt == 0 || delayed.contains(workload.name) {
                    for (p, t) in configurations {
                        jobs.append(
                            Job(
                                mode: "netns", workload: workload, processes: p, threads: t, addedRTTMs: rtt,
                                count: count(workload)))
                    }
                }
                if trips > 0 {
                    // About 3 s of round trips at most.
                    let limited = rtt > 0 ? min(trips, max(20, Int(3_000 / rtt))) : trips
                    jobs.append(
                        Job(mode: "netns", workload: nil, processes: 1, threads: 1, addedRTTMs: rtt, count: limited))
                }
            }
        }
        return jobs
    }

    func run() throws {
        let began = Date()
        let loadAtStart = (ProcFS.read("/proc/loadavg") ?? "").split(separator: " ").prefix(3).compactMap { Double($0) }
        // A crash (the crashy workload) should not spend seconds symbolicating a backtrace;
        // the worker processes inherit this.
        setenv("SWIFT_BACKTRACE", "enable=no", 0)
        let stop = BenchStop()
        let signalSources = stop.install()
        defer { withExtendedLifetime(signalSources) {} }

        var logger = Logger(label: "bench-producer", factory: { StreamLogHandler.standardError(label: $0) })
        logger.logLevel = verbose ? .info : .error
        var registry = TaskRegistry.builtin
        registry.enableExec(ExecPolicy())
        let threadsRunner = ThreadsRunner(registry: registry, events: PoolEvents(), logger: logger)
        let stepsPerMicrosecond = SpinCalibration.measure(registry: registry, context: threadsRunner.context(thread: 0))
        let cores = ProcessInfo.processInfo.activeProcessorCount
        Log.line(
            "bench: \(cores) cores; spin loop \(String(format: "%.1f", stepsPerMicrosecond)) steps/µs (best of 40, this process)"
        )

        let executableDirectory = URL(fileURLWithPath: ChildProcess.currentExecutable).deletingLastPathComponent()
        let worker = workerPath ?? executableDirectory.appendingPathComponent("worker").path
        let temporary = try makeTemporaryDirectory(prefix: "bench")
        defer { try? FileManager.default.removeItem(atPath: temporary) }
        let logs = logDirectory ?? temporary
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        let packageRoot = Self.packageRoot(executableDirectory: executableDirectory)

        let jobs = plan()
        var records: [Record] = []
        var failures: [String] = []
        let pool = PoolRunner(workerPath: worker, logger: logger, stop: stop, logDirectory: logs)
        let needsWorker = jobs.contains { $0.mode != "threads" }
        let workerMissing = needsWorker && !FileManager.default.isExecutableFile(atPath: worker)
        if workerMissing {
            Log.line("bench: no worker binary at \(worker) (build it, or pass --worker-path); pool modes are skipped")
        }

        // netns: one cluster for the whole sweep, always taken down.
        var cluster: NetnsCluster?
        var netnsUnavailable: String?
        let script = clusterScript ?? "\(packageRoot)/deploy/netns/cluster.sh"
        if jobs.contains(where: { $0.mode == "netns" }) {
            netnsUnavailable = NetnsCluster.unavailableReason(script: script)
            if let reason = netnsUnavailable { Log.line("bench: skipping netns: \(reason)") }
        }
        var cleanupKey: Int?
        defer {
            cluster?.down()
            if let cleanupKey { stop.removeCleanup(cleanupKey) }
        }

        var payloadCache: (name: String, count: Int, payloads: [[UInt8]])?
        func payloads(_ workload: Workload, _ count: Int) -> [[UInt8]] {
            if let cached = payloadCache, cached.name == workload.name, cached.count == count { return cached.payloads }
            let made = workload.payloads(count: count, stepsPerMicrosecond: stepsPerMicrosecond)
            payloadCache = (workload.name, count, made)
            return made
        }
        let nullPayload = Array("{\"a\":3,\"b\":3}".utf8)

        for (number, job) in jobs.enumerated() {
            if stop.isStopped { break }
            let prefix = "[\(number + 1)/\(jobs.count)] \(job.label)"
            func skip(_ reason: String) {
                var record = Record(
                    mode: job.mode, addedRTTMs: job.mode == "netns" ? job.addedRTTMs : nil,
                    workload: job.workload?.name ?? "rtt", task: job.workload?.taskName ?? "multiply",
                    processes: job.processes, threads: job.threads, tasks: 0, succeeded: 0, failed: 0, seconds: 0,
                    tasksPerSecond: 0)
                record.note = reason
                record.skipped = true
                // One skipped row per mode and workload is enough.
                if !records.contains(where: {
                    $0.skipped == true && $0.mode == record.mode && $0.workload == record.workload
                        && $0.addedRTTMs == record.addedRTTMs
                }) {
                    records.append(record)
                }
                Log.line("\(prefix): skipped: \(reason)")
            }
            if job.mode == "threads", let reason = job.workload?.threadsSkipReason {
                skip(reason)
                continue
            }
            if job.mode != "threads" && workerMissing {
                skip("no worker binary at \(worker)")
                continue
            }
            var transport: Transport
            switch job.mode {
            case "ipc": transport = .ipc
            case "tcp": transport = .tcp
            case "netns":
                if let reason = netnsUnavailable {
                    skip(reason)
                    continue
                }
                if cluster == nil {
                    let hosts = max(processList.max() ?? 1, 1)
                    let made = NetnsCluster(script: script, hosts: hosts)
                    Log.line("bench: bringing up netns cluster \(made.tag) with \(hosts) hosts")
                    cluster = made
                    cleanupKey = stop.addCleanup { made.down() }
                    do {
                        try made.up()
                    } catch {
                        netnsUnavailable = "cluster.sh up failed: \(error)"
                        made.down()
                        skip(netnsUnavailable!)
                        continue
                    }
                }
                do {
                    try cluster!.setAddedRTT(job.addedRTTMs)
                } catch {
                    skip("cannot add \(Report.number(job.addedRTTMs)) ms of RTT: \(error)")
                    continue
                }
                transport = .netns(cluster!)
            default: transport = .tcp
            }

            Log.live("\(prefix) ...")
            let measured: Measured
            var ideal: Double?
            if let workload = job.workload {
                let items = payloads(workload, job.count)
                if job.mode == "threads" {
                    measured = threadsRunner.run(workload: workload, payloads: items, threads: job.threads, stop: stop)
                } else {
                    measured = pool.run(
                        transport: transport, taskName: workload.taskName, payloads: items, processes: job.processes,
                        threads: job.threads, label: "\(number + 1)-\(job.label)")
                }
                if let micros = workload.cpuMicros {
                    ideal = Double(min(job.processes * job.threads, cores)) * 1e6 / micros
                }
            } else if job.mode == "threads" {
                measured = threadsRunner.roundTrips(count: job.count, payload: nullPayload, stop: stop)
            } else {
                measured = pool.run(
                    transport: transport, taskName: "multiply",
                    payloads: Array(repeating: nullPayload, count: job.count), processes: 1, threads: 1,
                    oneAtATime: true, label: "\(number + 1)-\(job.label)")
            }
            let record = measured.record(
                mode: job.mode, addedRTTMs: job.mode == "netns" ? job.addedRTTMs : nil,
                workload: job.workload?.name ?? "rtt", task: job.workload?.taskName ?? "multiply",
                processes: job.processes, threads: job.threads, idealTasksPerSecond: ideal)
            records.append(record)
            let ended = record.succeeded + record.failed
            var line =
                "\(prefix): \(ended)/\(record.tasks) in \(String(format: "%.3f", record.seconds)) s, "
                + "\(Report.grouped(record.tasksPerSecond)) tasks/s, p50 \(record.p50Ms.map { Report.significant($0, 3) } ?? "-") ms, "
                + "p99 \(record.p99Ms.map { Report.significant($0, 3) } ?? "-") ms"
            if let note = record.note { line += " (\(note))" }
            Log.line(line)
            let crashy: Bool = {
                if case .crashy = job.workload?.kind { return true }
                return false
            }()
            if !stop.isStopped && (ended < record.tasks || (record.failed > 0 && !crashy)) {
                failures.append("\(job.label): \(record.note ?? "\(record.failed) tasks failed")")
            }
        }
        cluster?.down()

        var peerOutcome: Peers.Outcome?
        if peers && !stop.isStopped {
            let outcome = Peers.run(
                script: "\(packageRoot)/Benchmarks/peers/run_peers.py", quick: quick, temporaryDirectory: temporary)
            if let reason = outcome.skipped { Log.line("bench: peers: \(reason)") }
            records += outcome.records
            peerOutcome = outcome
        }

        records = Self.sorted(records)
        let table = Report.table(records)
        print(table, terminator: "")
        print(
            "# tasks/s: wall clock from the first submit to the last result. p50/p99: submit (the source emits the "
                + "task) to result; in throughput runs mostly queueing, see the rtt rows for one task in flight. "
                + "CPU s: this process + worker processes. peak RSS: this process + the sum of the workers' peaks.")
        let duration = Date().timeIntervalSince(began)
        Log.line("bench: \(records.count) records in \(String(format: "%.1f", duration)) s")

        if let json {
            var extra: [String: Any] = [
                "machine": Report.machineInfo(),
                "command": CommandLine.arguments.joined(separator: " "),
                "duration_s": (duration * 10).rounded() / 10,
                "load_average_at_start": loadAtStart,
                "spin_steps_per_us": (stepsPerMicrosecond * 100).rounded() / 100,
                "options": [
                    "modes": modeList, "workloads": workloadList.map(\.name), "processes": processList,
                    "threads": threadList, "delay_ms": delayList, "round_trips": roundTripCount, "quick": quick,
                    "scale": scale,
                ] as [String: Any],
                "workloads": Dictionary(uniqueKeysWithValues: workloadList.map { ($0.name, $0.description) }),
                "notes": [
                    "tasks_per_second": "tasks / wall seconds from the first submit to the last result",
                    "latency":
                        "submit (the source emits the task; threads: a 4096-deep queue like the producer's feed) to result; HdrHistogram, ns resolution",
                    "cpu_s":
                        "producer_cpu_s: getrusage(RUSAGE_SELF) delta of this process over the run; worker_cpu_s: getrusage(RUSAGE_CHILDREN) delta after reaping the worker supervisor (ipc, tcp), or /proc/PID/stat samples (netns)",
                    "peak_rss_mb":
                        "producer: VmHWM after resetting it (clear_refs 5) at the run's start; workers: the largest sum of live worker processes' VmHWM over /proc samples",
                    "rtt": "one task in flight: the source emits a task and waits for its result before the next",
                ],
            ]
            if peers {
                var section: [String: Any] = ["records": peerOutcome?.raw ?? []]
                if let reason = peerOutcome?.skipped ?? (stop.isStopped ? "interrupted" : nil) {
                    section["skipped"] = reason
                }
                extra["peers"] = section
            }
            if !failures.isEmpty { extra["failures"] = failures }
            try Report.json(records: records, extra: extra).write(to: URL(fileURLWithPath: json))
            Log.line("bench: wrote \(json)")
        }
        if let svg {
            let title = "zmq-worker-pool: threads vs processes vs network (\(cores) cores\(quick ? ", --quick" : ""))"
            try Chart.svg(records: records, cores: cores, title: title).write(
                toFile: svg, atomically: true, encoding: .utf8)
            Log.line("bench: wrote \(svg)")
        }
        if stop.isStopped { throw ExitCode(130) }
        if !failures.isEmpty {
            Log.line("bench: \(failures.count) runs did not end cleanly:\n  " + failures.joined(separator: "\n  "))
            throw ExitCode(1)
        }
    }

    /// Table order: local modes, then netns by added delay, then the peers; within each, by
    /// workload (round trips last), workers, mode and processes (runs themselves interleave modes).
    static func sorted(_ records: [Record]) -> [Record] {
        let modes = ["threads", "ipc", "tcp", "netns"]
        func key(_ index: Int, _ record: Record) -> [Double] {
            if record.mode == "peer" { return [1e9, Double(index)] }
            let phase = record.mode == "netns" ? 1 + (record.addedRTTMs ?? 0) : 0
            let workload = Double(Workload.names.firstIndex(of: record.workload) ?? 100)
            let mode = Double(modes.firstIndex(of: record.mode) ?? modes.count)
            return [phase, workload, Double(record.workers), mode, Double(record.processes), Double(index)]
        }
        return records.enumerated().map { (key($0.offset, $0.element), $0.element) }
            .sorted { $0.0.lexicographicallyPrecedes($1.0) }.map(\.1)
    }

    /// The package's root: the working directory if it holds Package.swift, else the directory
    /// three levels above the binary (`.build/release/bench`).
    static func packageRoot(executableDirectory: URL) -> String {
        let cwd = FileManager.default.currentDirectoryPath
        if FileManager.default.fileExists(atPath: "\(cwd)/Package.swift") { return cwd }
        var directory = executableDirectory
        for _ in 0..<4 {
            directory.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: directory.appendingPathComponent("Package.swift").path) {
                return directory.path
            }
        }
        return cwd
    }
}
