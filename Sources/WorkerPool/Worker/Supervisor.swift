import CPoolSystem
import Foundation
import Logging
import Synchronization
import ZeroMQ

/// Starts `processes` worker children and restarts any that dies, like a `multiprocessing.Pool`
/// that survives crashes. It also enforces task time limits (killing a child whose task overran)
/// and tells the producer what a dead child was running, so those tasks are retried at once.
///
/// Each child shares a ``RunningTaskBoard`` with the supervisor through a memfd passed as
/// descriptor 3. Children that exit with code 0 (shutdown, SIGTERM) are done; code
/// ``recycleExitCode`` asks for a fresh process.
public final class Supervisor: Sendable {
    /// A child that reached `--max-tasks-per-child` exits with this code to be replaced.
    public static let recycleExitCode: Int32 = 100
    /// Where child `index` writes its health file when the supervisor's is `path`.
    public static func healthFile(_ path: String, child index: Int) -> String {
        HealthFile.childPath(path, index: index)
    }

    /// The descriptor number under which a child finds its board.
    public static let boardFileDescriptor: Int32 = 3
    /// The descriptor number under which a child finds its ``WorkerStatsBoard``.
    public static let statsFileDescriptor: Int32 = 4

    public let processes: Int
    public let threads: Int
    /// This supervisor's sender id: its children name it, and its loss reports carry it.
    public let supervisorID = UInt32.random(in: 1...UInt32.max)
    private let executable: String
    private let endpoints: PoolEndpoints
    private let curve: CurveClientSettings?
    private let healthFile: String?
    private let childArguments: @Sendable (_ child: ChildLaunch) -> [String]
    private let logger: Logger
    private let state = Mutex(State())
    /// Wakes a restart backoff early when stopping.
    private let stopSemaphore = DispatchSemaphore(value: 0)
    /// Ends the time-limit watchdog.
    private let finishedSemaphore = DispatchSemaphore(value: 0)

    /// What a child needs to know about itself.
    public struct ChildLaunch: Sendable {
        /// 1-based: `Worker-1` ...
        public var index: Int
        public var workerID: UInt32
        public var restarts: UInt32
        /// The supervisor's own sender id, which the child names in its hello.
        public var supervisorID: UInt32
    }

    private struct Slot: Sendable {
        var launch: ChildLaunch
        var pid: pid_t?
        var startedAt: ContinuousClock.Instant
        var consecutiveCrashes = 0
        /// Set by the watchdog when it killed the child for this task.
        var timeLimitCulprit: RunningTaskBoard.Running?
    }

    private struct State: Sendable {
        var stopping = false
        var slots: [Slot] = []
        /// For metrics: the last totals of processes that ended, restarts by reason, kills.
        var endedTotals = WorkerStatsBoard.Totals()
        var restarts = Array(repeating: UInt64(0), count: WorkerMetrics.RestartReason.allCases.count)
        var timeLimitKills: UInt64 = 0
    }

    /// Boards by slot; created before any child starts, never replaced.
    private let boards: [RunningTaskBoard]
    private let boardDescriptors: [Int32]
    /// Each slot's process totals, the same way.
    private let statsBoards: [WorkerStatsBoard]
    private let statsDescriptors: [Int32]
    /// Publishes the totals through swift-metrics, when asked to.
    private let metrics: MetricsPublisher<WorkerMetrics>?

