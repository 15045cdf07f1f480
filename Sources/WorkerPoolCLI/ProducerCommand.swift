import ArgumentParser
import Foundation
import Logging
import Synchronization
import WorkerPool
import ZeroMQ

extension ResultPrinter.Format: ExpressibleByArgument {}

/// The `producer` command: binds the pool's sockets, streams tasks, prints results.
public struct ProducerCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "producer",
        abstract: "Send tasks to workers over ZeroMQ and print each result as it arrives.",
        discussion: """
            Tasks are JSON lines, {"task": "multiply", "args": {"a": 3, "b": 3}}, read from --input \
            or stdin, or generated with --demo / --generate. Waits until every task has ended, then \
            broadcasts shutdown so workers leave. Exit status 1 if any task failed, 65 if the \
            --journal does not fit the input (nothing was sent) or is damaged, 74 if writing it (or \
            opening the --pool-log) failed.
            """,
        subcommands: [KeygenCommand.self, ExecCommand.self])

    @OptionGroup var endpoints: EndpointOptions

    @Option(help: "Read tasks from this JSON-lines file ('-' for stdin).")
    var input: String?

    @Flag(help: "Run the lecture's demo: multiply i * i for i in 0..<10 (the default on a terminal).")
    var demo = false

    @Option(help: "Generate this many multiply tasks instead of reading input.")
    var generate: Int?

    @Option(help: "Result output: human, jsonl or none.")
    var output: ResultPrinter.Format = .human

    @Option(help: "Start this many local worker processes (one supervisor with --processes N).")
    var localWorkers: Int = 0

    @Option(help: "Send no task until this many worker processes have joined (default: --local-workers).")
    var waitWorkers: Int?

    @Option(help: "Task threads in each local worker process.")
    var workerThreads: Int = 1

    @Option(help: "The worker binary for --local-workers (default: beside this one).")
    var workerPath: String?

    @Option(help: "Most tasks held in memory at once (in flight or waiting to be sent again).")
    var window: Int = 100_000

    @Option(help: "Keep each worker thread this many milliseconds of work ahead (sets its window).")
    var prefetchMs: Double = 5

    @Option(help: "Most tasks one worker thread may hold.")
    var maxPerThread: Int = 1_000

    @Option(help: "Fail a task after its worker process died (or overran the time limit) this many times.")
    var maxAttempts: Int = 3

    @Option(help: "Seconds a task may run before its worker process is killed (0: no limit). Per task: \"time_limit\".")
    var timeLimit: Double = 0

    @Option(
        help: ArgumentHelp(
            "Run a task that failed again, up to this many times. Per task: \"retries\".",
            discussion: """
                A failure is the handler's error (or a failed program) or a time limit; a task that cannot \
                work anywhere (unknown-task, bad-arguments, ...) is not retried. Lost work sent again is \
                not charged as a retry.
                """))
    var retries: Int = 0

    @Option(
        help: ArgumentHelp(
            "Seconds to wait before the first retry; each further retry waits twice as long.",
            discussion: "Doubling stops at 60 s (or this, if larger); up to half again is added as jitter."))
    var retryBackoff: Double = 1

    @Option(help: "Send a task again when its worker thread has not acknowledged it within this many seconds.")
    var ackTimeout: Double = 10

    @Option(help: "A worker silent for this many seconds is presumed dead and its tasks are sent again.")
    var workerTimeout: Double = 3

    @Option(
        help: ArgumentHelp(
            "Record finished tasks in this file; rerun with the same input and journal to resume.",
            discussion: """
                Each record carries the SHA-256 of its input task. A resumed run checks every input line \
                the journal covers before it sends anything, and refuses (exit status 65) if one differs.
                """))
    var journal: String?

    @Flag(
        help: ArgumentHelp(
            "With --journal: skip input tasks the journal holds wherever they now stand (matched by content, each record once), run the rest.",
            discussion:
                "For an input that was edited (lines inserted, deleted or reordered) since the journal was written."
        ))
    var resumeByContent = false

    @Flag(help: "With --journal: run on past damaged journal lines (their tasks may run again) instead of refusing.")
    var journalIgnoreDamage = false

    @Option(
        help: ArgumentHelp(
            "The most tasks in one message.",
            discussion:
                "Each worker thread gets what its credit allows in one message (fast tasks in batches, slow ones alone); this only caps it."
        ))
    var batch: Int = 1_000

    @Option(
        help: ArgumentHelp(
            "The most worker processes known at once.",
            discussion:
                "A hello beyond it makes room by forgetting the worker idle longest, and is refused while every known worker is at work: a flood of made-up senders costs a bounded amount of memory."
        ))
    var maxWorkers: Int = 10_000

    @Option(
        name: .customLong("set-event"),
        help: ArgumentHelp("Set an event, after an optional delay in seconds: NAME or NAME:SECONDS. Repeatable."))
    var setEvents: [String] = []

    @Flag(help: "Leave workers running at the end instead of broadcasting shutdown.")
    var keepWorkers = false

    @Option(
        help: ArgumentHelp(
            "Progress on stderr: auto (a line, on a terminal), always (a line), full (a live panel, on a terminal) or never.",
            discussion: """
                full redraws a panel in place: totals, rate, ETA and one row per worker process (host, \
                threads, running, done, failed, restarts, last seen), fitted to the terminal's width. \
                When stderr is not a terminal it shows nothing, like auto.
                """))
    var progress: ProgressMode = .auto

    @Option(
        help: ArgumentHelp(
            "Append what happens to the pool to this file, one JSON object per line.",
            discussion: """
                Workers joining, leaving and lost (and why), tasks sent again (why, from whom to whom), \
                processes restarted or killed for a time limit, events set and cleared, rejected \
                messages, and the run's start and end with its summary. See "Watching a run" in the README.
                """))
    var poolLog: String?

    @Option(help: "Largest message accepted or sent, in bytes.")
    var maxMessageSize: Int = WireFormat.defaultMaxMessageSize

    @Option(help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    @Option(
        help: ArgumentHelp(
            "This producer's CURVE secret key file (from `producer keygen`): encrypts every socket.",
            discussion: "Workers need the matching .pub file as --curve-server-key."))
    var curveKey: String?

    @Option(
        help: ArgumentHelp(
            "Worker public keys allowed to connect: a .pub file, a directory of .pub files, or a file of Z85 keys, one per line. Repeatable."
        ))
    var curveAllow: [String] = []

    @Flag(help: "With --curve-key: let in any worker that knows this producer's public key (no allowlist).")
    var curveAllowAny = false

    @OptionGroup(title: "Metrics") var metrics: MetricsOptions

    enum ProgressMode: String, ExpressibleByArgument, CaseIterable { case auto, always, full, never }

    public init() {}

    public mutating func validate() throws {
        guard localWorkers >= 0 else { throw ValidationError("--local-workers cannot be negative") }
        guard (1...1024).contains(workerThreads) else { throw ValidationError("--worker-threads must be 1-1024") }
        guard window >= 1 else { throw ValidationError("--window must be at least 1") }
        guard maxPerThread >= 1 else { throw ValidationError("--max-per-thread must be at least 1") }
        guard prefetchMs >= 0, prefetchMs <= 60_000 else { throw ValidationError("--prefetch-ms must be 0-60000") }
        guard (1...1000).contains(maxAttempts) else { throw ValidationError("--max-attempts must be 1-1000") }
        guard (0...TaskSource.maxRetries).contains(retries) else {
            throw ValidationError("--retries must be 0-\(TaskSource.maxRetries)")
        }
        guard retryBackoff >= 0, retryBackoff <= 86_400 else {
            throw ValidationError("--retry-backoff must be 0-86400 s")
        }
        guard timeLimit >= 0, timeLimit < 4_000_000 else {
            throw ValidationError("--time-limit must be 0 (none) to 4000000 seconds")
        }
        guard ackTimeout > 0, ackTimeout <= 86_400 else {
            throw ValidationError("--ack-timeout must be more than 0 and at most 86400 s")
        }
        if keepWorkers && localWorkers > 0 {
            throw ValidationError(
                "--keep-workers is for workers started elsewhere; --local-workers stop with the producer")
        }
        guard workerTimeout >= 1.5, workerTimeout <= 86_400 else {
            throw ValidationError("--worker-timeout must be 1.5-86400 s: workers send a heartbeat every second")
        }
        guard (1...Int(UInt16.max)).contains(batch) else { throw ValidationError("--batch must be 1-65535") }
        guard maxWorkers >= 1 else { throw ValidationError("--max-workers must be at least 1") }
        guard maxMessageSize >= 1024 else { throw ValidationError("--max-message-size must be at least 1024") }
        if journal == nil && (resumeByContent || journalIgnoreDamage) {
            throw ValidationError("--resume-by-content and --journal-ignore-damage need --journal")
        }
        if let generate, generate < 0 { throw ValidationError("--generate cannot be negative") }
        let sources = [input != nil, demo, generate != nil].filter { $0 }.count
        guard sources <= 1 else { throw ValidationError("choose one of --input, --demo and --generate") }
        if curveKey == nil && (!curveAllow.isEmpty || curveAllowAny) {
            throw ValidationError("--curve-allow and --curve-allow-any need --curve-key")
        }
        if curveKey != nil && curveAllow.isEmpty && !curveAllowAny && localWorkers == 0 {
            throw ValidationError(
                "--curve-key needs --curve-allow (the workers' public keys) or, to admit any worker that knows this producer's public key, --curve-allow-any"
            )
        }
        if curveAllowAny && !curveAllow.isEmpty {
            throw ValidationError("choose --curve-allow or --curve-allow-any, not both")
        }
        for spec in setEvents where Self.parseEvent(spec) == nil {
            throw ValidationError("--set-event '\(spec)' must be NAME or NAME:SECONDS")
        }
    }

    static func parseEvent(_ spec: String) -> (name: String, delay: Double)? {
        guard let colon = spec.lastIndex(of: ":") else { return PoolEvents.isValidName(spec) ? (spec, 0) : nil }
        let name = String(spec[..<colon])
        guard PoolEvents.isValidName(name), let delay = Double(spec[spec.index(after: colon)...]), delay >= 0,
            delay < 31_536_000
        else { return nil }
        return (name, delay)
    }

    public func run() throws { try runPool(exec: nil) }

    /// Runs the pool: on tasks from the input, or with `exec`, on jobs made from its lines.
    func runPool(exec: ExecJobs?) throws {
        // The live view draws on stderr; the log then goes through it, so lines print above it.
        let panel = progress == .full && logLevel > .debug ? TerminalPanel() : nil
        let logger = bootstrapLogging(
            processName: "MainProcess", level: logLevel,
            output: panel.map { panel in { @Sendable bytes in panel.writeAbove(bytes, to: STDERR_FILENO) } })
        var configuration = makeConfiguration(livePanel: panel != nil, exec: exec != nil)
        let metricsServer = try metrics.start(logger: logger)
        configuration.publishesMetrics = metricsServer != nil
        // Local workers get a key pair of their own for this run, allowed alongside --curve-allow.
        let localKeys = try curveKey.flatMap { _ in localWorkers > 0 ? try LocalWorkerKeys() : nil }
        // Explicitly: the signal handler below holds the keys too, so they outlive this call.
        defer { localKeys?.remove() }
        configuration.curve = try loadCurve(extra: localKeys?.keys.publicKey)
        let producer = Producer(configuration: configuration, logger: logger)

        let source = try exec.map { try makeExecSource($0) } ?? makeSource(logger: logger)
        let showProgress =
            progress == .always || (progress == .auto && isatty(STDERR_FILENO) == 1 && logLevel > .debug)
        // With a journal, a result is printed once it is durable, and at once: a crash then
        // leaves no result journaled but unprinted (the resumed run would skip it).
        let printer = ResultPrinter(
            format: output, showProgress: showProgress, unbuffered: journal != nil,
            exec: exec.map { ExecOutcomePrinter(keepOrder: $0.keepOrder) }, panel: panel)
        // Local workers' log lines go through the panel too, or they would land inside it.
        let relay = try panel.map { try StderrRelay(panel: $0) }
        var spawned: LocalWorkers?
        let interrupts = Mutex(0)
        let signals = onTerminationSignals { number in
            let count = interrupts.withLock { count in
                count += 1
                return count
            }
            guard count == 1 else {
                logger.warning("second signal: leaving now")
                panel?.finish()
                localKeys?.remove()
                Foundation.exit(130)
            }
            logger.warning("received signal \(number); no more tasks will be sent (again to leave at once)")
            producer.cancel()
        }
        signal(SIGUSR1, SIG_IGN)
        let summarySignal = DispatchSource.makeSignalSource(signal: SIGUSR1, queue: .global())
        summarySignal.setEventHandler { producer.reportWorkers() }
        summarySignal.resume()
        defer { withExtendedLifetime((signals, summarySignal)) {} }

        for spec in setEvents {
            guard let (name, delay) = Self.parseEvent(spec) else { continue }
            DispatchQueue.global().asyncAfter(deadline: .now() + delay) {
                logger.info("main: event '\(name)' is set")
                producer.events.set(name)
            }
        }

        let summary: RunSummary
        do {
            summary = try producer.run(
                source: source,
                onBound: { bound in
                    guard localWorkers > 0 else { return }
                    spawned = LocalWorkers(
                        try startLocalWorkers(
                            endpoints: bound, curve: localKeys.map { ($0, configuration.curve!.keys.publicKey) },
                            allowExec: exec != nil, stderr: relay?.writeEnd, logger: logger))
                    relay?.start()
                },
                onResult: printer.print,
                onProgress: { progress in
                    printer.progress(progress)
                    // Local workers that ended early (bad options, endpoints they cannot reach)
                    // would leave the run waiting for ever.
                    if let status = spawned?.endedEarly() {
                        logger.error("local workers exited with \(status) before the run ended; cancelling it")
                        producer.cancel()
                    }
                },
                onWorkers: { workers in printer.writeAboveProgress(Self.workerTable(workers)) })
        } catch let error as CurveKeyFile.LoadError {
            logger.critical("cannot start: \(error)")
            throw ExitCode(2)
        } catch let error as PoolLogError {
            // 74 (EX_IOERR), as for a journal that cannot be written.
            printer.clearProgress()
            logger.critical("cannot start: \(error)")
            throw ExitCode(74)
        } catch let error as JournalError {
            // 65 (EX_DATAERR): the journal does not fit the input, or is unreadable; 74 (EX_IOERR).
            logger.critical("\(error)")
            printer.flush()
            printer.clearProgress()
            spawned?.stop(logger: logger)
            throw ExitCode(error.isDataError ? 65 : 74)
        } catch let error as ZeroMQError {
            var hint = ""
            if error.code == .addressInUse {
                hint =
                    "; is another producer running? Pick other endpoints with --tasks/--results/--events or --ipc DIR"
            }
            logger.critical("cannot start: \(error)\(hint)")
            spawned?.stop(logger: logger)
            throw ExitCode(2)
        }
        printer.flush()
        if panel == nil { printer.clearProgress() }
        spawned?.stop(logger: logger)
        // The workers' last lines (their goodbyes) print above the panel, then it goes.
        relay?.finish(timeout: 2)
        printer.flush()
        printer.clearProgress()

        let text = Self.summaryLine(summary)
        FileHandle.standardError.write(Data((Self.workerTable(summary.workers) + text + "\n").utf8))
        metrics.finish(metricsServer, logger: logger)
        if interrupts.withLock({ $0 }) > 0 { throw ExitCode(130) }
        if summary.failed > 0 { throw ExitCode(1) }
    }

    /// The producer's settings from the command line.
    func makeConfiguration(livePanel: Bool, exec: Bool) -> ProducerConfiguration {
        var configuration = ProducerConfiguration()
        configuration.endpoints = endpoints.resolve(default: .defaultBind)
        configuration.window = window
        configuration.prefetchMicroseconds = prefetchMs * 1000
        configuration.maxTasksPerThread = maxPerThread
        configuration.maxAttempts = UInt16(maxAttempts)
        configuration.defaultTimeLimitMilliseconds = UInt32((timeLimit * 1000).rounded(.up))
        configuration.retries = UInt16(retries)
        configuration.retryBackoffMilliseconds = UInt32((retryBackoff * 1000).rounded())
        configuration.ackTimeoutMilliseconds = Int(ackTimeout * 1000)
        configuration.workerTimeoutMilliseconds = Int(workerTimeout * 1000)
        configuration.journalPath = journal
        configuration.journalResumeMode = resumeByContent ? .byContent : .byPosition
        configuration.journalIgnoresDamage = journalIgnoreDamage
        configuration.batchSize = batch
        configuration.maxWorkers = maxWorkers
        configuration.keepsResultPayloads = output != .none || journal != nil
        configuration.sharesResultMessages = true
        configuration.maxMessageSize = maxMessageSize
        configuration.shutdownWorkersAtEnd = !keepWorkers
        configuration.minimumWorkers = waitWorkers ?? localWorkers
        configuration.poolLogPath = poolLog
        configuration.progressIncludesWorkers = livePanel
        // Ctrl-C stops running commands at once, as it does under parallel (a cancelled job is
        // not journaled: a resumed run runs it again).
        if exec { configuration.cancelGraceMilliseconds = 0 }
        return configuration
    }

    /// The run's last line: totals, then what each worker did and what went wrong, when anything did.
    static func summaryLine(_ summary: RunSummary) -> String {
        let line = String(
            format: "Summary: %llu tasks, %llu failed, %.3f s, %.0f tasks/s", summary.tasks, summary.failed,
            summary.wallSeconds, summary.tasksPerSecond)
        var text = line
        if !summary.perWorker.isEmpty {
            text +=
                " | "
                + summary.perWorker.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }
                .joined(separator: ", ")
        }
        let malformed =
            summary.rejectedMessages - summary.strangerMessages - summary.forgedResults
            - summary.refusedLossReports
        if malformed > 0 { text += " | \(malformed) malformed messages rejected" }
        if summary.strangerMessages > 0 {
            text += " | \(summary.strangerMessages) messages from senders that never said hello dropped"
        }
        if summary.forgedResults > 0 {
            text += " | \(summary.forgedResults) results from workers never sent the task refused"
        }
        if summary.refusedLossReports > 0 {
            text += " | \(summary.refusedLossReports) loss reports not from the process's supervisor refused"
        }
        if summary.redeliveries > 0 {
            text += String(
                format: " | %llu sent again (worst delay %.3f s)", summary.redeliveries, summary.worstRedeliverySeconds)
        }
        if summary.retries > 0 { text += " | \(summary.retries) failed attempts retried" }
        if summary.resumed > 0 { text += " | \(summary.resumed) already done (journal)" }
        return text
    }

    /// The per-worker summary: name, host, pid, tasks done and failed, restarts, state.
    static func workerTable(_ workers: [WorkerSummary]) -> String {
        guard !workers.isEmpty else { return "" }
        func column(_ value: Any, _ width: Int) -> String {
            let text = "\(value)"
            return text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
        }
        var text = column("worker", 11) + column("host", 21) + column("pid", 9) + column("done", 9)
        text += column("failed", 8) + column("restarts", 10) + "state\n"
        for worker in workers {
            text += column(worker.name, 11) + column(worker.host.prefix(20), 21) + column(worker.pid, 9)
            text += column(worker.tasksDone, 9) + column(worker.tasksFailed, 8) + column(worker.restarts, 10)
            text += worker.state + "\n"
        }
        return text
    }

    private func makeSource(logger: Logger) throws -> TaskSource {
        if let generate { return .multiply(count: generate) }
        if demo { return .lectureDemo() }
        if let input, input != "-" {
            let fd = open(input, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                throw ValidationError("cannot open --input \(input): \(String(cString: strerror(errno)))")
            }
            return .jsonLines(fileDescriptor: fd, maxLineLength: maxMessageSize)
        }
        if input == nil && isatty(STDIN_FILENO) == 1 {
            logger.info("no --input and stdin is a terminal: running the lecture's demo (--demo)")
            return .lectureDemo()
        }
        return .jsonLines(fileDescriptor: STDIN_FILENO, maxLineLength: maxMessageSize)
    }

    /// `exec`'s jobs, from --input or stdin.
    private func makeExecSource(_ exec: ExecJobs) throws -> TaskSource {
        var fd = STDIN_FILENO
        if let input, input != "-" {
            fd = open(input, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                throw ValidationError("cannot open --input \(input): \(String(cString: strerror(errno)))")
            }
        }
        return .execLines(fileDescriptor: fd, template: exec.template, maxLineLength: maxMessageSize)
    }

    /// The CURVE settings from --curve-key and --curve-allow, plus `extra` (the local workers' key).
    private func loadCurve(extra: CurveKey?) throws -> CurveServerSettings? {
        guard let curveKey else { return nil }
        guard CurveKeyPair.isAvailable else {
            throw ValidationError("this libzmq was built without CURVE (libsodium); --curve-key cannot work")
        }
        do {
            let keys = try CurveKeyFile.loadKeyPair(path: curveKey)
            if curveAllowAny { return CurveServerSettings(keys: keys, allowedClients: nil) }
            var allowed = Set<CurveKey>()
            for path in curveAllow { allowed.formUnion(try CurveKeyFile.loadAllowlist(path)) }
            if let extra { allowed.insert(extra) }
            return CurveServerSettings(keys: keys, allowedClients: allowed)
        } catch let error as CurveKeyFile.LoadError {
            throw ValidationError(error.description)
        }
    }

    private func startLocalWorkers(
        endpoints: PoolEndpoints, curve: (keys: LocalWorkerKeys, serverKey: CurveKey)?, allowExec: Bool,
        stderr: Int32?,
        logger: Logger
    ) throws -> ChildProcess {
        let path =
            workerPath
            ?? URL(fileURLWithPath: ChildProcess.currentExecutable).deletingLastPathComponent()
            .appendingPathComponent("worker").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw ValidationError("no worker binary at \(path); build it or pass --worker-path")
        }
        var arguments = [
            "--tasks", endpoints.tasks, "--results", endpoints.results, "--events", endpoints.events,
            "--processes", "\(localWorkers)", "--threads", "\(workerThreads)",
            "--max-message-size", "\(maxMessageSize)", "--log-level", logLevel.rawValue,
            "--parent-pid", "\(getpid())",
        ]
        if let curve {
            // One argument each: a Z85 key may start with "-", which would read as an option.
            arguments += ["--curve-key=\(curve.keys.secretFile)", "--curve-server-key=\(curve.serverKey.z85)"]
        }
        // Exec over plaintext is safe here whatever the address: they connect to this host.
        if allowExec { arguments += ["--allow-exec", "--allow-exec-insecure"] }
        logger.info("Creating \(localWorkers) local worker processes")
        // A process group of their own: the terminal's Ctrl-C reaches only the producer, which
        // finishes the run and sends the workers home; a stuck group can be killed whole.
        return try ChildProcess.spawn(
            executable: path, arguments: arguments, inherit: stderr.map { [($0, STDERR_FILENO)] } ?? [],
            newProcessGroup: true)
    }

}

