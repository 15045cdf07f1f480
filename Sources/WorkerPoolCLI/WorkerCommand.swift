import ArgumentParser
import Foundation
import Logging
import Synchronization
import WorkerPool
import ZeroMQ

/// The `worker` command: a supervisor of `--processes` worker processes, or (internally) one of them.
///
/// A custom worker binary registers its own tasks and runs this command:
/// ```swift
/// var registry = TaskRegistry.builtin
/// registry.register("greet") { (name: String, _) in "hello, \(name)" }
/// WorkerCommand.main(registry: registry)
/// ```
public struct WorkerCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run tasks from a producer: connect, work, and leave on its shutdown event.",
        discussion: """
            Starts --processes worker processes (Worker-1, Worker-2, ...) under a supervisor that \
            restarts any that dies; each runs tasks on --threads threads. SIGINT or SIGTERM makes \
            every process finish the task in hand and exit 0.
            """)

    /// The tasks this binary can run; set by ``main(registry:)``.
    private static let registryStore = Mutex(TaskRegistry.builtin)

    @Option(help: "Host of the producer, with the default ports 5557-5559.")
    var connect: String = "127.0.0.1"

    @OptionGroup var endpoints: EndpointOptions

    @Option(help: "Worker processes to start on this host.")
    var processes: Int = 1

    @Option(help: "Task threads per process.")
    var threads: Int = 1

    @Option(
        help: ArgumentHelp(
            "With several threads, how long a result may wait (ms) to share a message with others while the process is busy.",
            discussion: "Fewer, larger messages cost the producer less per task; a thread out of work sends at once."))
    var resultDelay: Double = 20

    @Option(help: "Name to report as this worker's host.")
    var hostName: String?

    @Option(help: "Largest message accepted or sent, in bytes.")
    var maxMessageSize: Int = WireFormat.defaultMaxMessageSize

    @Option(help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    @Option(help: "Replace a worker process after it ran this many tasks, across its threads (fresh memory).")
    var maxTasksPerChild: Int?

    @Option(help: "This worker's CURVE secret key file (from `producer keygen`).")
    var curveKey: String?

    @Option(help: "The producer's CURVE public key: its .pub file, or the 40-character Z85 key.")
    var curveServerKey: String?

    @Option(
        help:
            "With CURVE: leave with status 78 after connections have been closed during the handshake for this many seconds (a wrong --curve-server-key)."
    )
    var handshakeGiveUp: Double = 60

    @Option(
        help: ArgumentHelp(
            "Rewrite this file every second with 'connected' or 'waiting' (for container probes).",
            discussion: "A file older than a few seconds means a stuck worker."))
    var healthFile: String?

    @OptionGroup(title: "Running programs (the exec task)") var exec: ExecOptions

    @Option(help: .hidden) var childIndex: Int?
    @Option(help: .hidden) var parentPid: Int32?
    @Option(help: .hidden) var workerId: UInt32?
    @Option(help: .hidden) var supervisorId: UInt32 = 0
    @Option(help: .hidden) var restarts: UInt32 = 0
    @Option(help: .hidden) var boardFd: Int32?
    @Option(help: .hidden) var statsFd: Int32?

    @OptionGroup(title: "Metrics") var metrics: MetricsOptions

    public init() {}

    /// Parses the command line and runs with `registry` instead of the built-in tasks.
    public static func main(registry: TaskRegistry) {
        registryStore.withLock { $0 = registry }
        main()
    }

    public mutating func validate() throws {
        guard processes >= 1 else { throw ValidationError("--processes must be at least 1") }
        guard (1...1024).contains(threads) else { throw ValidationError("--threads must be between 1 and 1024") }
        guard maxMessageSize >= 1024 else { throw ValidationError("--max-message-size must be at least 1024") }
        guard resultDelay >= 0, resultDelay <= 1_000 else { throw ValidationError("--result-delay must be 0-1000 ms") }
        if connect.filter({ $0 == ":" }).count == 1 {
            throw ValidationError(
                "--connect takes a host name or address (ports 5557-5559); use --tasks, --results and --events for other ports"
            )
        }
        guard handshakeGiveUp >= 1, handshakeGiveUp <= 86_400 else {
            throw ValidationError("--handshake-give-up must be 1-86400 seconds")
        }
        if (curveKey == nil) != (curveServerKey == nil) {
            throw ValidationError("CURVE needs both --curve-key (this worker's secret) and --curve-server-key")
        }
        if let maxTasksPerChild, maxTasksPerChild < 1 {
            throw ValidationError("--max-tasks-per-child must be at least 1")
        }
        try exec.check(endpoints: endpoints.resolve(default: .connecting(to: connect)), curve: curveKey != nil)
    }

    /// The CURVE settings from --curve-key and --curve-server-key.
    private func loadCurve() throws -> CurveClientSettings? {
        guard let curveKey, let curveServerKey else { return nil }
        guard CurveKeyPair.isAvailable else {
            throw ValidationError("this libzmq was built without CURVE (libsodium); --curve-key cannot work")
        }
        do {
            return CurveClientSettings(
                keys: try CurveKeyFile.loadKeyPair(path: curveKey),
                serverKey: try CurveKeyFile.loadPublicKey(curveServerKey))
        } catch let error as CurveKeyFile.LoadError {
            throw ValidationError(error.description)
        }
    }

    public func run() throws {
        let resolved = endpoints.resolve(default: .connecting(to: connect))
        let curve = try loadCurve()
        if let index = childIndex {
            let code = try runChild(index: index, endpoints: resolved, curve: curve)
            Foundation.exit(code)
        }
        let logger = bootstrapLogging(processName: "Supervisor", level: logLevel)
        if let parent = parentPid, !ChildProcess.followParent(parent) {
            logger.warning("parent process \(parent) is gone; not starting")
            return
        }
        if let policy = try exec.policy() {
            logger.info("exec enabled: \(policy.allowed.map { "only \($0.joined(separator: ", "))" } ?? "any program")")
        }
        logger.info("starting \(processes) worker processes with \(threads) threads each, producer at \(resolved)")
        // Swift's crash backtracer symbolicates for seconds per crash; the supervisor already
        // reports which task took a process down. Set SWIFT_BACKTRACE yourself to keep it.
        if ProcessInfo.processInfo.environment["SWIFT_BACKTRACE"] == nil { setenv("SWIFT_BACKTRACE", "enable=no", 1) }
        let host = hostName ?? currentHostName()
        let ownPid = getpid()
        var common =
            endpoints.arguments(for: resolved) + [
                "--threads", "\(threads)", "--result-delay", "\(resultDelay)", "--host-name", host,
                "--max-message-size", "\(maxMessageSize)",
                "--log-level", logLevel.rawValue, "--parent-pid", "\(ownPid)",
                "--board-fd", "\(Supervisor.boardFileDescriptor)", "--stats-fd", "\(Supervisor.statsFileDescriptor)",
            ]
        if let maxTasksPerChild { common += ["--max-tasks-per-child", "\(maxTasksPerChild)"] }
        if let curveKey, let curveServerKey {
            // One argument each: a Z85 key may start with "-", which would read as an option.
            common += ["--curve-key=\(curveKey)", "--curve-server-key=\(curveServerKey)"]
        }
        common += ["--handshake-give-up", "\(handshakeGiveUp)"] + exec.childArguments
        let metricsServer = try metrics.start(logger: logger)
        let supervisor = try Supervisor(
            processes: processes, threads: threads, executable: ChildProcess.currentExecutable, endpoints: resolved,
            curve: curve, healthFile: healthFile, publishesMetrics: metricsServer != nil, logger: logger
        ) { [common, healthFile] child in
            // Each process writes its own file; the supervisor combines them into --health-file.
            let health = healthFile.map { ["--health-file", Supervisor.healthFile($0, child: child.index)] } ?? []
            return common + health + [
                "--child-index", "\(child.index)", "--worker-id", "\(child.workerID)", "--restarts",
                "\(child.restarts)", "--supervisor-id", "\(child.supervisorID)",
            ]
        }
        let signals = onTerminationSignals { number in
            logger.info("received signal \(number); asking workers to finish")
            supervisor.stop()
        }
        let code = try supervisor.run()
        withExtendedLifetime(signals) {}
        metrics.finish(metricsServer, logger: logger)
        logger.info("process exiting with exitcode \(code)")
        if code != 0 { throw ExitCode(code) }
    }

    private func runChild(index: Int, endpoints: PoolEndpoints, curve: CurveClientSettings?) throws -> Int32 {
        // First thing: a SIGTERM from the supervisor must not be lost while we start.
        StopSignals.install()
        let name = "Worker-\(index)"
        let logger = bootstrapLogging(processName: name, level: logLevel)
        // A task that crashes its process is reported by the supervisor; a core file per crash
        // would only fill the disk.
        var noCore = rlimit(rlim_cur: 0, rlim_max: 0)
        setrlimit(Int32(RLIMIT_CORE.rawValue), &noCore)
        if let parent = parentPid, !ChildProcess.followParent(parent) { return 0 }
        logger.info("child process calling self.run()")
        var configuration = WorkerConfiguration(endpoints: endpoints, name: name, host: hostName ?? currentHostName())
        configuration.threads = threads
        configuration.resultDelayMicroseconds = UInt64(resultDelay * 1_000)
        configuration.maxMessageSize = maxMessageSize
        configuration.workerID = workerId
        configuration.supervisorID = supervisorId
        configuration.restarts = restarts
        configuration.maxTasks = maxTasksPerChild
        configuration.curve = curve
        configuration.handshakeGiveUpMilliseconds = Int(handshakeGiveUp * 1000)
        configuration.healthFile = healthFile
        let board = boardFd.flatMap { RunningTaskBoard(fileDescriptor: $0, threads: threads) }
        if boardFd != nil && board == nil {
            logger.warning("cannot map the supervisor's task board; time limits are off")
        }
        var registry = Self.registryStore.withLock { $0 }
        if let policy = try exec.policy() { registry.enableExec(policy) }
        let stats = statsFd.flatMap { WorkerStatsBoard(fileDescriptor: $0) }
        let node = try WorkerNode(
            configuration: configuration, registry: registry, logger: logger, board: board, stats: stats)
        node.stopOnSignals()
        let report = try node.run()
        logger.debug(
            "\(report.tasksDone) tasks done, \(report.tasksFailed) failed, \(report.malformedMessages) malformed messages"
        )
        let code = report.securityFailure?.exitCode ?? (report.recycled ? Supervisor.recycleExitCode : 0)
        logger.info("process shutting down")
        logger.info("process exiting with exitcode \(code)")
        return code
    }
}
