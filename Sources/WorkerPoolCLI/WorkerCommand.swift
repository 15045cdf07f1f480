import ArgumentParser
import Foundation
import Logging
import Synchronization
import WorkerPool

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

    @Option(help: "Name to report as this worker's host.")
    var hostName: String?

    @Option(help: "Largest message accepted or sent, in bytes.")
    var maxMessageSize: Int = WireFormat.defaultMaxMessageSize

    @Option(help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    @Option(help: .hidden) var childIndex: Int?
    @Option(help: .hidden) var parentPid: Int32?

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
    }

    public func run() throws {
        let resolved = endpoints.resolve(default: .connecting(to: connect))
        if let index = childIndex {
            let code = try runChild(index: index, endpoints: resolved)
            Foundation.exit(code)
        }
        let logger = bootstrapLogging(processName: "Supervisor", level: logLevel)
        if let parent = parentPid, !ChildProcess.followParent(parent) {
            logger.warning("parent process \(parent) is gone; not starting")
            return
        }
        logger.info("starting \(processes) worker processes with \(threads) threads each, producer at \(resolved)")
        let host = hostName ?? currentHostName()
        let ownPid = getpid()
        let common =
            endpoints.arguments(for: resolved) + [
                "--threads", "\(threads)", "--host-name", host, "--max-message-size", "\(maxMessageSize)",
                "--log-level", logLevel.rawValue, "--parent-pid", "\(ownPid)",
            ]
        let supervisor = Supervisor(
            processes: processes, executable: ChildProcess.currentExecutable, logger: logger
        ) { index in
            common + ["--child-index", "\(index)"]
        }
        let signals = onTerminationSignals { number in
            logger.info("received signal \(number); asking workers to finish")
            supervisor.stop()
        }
        let code = supervisor.run()
        withExtendedLifetime(signals) {}
        logger.info("process exiting with exitcode \(code)")
        if code != 0 { throw ExitCode(code) }
    }

    private func runChild(index: Int, endpoints: PoolEndpoints) throws -> Int32 {
        let name = "Worker-\(index)"
        let logger = bootstrapLogging(processName: name, level: logLevel)
        if let parent = parentPid, !ChildProcess.followParent(parent) { return 0 }
        logger.info("child process calling self.run()")
        var configuration = WorkerConfiguration(endpoints: endpoints, name: name, host: hostName ?? currentHostName())
        configuration.threads = threads
        configuration.maxMessageSize = maxMessageSize
        let node = try WorkerNode(
            configuration: configuration, registry: Self.registryStore.withLock { $0 }, logger: logger)
        let signals = onTerminationSignals { number in
            node.stop(reason: "signal \(number)")
        }
        let report = try node.run()
        withExtendedLifetime(signals) {}
        logger.debug(
            "\(report.tasksDone) tasks done, \(report.tasksFailed) failed, \(report.malformedMessages) malformed messages"
        )
        logger.info("process shutting down")
        logger.info("process exiting with exitcode 0")
        return 0
    }
}