/// A key pair made for this run's local workers, in a private temporary directory; ``remove()``
/// at the end of the run.
final class LocalWorkerKeys: Sendable {
    let keys: CurveKeyPair
    let directory: String
    let secretFile: String

    init() throws {
        keys = try CurveKeyPair.generate()
        var template = Array((NSTemporaryDirectory() + "/producer-keys-\(getpid())-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else {
            throw ValidationError(
                "cannot create a directory for local worker keys: \(String(cString: strerror(errno)))")
        }
        directory = String(cString: made)
        secretFile = try CurveKeyFile.write(keys, name: "local-workers", directory: directory).secretFile
    }

    /// Removes the keys.
    func remove() { try? FileManager.default.removeItem(atPath: directory) }
}

/// `producer keygen NAME`: writes a CURVE key pair.
public struct KeygenCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Write a CURVE key pair: NAME.pub (public, to share) and NAME.key (secret, mode 0600).",
        discussion: """
            The files use the ZeroMQ certificate format of czmq and pyzmq. Give the producer's .pub to \
            workers as --curve-server-key and each worker's .pub to the producer as --curve-allow.
            """)

    @Argument(help: "Base name of the two files, e.g. producer or worker-host1.")
    var name: String

    @Option(help: "Directory to write them in.")
    var directory: String = "."

    public init() {}

    public func validate() throws {
        guard !name.isEmpty, !name.contains("/") else { throw ValidationError("NAME must be a plain file name") }
    }

    public func run() throws {
        guard CurveKeyPair.isAvailable else {
            throw ValidationError("this libzmq was built without CURVE (libsodium)")
        }
        let keys = try CurveKeyPair.generate()
        do {
            let files = try CurveKeyFile.write(keys, name: name, directory: directory)
            print("public key \(keys.publicKey.z85)")
            print("wrote \(files.publicFile) (share it) and \(files.secretFile) (keep it secret)")
        } catch let error as CurveKeyFile.LoadError {
            throw ValidationError(error.description)
        }
    }
}

