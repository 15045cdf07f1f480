import Foundation
import Histogram
import Logging
import Synchronization
import WorkerPool

/// Where the pool's workers run and how they reach the producer.
enum Transport {
    /// Worker processes on this host, `ipc://` endpoints in a temporary directory.
    case ipc
    /// Worker processes on this host, tcp loopback with ports chosen by the OS.
    case tcp
    /// One worker process per network-namespace host, tcp to the bridge's address.
    case netns(NetnsCluster)

    var mode: String {
        switch self {
        case .ipc: "ipc"
        case .tcp: "tcp"
        case .netns: "netns"
        }
    }
}

/// Worker processes started for one run.
protocol WorkerGroup: AnyObject {
    /// The processes whose descendants are the workers (for `/proc` sampling).
    var roots: [pid_t] { get }
    /// Why the workers ended before the run did, if they did.
    func endedEarly() -> String?
    /// Waits for the workers to leave (they were sent home by the producer), ending them if
    /// they do not; returns a complaint, if any.
    func stop() -> String?
}

/// `worker --processes P --threads T`, a child of this process in a process group of its own.
final class LocalWorkers: WorkerGroup {
    let child: ChildProcess
    private var status: ChildProcess.Status?

    init(worker: String, endpoints: PoolEndpoints, processes: Int, threads: Int, log: String) throws {
        let fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw BenchError("cannot open \(log): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        child = try ChildProcess.spawn(
            executable: worker,
            arguments: [
                "--tasks", endpoints.tasks, "--results", endpoints.results, "--events", endpoints.events,
                "--processes", "\(processes)", "--threads", "\(threads)", "--log-level", "warning",
                "--parent-pid", "\(getpid())", "--allow-exec",
            ],
            inherit: [(fd, 1), (fd, 2)], newProcessGroup: true)
    }

    var roots: [pid_t] { [child.pid] }

    func endedEarly() -> String? {
        guard status == nil, let ended = child.poll() else { return nil }
        status = ended
        return "the worker supervisor ended with \(ended)"
    }

    func stop() -> String? {
        var complaint: String?
        var deadline = ContinuousClock.now + .seconds(10)
        var signalled = false
        while status == nil {
            if let ended = child.poll() {
                status = ended
                if ended != .exited(0) { complaint = "workers ended with \(ended)" }
                break
            }
            if ContinuousClock.now >= deadline {
                if signalled {
                    child.signalGroup(SIGKILL)
                    status = child.wait()
                    complaint = "workers did not stop; killed"
                    break
                }
                child.signalGroup(SIGTERM)
                signalled = true
                deadline = ContinuousClock.now + .seconds(5)
            }
            usleep(5_000)
        }
        // Anything the supervisor left behind (it would only if it was killed).
        child.signalGroup(SIGKILL)
        return complaint
    }
}

/// One `worker --processes 1 --threads T` in each of hosts h1..hP of a netns cluster. Not this
/// process's children: their CPU time comes from `/proc` samples, not `getrusage`.
final class NetnsWorkers: WorkerGroup {
    private(set) var roots: [pid_t] = []
    private var gone = Set<pid_t>()

    init(cluster: NetnsCluster, worker: String, endpoints: PoolEndpoints, processes: Int, threads: Int, log: String)
        throws
    {
        for host in 1...processes {
            roots.append(
                try cluster.spawn(
                    host: host, log: log,
                    command: [
                        worker, "--tasks", endpoints.tasks, "--results", endpoints.results, "--events",
                        endpoints.events, "--processes", "1", "--threads", "\(threads)", "--host-name", "h\(host)",
                        "--log-level", "warning", "--allow-exec", "--allow-exec-insecure",
                    ]))
        }
    }

    private static func isAlive(_ pid: pid_t) -> Bool {
        guard let stat = ProcFS.stat(pid: pid) else { return false }
        return stat.state != "Z"
    }

    func endedEarly() -> String? {
        for pid in roots where !gone.contains(pid) && !Self.isAlive(pid) {
            gone.insert(pid)
            return "worker pid \(pid) in the cluster ended early"
        }
        return nil
    }

    func stop() -> String? {
        var deadline = ContinuousClock.now + .seconds(10)
        var signalled = false
        while roots.contains(where: Self.isAlive) {
            if ContinuousClock.now >= deadline {
                // spawn gives each its own session, so its pid is its process group.
                for pid in roots where Self.isAlive(pid) { kill(-pid, signalled ? SIGKILL : SIGTERM) }
                if signalled { return "netns workers did not stop; killed" }
                signalled = true
                deadline = ContinuousClock.now + .seconds(5)
            }
            usleep(5_000)
        }
        return nil
    }
}