    /// - Parameters:
    ///   - endpoints: the producer's, for reporting dead children on its results socket.
    ///   - publishesMetrics: publish every process's totals through swift-metrics (names in
    ///     ``PoolMetricNames``); bootstrap a backend first.
    ///   - childArguments: the command line of a child.
    public init(
        processes: Int, threads: Int, executable: String, endpoints: PoolEndpoints,
        curve: CurveClientSettings? = nil, healthFile: String? = nil, publishesMetrics: Bool = false, logger: Logger,
        childArguments: @escaping @Sendable (_ child: ChildLaunch) -> [String]
    ) throws {
        self.processes = processes
        self.threads = threads
        self.executable = executable
        self.endpoints = endpoints
        self.curve = curve
        self.healthFile = healthFile
        self.logger = logger
        self.childArguments = childArguments
        var boards: [RunningTaskBoard] = []
        var descriptors: [Int32] = []
        for index in 1...processes {
            let fd = cpool_memfd_create("worker-\(index)-board")
            // The descriptor is dup'ed into each child as descriptor 3; keep it out of others.
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            guard fd >= 0, let board = RunningTaskBoard(fileDescriptor: fd, threads: threads) else {
                throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .ENOMEM)
            }
            boards.append(board)
            descriptors.append(fd)
        }
        self.boards = boards
        self.boardDescriptors = descriptors
        var statsBoards: [WorkerStatsBoard] = []
        var statsDescriptors: [Int32] = []
        for index in 1...processes {
            let fd = cpool_memfd_create("worker-\(index)-stats")
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            guard fd >= 0, let board = WorkerStatsBoard(fileDescriptor: fd) else {
                throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .ENOMEM)
            }
            statsBoards.append(board)
            statsDescriptors.append(fd)
        }
        self.statsBoards = statsBoards
        self.statsDescriptors = statsDescriptors
        metrics = publishesMetrics ? MetricsPublisher(threadName: "worker-metrics") : nil
    }

    deinit { for fd in boardDescriptors + statsDescriptors { close(fd) } }

    /// Forwards SIGTERM to every child; they finish the task in hand and leave.
    public func stop() {
        let pids = state.withLock { state -> [pid_t] in
            state.stopping = true
            return state.slots.compactMap(\.pid)
        }
        stopSemaphore.signal()
        for pid in pids { ChildProcess(pid: pid).signal(SIGTERM) }
    }

    /// Runs until every child has ended cleanly; returns the exit code for this process.
    public func run() throws -> Int32 {
        let context = try Context()
        let reports = try Socket(context, .push)
        try curve.apply(to: reports)
        try reports.setLinger(milliseconds: 2_000)
        try reports.setReconnect(intervalMilliseconds: 100, maximumMilliseconds: 2_000)
        try reports.connect(endpoints.results)

        state.withLock { state in
            state.slots = (1...processes).map {
                Slot(
                    launch: ChildLaunch(index: $0, workerID: 0, restarts: 0, supervisorID: supervisorID),
                    startedAt: .now)
            }
        }
        for slot in 0..<processes { start(slot) }
        let watchdog = Thread { [self] in watchTimeLimits() }
        watchdog.name = "time-limit-watchdog"
        watchdog.start()
        let listener = Thread { [self] in
            do {
                try followShutdown(context: context)
            } catch {
                logger.error("cannot follow the producer's events: \(error)")
            }
        }
        listener.name = "shutdown-listener"
        listener.start()
        defer { finishedSemaphore.signal() }

        var reaping = Reaping()
        while true {
            if state.withLock({ $0.stopping }) { reaping.restartAt.removeAll() }
            for (slot, due) in reaping.restartAt where due <= .now {
                reaping.restartAt[slot] = nil
                start(slot)
            }
            let reaped: (ChildProcess, ChildProcess.Status)?
            if reaping.restartAt.isEmpty {
                guard let next = ChildProcess.waitAny() else { break }  // no children left
                reaped = next
            } else {
                reaped = ChildProcess.waitAnyNow()
                if reaped == nil {
                    // Poll for exits until the next restart is due (20 ms steps).
                    if stopSemaphore.wait(timeout: .now() + 0.02) == .success { stopSemaphore.signal() }
                    continue
                }
            }
            guard let (child, status) = reaped else { continue }
            let found = state.withLock { state -> (Int, Slot, Bool)? in
                guard let slot = state.slots.firstIndex(where: { $0.pid == child.pid }) else { return nil }
                let before = state.slots[slot]
                state.slots[slot].pid = nil
                state.slots[slot].timeLimitCulprit = nil
                return (slot, before, state.stopping)
            }
            guard let (slot, ended, stopping) = found else { continue }
            let running = boards[slot].allRunning
            // Commands (exec) a dead process ran would otherwise run on, unwatched.
            let orphans = boards[slot].killCommandGroups()
            if !orphans.isEmpty {
                logger.warning("killed the process groups of \(orphans.count) commands a dead worker ran")
            }
            boards[slot].reset()
            // The process is gone: its last totals are final, and the slot's board starts afresh.
            let last = statsBoards[slot].load()
            statsBoards[slot].reset()
            state.withLock { $0.endedTotals = $0.endedTotals.adding(last) }
            let exit = ExitedChild(
                pid: child.pid, status: status, slot: slot, ended: ended, stopping: stopping, running: running)
            try handle(exit, reports: reports, reaping: &reaping)
            if reaping.restartAt.isEmpty && state.withLock({ $0.slots.allSatisfy { $0.pid == nil } }) { break }
        }
        metrics?.finish(with: metricsSnapshot())
        logger.info("process shutting down")
        return reaping.securityExitCode ?? (reaping.failedToStart ? 1 : 0)
    }

    /// What the reaping loop carries from one exit to the next.
    private struct Reaping {
        var failedToStart = false
        var securityExitCode: Int32?
        /// Restarts wait for their backoff here, not by sleeping: other children must still be
        /// reaped and reported meanwhile.
        var restartAt: [Int: ContinuousClock.Instant] = [:]
    }

    /// A child that ended, with what its slot knew.
    private struct ExitedChild {
        var pid: pid_t
        var status: ChildProcess.Status
        var slot: Int
        var ended: Slot
        var stopping: Bool
        var running: [RunningTaskBoard.Running]
        var name: String { "Worker-\(ended.launch.index)" }
    }

    /// Decides what a child's end means: done, recycled, a security stop, a failure to start,
    /// or a death to report and restart.
    private func handle(_ exit: ExitedChild, reports: Socket, reaping: inout Reaping) throws {
        let (name, pid, slot, stopping) = (exit.name, exit.pid, exit.slot, exit.stopping)
        switch exit.status {
        case .exited(0):
            logger.debug("\(name) (pid \(pid)) ended with \(exit.status)")
        case .exited(Self.recycleExitCode):
            if stopping {
                logger.debug("\(name) (pid \(pid)) reached its task limit while stopping")
            } else {
                logger.info("\(name) (pid \(pid)) reached its task limit; starting a fresh process")
                countRestart(.recycled)
                start(slot)
            }
        case .exited(let code) where SecurityFailure.exitCodes.contains(code):
            // A refused key or a plaintext/CURVE mismatch repeats on every restart.
            if reaping.securityExitCode == nil {
                logger.critical("\(name) cannot talk to the producer (exit code \(code)); stopping every worker")
            }
            reaping.securityExitCode = reaping.securityExitCode ?? code
            stop()
        case .exited(let code) where ContinuousClock.now - exit.ended.startedAt < .seconds(2) && exit.running.isEmpty:
            // Failing at start (bad endpoint, bad option) repeats the same way: give up after a few.
            let failures = state.withLock { state -> Int in
                state.slots[slot].consecutiveCrashes += 1
                return state.slots[slot].consecutiveCrashes
            }
            if failures >= 5 || stopping {
                logger.critical("\(name) failed to start \(failures) times (exit code \(code)); giving up")
                stop()
                reaping.failedToStart = true
            } else {
                logger.error("\(name) (pid \(pid)) exited with code \(code) at start; restarting")
                countRestart(.died)
                reaping.restartAt[slot] = .now + .milliseconds(200 * failures)
            }
        default:
            try reportDeath(exit, reports: reports)
            guard !stopping else { break }
            restartAfterDeath(exit, reaping: &reaping)
        }
    }

    /// Tells the producer what a dead child was running, so those tasks go elsewhere at once.
    private func reportDeath(_ exit: ExitedChild, reports: Socket) throws {
        let (name, pid, ended, status, running) = (exit.name, exit.pid, exit.ended, exit.status, exit.running)
        let loss = WorkerLoss(
            process: ended.launch.workerID, reason: ended.timeLimitCulprit == nil ? .died : .timeLimit,
            detail: status.code, signalled: status.isSignal, culprit: ended.timeLimitCulprit?.task.id ?? 0,
            running: running.map(\.task))
        try reports.send(WireFormat.encode(loss, supervisor: supervisorID), dontWait: true)
        if let culprit = ended.timeLimitCulprit {
            let limit = Double(culprit.limitNanoseconds) / 1e9
            logger.warning("\(name) (pid \(pid)) killed: task \(culprit.task.id) exceeded its time limit of \(limit) s")
        } else if exit.stopping && status == .signalled(SIGTERM) && running.isEmpty {
            logger.debug("\(name) (pid \(pid)) ended by SIGTERM before it could handle it")
        } else {
            let tasks = running.map { "\($0.task.id)" }.joined(separator: ", ")
            logger.error("\(name) (pid \(pid)) died with \(status)\(tasks.isEmpty ? "" : " running task \(tasks)")")
        }
    }

    /// Restarts a dead child, at once the first time, with a growing backoff in a crash loop.
    private func restartAfterDeath(_ exit: ExitedChild, reaping: inout Reaping) {
        let slot = exit.slot
        let crashes = state.withLock { state -> Int in
            // A process that ran for a while before dying is not in a crash loop.
            if exit.ended.timeLimitCulprit != nil || ContinuousClock.now - exit.ended.startedAt > .seconds(10) {
                state.slots[slot].consecutiveCrashes = 0
            }
            state.slots[slot].consecutiveCrashes += 1
            return state.slots[slot].consecutiveCrashes
        }
        countRestart(exit.ended.timeLimitCulprit == nil ? .died : .timeLimit)
        let backoff = crashes <= 1 ? 0 : min(0.1 * pow(2, Double(min(crashes - 2, 6))), 5)
        logger.info("restarting \(exit.name)\(backoff > 0 ? String(format: " in %.1f s", backoff) : "")")
        if backoff > 0 {
            reaping.restartAt[slot] = .now + .milliseconds(Int(backoff * 1000))
        } else {
            start(slot)
        }
    }

    private func start(_ slot: Int) {
        let launch = state.withLock { state -> ChildLaunch? in
            guard !state.stopping || state.slots[slot].launch.workerID == 0 else { return nil }
            var launch = state.slots[slot].launch
            if launch.workerID != 0 { launch.restarts += 1 }
            launch.workerID = UInt32.random(in: 1...UInt32.max)
            return launch
        }
        guard let launch else { return }
        boards[slot].reset()
        do {
            let child = try ChildProcess.spawn(
                executable: executable, arguments: childArguments(launch),
                inherit: [
                    (boardDescriptors[slot], Self.boardFileDescriptor),
                    (statsDescriptors[slot], Self.statsFileDescriptor),
                ])
            let stopping = state.withLock { state -> Bool in
                state.slots[slot].launch = launch
                state.slots[slot].pid = child.pid
                state.slots[slot].startedAt = .now
                return state.stopping
            }
            if stopping { child.signal(SIGTERM) }
            logger.debug("started Worker-\(launch.index) (pid \(child.pid))")
        } catch {
            logger.error("could not start Worker-\(launch.index): \(error)")
        }
    }

    /// Stops restarting children once the producer broadcasts shutdown: a child started after
    /// the producer left would wait for it for ever.
    private func followShutdown(context: Context) throws {
        let subscriber = try Socket(context, .sub)
        try curve.apply(to: subscriber)
        try subscriber.setMaxMessageSize(1 << 20)
        try subscriber.subscribe()
        try subscriber.connect(endpoints.events)
        var poller = Poller()
        _ = poller.add(subscriber, .readable)
        let message = Message()
        while finishedSemaphore.wait(timeout: .now()) != .success {
            try poller.poll(timeoutMilliseconds: 100)
            while try subscriber.receive(into: message, dontWait: true) {
                _ = try subscriber.discardRemainingFrames(of: message)
                let broadcast = try? message.withUnsafeBytes { bytes throws(WireError) in
                    try WireFormat.decodeBroadcast(bytes)
                }
                if case .eventState(let snapshot) = broadcast, snapshot.shutdown, !state.withLock({ $0.stopping }) {
                    // Children follow the broadcast themselves; SIGTERM also reaches one started
                    // too late to hear it.
                    logger.info("the producer broadcast shutdown; no more restarts")
                    stop()
                }
            }
        }
        finishedSemaphore.signal()
    }

    /// Kills a child whose task ran past its limit; the reaping loop reports and restarts it.
    private func watchTimeLimits() {
        var health = healthFile.map { HealthFile(path: $0) }
        var lastPublished = ContinuousClock.now
        while true {
            if let metrics, ContinuousClock.now - lastPublished >= Self.metricsInterval {
                lastPublished = .now
                metrics.submit(metricsSnapshot())
            }
            // A 20 ms scan bounds how late a limit is enforced.
            if finishedSemaphore.wait(timeout: .now() + 0.02) == .success {
                finishedSemaphore.signal()
                return
            }
            if health != nil {
                let children = state.withLock { state in
                    state.slots.filter { $0.pid != nil }.map { (index: $0.launch.index, startedAt: $0.startedAt) }
                }
                health?.summarize(children: children, now: .now, logger: logger)
            }
            let now = cpool_monotonic_nanoseconds()
            for (slot, board) in boards.enumerated() {
                guard
                    let overrun = board.allRunning.first(where: {
                        $0.limitNanoseconds > 0 && now &- $0.startedNanoseconds > $0.limitNanoseconds
                    })
                else { continue }
                // Decide under the lock, against the board read again: the child may have been
                // reaped and replaced since the scan.
                let pid = state.withLock { state -> pid_t? in
                    guard let pid = state.slots[slot].pid, state.slots[slot].timeLimitCulprit == nil,
                        board.allRunning.contains(overrun)
                    else { return nil }
                    state.slots[slot].timeLimitCulprit = overrun
                    state.timeLimitKills += 1
                    return pid
                }
                if let pid { ChildProcess(pid: pid).signal(SIGKILL) }
            }
        }
    }
}

extension ChildProcess.Status {
    var code: Int32 {
        switch self {
        case .exited(let code): code
        case .signalled(let signal): signal
        }
    }

    var isSignal: Bool {
        if case .signalled = self { return true }
        return false
    }
}

/// What the supervisor publishes for metrics.
extension Supervisor {
    static let metricsInterval = Duration.milliseconds(250)

    private func countRestart(_ reason: WorkerMetrics.RestartReason) {
        state.withLock { $0.restarts[reason.rawValue] += 1 }
    }

    /// Every process's totals (those running, read from their boards, and those that ended),
    /// with restarts and kills.
    private func metricsSnapshot() -> WorkerMetrics.Snapshot {
        let (processes, ended, restarts, kills) = state.withLock { state in
            (state.slots.filter { $0.pid != nil }.count, state.endedTotals, state.restarts, state.timeLimitKills)
        }
        let totals = statsBoards.reduce(ended) { $0.adding($1.load()) }
        return WorkerMetrics.Snapshot(
            processes: processes, tasksRunning: boards.reduce(0) { $0 + $1.allRunning.count }, totals: totals,
            restarts: restarts, timeLimitKills: kills)
    }
}