/// The `worker --processes N` supervisor a producer started with `--local-workers`.
final class LocalWorkers {
    let child: ChildProcess
    private(set) var status: ChildProcess.Status?

    init(_ child: ChildProcess) { self.child = child }

    /// The exit status, the first time the supervisor is found to have ended.
    func endedEarly() -> ChildProcess.Status? {
        guard status == nil, let ended = child.poll() else { return nil }
        status = ended
        return ended
    }

    /// Waits for the workers to leave after the shutdown broadcast; ends the whole process
    /// group if they do not.
    func stop(logger: Logger) {
        var deadline = ContinuousClock.now + .seconds(10)
        var signalled = false
        while status == nil {
            if let ended = child.poll() {
                status = ended
                if ended != .exited(0) { logger.warning("local workers ended with \(ended)") }
                break
            }
            if ContinuousClock.now >= deadline {
                if signalled {
                    logger.error("local workers did not stop; killing them")
                    child.signalGroup(SIGKILL)
                    status = child.wait()
                    break
                }
                logger.warning("local workers still running; sending SIGTERM")
                child.signalGroup(SIGTERM)
                signalled = true
                deadline = ContinuousClock.now + .seconds(10)
            }
            // waitpid has no timeout: poll the exit status.
            usleep(20_000)
        }
        // Children the supervisor could not reap (it was killed) must not outlive the run.
        child.signalGroup(SIGKILL)
    }
}