/// State shared by one run's source thread, producer thread and the benchmark's thread.
private final class PoolRunState: @unchecked Sendable {
    let submits: SubmitTimes
    let ready = DispatchSemaphore(value: 0)
    let resultArrived = DispatchSemaphore(value: 0)
    let abandoned = Atomic<Bool>(false)
    let timedOut = Atomic<Bool>(false)
    /// Written by the source's thread before its first emit; read after the run.
    var firstSubmit: UInt64 = 0
    /// Results arrive on the producer's outcome thread, progress on its I/O thread: both take
    /// this lock around the fields below.
    let resultLock = NSLock()
    // Under `resultLock` during the run, then read after it.
    var latency = makeLatencyHistogram()
    var succeeded = 0
    var failed = 0
    var lastResult: UInt64 = 0
    var readySignalled = false
    var group: WorkerGroup?
    var note: String?

    init(count: Int) { submits = SubmitTimes(capacity: count) }

    func abandon() {
        abandoned.store(true, ordering: .releasing)
        ready.signal()
        resultArrived.signal()
    }
}

/// Runs the `Producer` in this process on a thread of its own, with worker processes
/// started for the run and sent home at its end.
struct PoolRunner {
    /// Items per chunk of the producer's input feed (`TaskFeed`, `chunkSize: 256` in
    /// `Producer.run`): a chunk reaches the producer only once full or at the end of the input.

    let workerPath: String
    let logger: Logger
    let stop: BenchStop
    let logDirectory: String
    let joinTimeoutSeconds: Double = 60
    let runTimeoutSeconds: Double = 600

