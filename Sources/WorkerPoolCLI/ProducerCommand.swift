import ArgumentParser
import Foundation
import Logging
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
            broadcasts shutdown so workers leave. Exit status 1 if any task failed.
            """)

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

    @Option(help: "Tasks in flight at once across all workers.")
    var window: Int = 4_000

    @Option(help: "Tasks per message.")
    var batch: Int = 1

    @Option(
        name: .customLong("set-event"),
        help: ArgumentHelp("Set an event, after an optional delay in seconds: NAME or NAME:SECONDS. Repeatable."))
    var setEvents: [String] = []

    @Flag(help: "Leave workers running at the end instead of broadcasting shutdown.")
    var keepWorkers = false

    @Option(help: "Progress line on stderr: auto (on a terminal), always or never.")
    var progress: ProgressMode = .auto

    @Option(help: "Largest message accepted or sent, in bytes.")
    var maxMessageSize: Int = WireFormat.defaultMaxMessageSize

    @Option(help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    enum ProgressMode: String, ExpressibleByArgument, CaseIterable { case auto, always, never }

    public init() {}

    public mutating func validate() throws {
        guard localWorkers >= 0 else { throw ValidationError("--local-workers cannot be negative") }
        guard window >= 1 else { throw ValidationError("--window must be at least 1") }
        guard (1...Int(UInt16.max)).contains(batch) else { throw ValidationError("--batch must be 1-65535") }
        guard maxMessageSize >= 1024 else { throw ValidationError("--max-message-size must be at least 1024") }
        if let generate, generate < 0 { throw ValidationError("--generate cannot be negative") }
        let sources = [input != nil, demo, generate != nil].filter { $0 }.count
        guard sources <= 1 else { throw ValidationError("choose one of --input, --demo and --generate") }
        for spec in setEvents where Self.parseEvent(spec) == nil {
            throw ValidationError("--set-event '\(spec)' must be NAME or NAME:SECONDS")
        }
    }

    static func parseEvent(_ spec: String) -> (name: String, delay: Double)? {
        guard let colon = spec.lastIndex(of: ":") else { return spec.isEmpty ? nil : (spec, 0) }
        let name = String(spec[..<colon])
        guard !name.isEmpty, name.utf8.count <= WireFormat.maxNameLength,
            let delay = Double(spec[spec.index(after: colon)...]), delay >= 0
        else { return nil }
        return (name, delay)
    }

    public func run() throws {
        let logger = bootstrapLogging(processName: "MainProcess", level: logLevel)
        var configuration = ProducerConfiguration()
        configuration.endpoints = endpoints.resolve(default: .defaultBind)
        configuration.window = window
        configuration.batchSize = batch
        configuration.maxMessageSize = maxMessageSize
        configuration.shutdownWorkersAtEnd = !keepWorkers
        configuration.minimumWorkers = waitWorkers ?? localWorkers
        let producer = Producer(configuration: configuration, logger: logger)

        let source = try makeSource(logger: logger)
        let showProgress =
            progress == .always || (progress == .auto && isatty(STDERR_FILENO) == 1 && logLevel > .debug)
        let printer = ResultPrinter(format: output, showProgress: showProgress)
        var localWorkerProcess: ChildProcess?
        let signals = onTerminationSignals { number in
            logger.warning("received signal \(number); no more tasks will be sent")
            producer.cancel()
        }
        defer { withExtendedLifetime(signals) {} }

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
                    localWorkerProcess = try startLocalWorkers(endpoints: bound, logger: logger)
                },
                onResult: printer.print,
                onProgress: printer.progress)
        } catch let error as ZeroMQError {
            var hint = ""
            if error.code == .addressInUse {
                hint =
                    "; is another producer running? Pick other endpoints with --tasks/--results/--events or --ipc DIR"
            }
            logger.critical("cannot start: \(error)\(hint)")
            if let child = localWorkerProcess { stopLocalWorkers(child, logger: logger) }
            throw ExitCode(2)
        }
        printer.flush()
        printer.clearProgress()
        if let child = localWorkerProcess { stopLocalWorkers(child, logger: logger) }

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
        if summary.rejectedMessages > 0 { text += " | \(summary.rejectedMessages) malformed messages rejected" }
        FileHandle.standardError.write(Data((text + "\n").utf8))
        if summary.failed > 0 { throw ExitCode(1) }
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

    private func startLocalWorkers(endpoints: PoolEndpoints, logger: Logger) throws -> ChildProcess {
        let path =
            workerPath
            ?? URL(fileURLWithPath: ChildProcess.currentExecutable).deletingLastPathComponent()
            .appendingPathComponent("worker").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw ValidationError("no worker binary at \(path); build it or pass --worker-path")
        }
        let arguments = [
            "--tasks", endpoints.tasks, "--results", endpoints.results, "--events", endpoints.events,
            "--processes", "\(localWorkers)", "--threads", "\(workerThreads)",
            "--max-message-size", "\(maxMessageSize)", "--log-level", logLevel.rawValue,
            "--parent-pid", "\(getpid())",
        ]
        logger.info("Creating \(localWorkers) local worker processes")
        return try ChildProcess.spawn(executable: path, arguments: arguments)
    }

    /// Waits for the local workers to leave after the shutdown broadcast; ends them if they do not.
    private func stopLocalWorkers(_ child: ChildProcess, logger: Logger) {
        var deadline = ContinuousClock.now + .seconds(10)
        var signalled = false
        while true {
            if let status = child.poll() {
                if status != .exited(0) { logger.warning("local workers ended with \(status)") }
                return
            }
            if ContinuousClock.now >= deadline {
                if signalled {
                    logger.error("local workers did not stop; killing them")
                    child.signal(SIGKILL)
                    _ = child.wait()
                    return
                }
                logger.warning("local workers still running; sending SIGTERM")
                child.signal(SIGTERM)
                signalled = true
                deadline = ContinuousClock.now + .seconds(10)
            }
            // Polling a child's exit status: waitpid has no timeout.
            usleep(20_000)
        }
    }
}
