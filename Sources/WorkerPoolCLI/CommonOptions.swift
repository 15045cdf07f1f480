import ArgumentParser
import Dispatch
import Foundation
import Logging
import WorkerPool

extension Logger.Level: @retroactive ExpressibleByArgument {
    public init?(argument: String) {
        switch argument.lowercased() {
        case "warn": self = .warning
        default: self.init(rawValue: argument.lowercased())
        }
    }
}

/// Installs the `[LEVEL/Process-name]` stderr handler for this process.
func bootstrapLogging(
    processName: String, level: Logger.Level, output: (@Sendable (UnsafeRawBufferPointer) -> Void)? = nil
) -> Logger {
    LoggingSystem.bootstrap { _ in ProcessLogHandler(processName: processName, logLevel: level, output: output) }
    var logger = Logger(label: "zmq-worker-pool")
    logger.logLevel = level
    return logger
}

/// Calls `handler` on a background queue for each SIGINT or SIGTERM, instead of dying.
/// The returned sources must be kept alive.
func onTerminationSignals(_ handler: @escaping @Sendable (Int32) -> Void) -> [any DispatchSourceSignal] {
    [SIGINT, SIGTERM].map { number in
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler { handler(number) }
        source.resume()
        return source
    }
}

func currentHostName() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count) == 0 else { return "localhost" }
    return String(decoding: buffer.prefix(while: { $0 != 0 }).map(UInt8.init(bitPattern:)), as: UTF8.self)
}

/// Endpoint options shared by producer (bind) and worker (connect).
struct EndpointOptions: ParsableArguments {
    @Option(name: .customLong("tasks"), help: "Tasks endpoint (ROUTER on the producer, a DEALER per worker thread).")
    var tasks: String?

    @Option(name: .customLong("results"), help: "Results endpoint (PULL on the producer, PUSH on workers).")
    var results: String?

    @Option(name: .customLong("events"), help: "Events endpoint (XPUB on the producer, SUB on workers).")
    var events: String?

    @Option(
        help: ArgumentHelp(
            "Use ipc:// endpoints in this directory (tasks, results, events) instead of tcp.",
            discussion: "For workers on the same host; the producer and its workers must name the same directory."))
    var ipc: String?

    func resolve(default base: PoolEndpoints) -> PoolEndpoints {
        var endpoints = ipc.map { PoolEndpoints.ipc(directory: $0) } ?? base
        if let tasks { endpoints.tasks = tasks }
        if let results { endpoints.results = results }
        if let events { endpoints.events = events }
        return endpoints
    }

    /// The same choices as worker arguments.
    func arguments(for endpoints: PoolEndpoints) -> [String] {
        ["--tasks", endpoints.tasks, "--results", endpoints.results, "--events", endpoints.events]
    }
}