    /// Runs `payloads` as tasks named `taskName` on `processes` × `threads` workers.
    ///
    /// - Parameter oneAtATime: the round-trip mode: the source emits a task, waits for its
    ///   result, then emits the next (the producer takes each item as soon as it is emitted).
    func run(
        transport: Transport, taskName: String, payloads: [[UInt8]], processes: Int, threads: Int,
        oneAtATime: Bool = false, label: String
    ) -> Measured {
        var measured = Measured()
        let count = payloads.count
        measured.tasks = count
        var configuration = ProducerConfiguration()
        var ipcDirectory: String?
        switch transport {
        case .ipc:
            do {
                ipcDirectory = try makeTemporaryDirectory(prefix: "bench-ipc")
            } catch {
                measured.note = "cannot make an ipc directory: \(error)"
                return measured
            }
            configuration.endpoints = .ipc(directory: ipcDirectory!)
        case .tcp:
            configuration.endpoints = PoolEndpoints(
                tasks: "tcp://127.0.0.1:*", results: "tcp://127.0.0.1:*", events: "tcp://127.0.0.1:*")
        case .netns(let cluster):
            let host = cluster.bridgeAddress
            configuration.endpoints = PoolEndpoints(
                tasks: "tcp://\(host):*", results: "tcp://\(host):*", events: "tcp://\(host):*")
        }
        defer { if let ipcDirectory { try? FileManager.default.removeItem(atPath: ipcDirectory) } }
        configuration.minimumWorkers = processes
        configuration.tickMilliseconds = 50
        let producer = Producer(configuration: configuration, logger: logger)
        let state = PoolRunState(count: count)
        let sampler = WorkerSampler()
        let log = "\(logDirectory)/\(label.replacingOccurrences(of: " ", with: "_")).log"
        let resultWait = oneAtATime ? 30.0 : 0

        let source = TaskSource { emit in
            // Nothing is submitted before every worker process has joined: start-up is not
            // part of the run's time.
            state.ready.wait()
            guard !state.abandoned.load(ordering: .acquiring) else { return }
            usleep(20_000)  // a worker's threads say `ready` just after its hello
            state.firstSubmit = monotonicNanos()
            for (index, payload) in payloads.enumerated() {
                state.submits[index + 1] = monotonicNanos()
                guard emit(.task(name: taskName, payload: payload)) else { return }
                if oneAtATime {
                    if state.resultArrived.wait(timeout: .now() + resultWait) == .timedOut {
                        state.timedOut.store(true, ordering: .releasing)
                        return
                    }
                    if state.abandoned.load(ordering: .acquiring) { return }
                }
            }
        }

        let processesForLabel = processes
        let started = ContinuousClock.now
        let cpuBefore = CPUUsage.now()
        ProcFS.resetPeakRSS()
        stop.setProducer(producer)
        let outcome = Mutex<Result<RunSummary, any Error>?>(nil)
        let finished = DispatchSemaphore(value: 0)
        let worker = workerPath
        let thread = Thread {
            let result = Result {
                try producer.run(
                    source: source,
                    onBound: { bound in
                        let group: WorkerGroup
                        switch transport {
                        case .ipc, .tcp:
                            group = try LocalWorkers(
                                worker: worker, endpoints: bound, processes: processes, threads: threads, log: log)
                        case .netns(let cluster):
                            group = try NetnsWorkers(
                                cluster: cluster, worker: worker, endpoints: bound, processes: processes,
                                threads: threads, log: log)
                        }
                        state.group = group
                        sampler.setRoots(group.roots)
                    },
                    onResult: { result in
                        state.resultLock.lock()
                        defer { state.resultLock.unlock() }
                        let index = Int(result.id) - 1
                        guard index >= 0, index < count else { return }
                        let now = monotonicNanos()
                        state.latency.record(now &- state.submits[index + 1])
                        if result.status == .ok {
                            state.succeeded += 1
                        } else {
                            state.failed += 1
                            if state.note == nil { state.note = "first failure: \(result.status) \(result.message)" }
                        }
                        state.lastResult = now
                        if state.succeeded + state.failed == count { sampler.sample() }
                        if oneAtATime { state.resultArrived.signal() }
                    },
                    onProgress: { progress in
                        state.resultLock.lock()
                        defer { state.resultLock.unlock() }
                        sampler.sample()
                        let elapsed = (ContinuousClock.now - started) / .seconds(1)
                        if !state.readySignalled && progress.workers >= processesForLabel {
                            state.readySignalled = true
                            state.ready.signal()
                        }
                        // Workers leave once every task has ended: only earlier is it early.
                        let outstanding = state.succeeded + state.failed < count
                        if outstanding, let reason = state.group?.endedEarly() {
                            state.note = reason
                            state.abandon()
                            producer.cancel()
                        } else if !state.readySignalled && elapsed > joinTimeoutSeconds {
                            state.note =
                                "only \(progress.workers) of \(processesForLabel) workers joined in \(Int(joinTimeoutSeconds)) s"
                            state.abandon()
                            producer.cancel()
                        } else if elapsed > runTimeoutSeconds {
                            state.note = "run timed out after \(Int(runTimeoutSeconds)) s"
                            state.abandon()
                            producer.cancel()
                        } else if state.timedOut.load(ordering: .acquiring) && state.note == nil {
                            state.note = "no result within \(Int(resultWait)) s of a one-at-a-time task"
                            producer.cancel()
                        }
                        if stop.isStopped { state.abandon() }
                        let done = state.succeeded + state.failed
                        Log.live("  \(label): \(done)/\(count) done, \(progress.workers) workers")
                    })
            }
            outcome.withLock { $0 = result }
            finished.signal()
        }
        thread.name = "bench-producer"
        thread.stackSize = 8 << 20
        thread.start()
        finished.wait()
        stop.setProducer(nil)
        state.abandon()  // frees the source's thread if it still waits
        if let complaint = state.group?.stop() { state.note = state.note ?? complaint }
        let cpuAfter = CPUUsage.now()

        switch outcome.withLock({ $0 }) {
        case .success(let summary):
            measured.redeliveries = Int(summary.redeliveries)
            measured.workerProcessesSeen = summary.workers.count
            // Supervisors log each death ("Worker-1 (pid 42) died with signal 6 ...") at error level.
            let deaths =
                (try? String(contentsOfFile: log, encoding: .utf8))?.components(separatedBy: ") died with ")
                .count ?? 1
            measured.processDeaths = deaths - 1
            if summary.redeliveries > 0 || deaths > 1 {
                let text = "\(deaths - 1) process deaths, \(summary.redeliveries) tasks sent again"
                state.note = state.note.map { "\($0); \(text)" } ?? text
            }
        case .failure(let error):
            state.note = "producer failed: \(error)"
        case nil:
            state.note = "producer did not report"
        }
        measured.firstSubmit = state.firstSubmit
        measured.lastResult = state.lastResult
        measured.latency = state.latency
        measured.succeeded = state.succeeded
        measured.failed = state.failed
        measured.producerCPU = cpuAfter.selfSeconds - cpuBefore.selfSeconds
        if case .netns = transport {
            measured.workerCPU = sampler.cpuSeconds
        } else {
            measured.workerCPU = cpuAfter.childrenSeconds - cpuBefore.childrenSeconds
        }
        measured.producerRSSKB = ProcFS.statusKB("VmHWM", pid: nil)
        measured.workersRSSKB = sampler.peakRSSKB
        if stop.isStopped { state.note = "interrupted" + (state.note.map { "; \($0)" } ?? "") }
        if state.succeeded + state.failed < count && state.note == nil {
            state.note = "only \(state.succeeded + state.failed) of \(count) tasks ended"
        }
        measured.note = state.note
        return measured
    }
}
