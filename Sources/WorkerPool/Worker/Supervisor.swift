import Foundation
import Logging
import Synchronization

/// Starts `processes` worker children and restarts any that dies; children that exit with
/// code 0 (shutdown, SIGTERM) are done. Like a `multiprocessing.Pool` that survives crashes.
public final class Supervisor: Sendable {
    public let processes: Int
    private let executable: String
    private let childArguments: @Sendable (_ index: Int) -> [String]
    private let logger: Logger
    private let state = Mutex(State())
    /// Wakes a restart backoff early when stopping.
    private let stopSemaphore = DispatchSemaphore(value: 0)

    private struct State {
        var stopping = false
        var children: [pid_t: Int] = [:]
    }

    /// - Parameter childArguments: the command line of child `index` (1-based).
    public init(
        processes: Int, executable: String, logger: Logger,
        childArguments: @escaping @Sendable (_ index: Int) -> [String]
    ) {
        self.processes = processes
        self.executable = executable
        self.logger = logger
        self.childArguments = childArguments
    }

    /// Forwards SIGTERM to every child; they finish the task in hand and leave.
    public func stop() {
        let pids = state.withLock { state -> [pid_t] in
            state.stopping = true
            return Array(state.children.keys)
        }
        stopSemaphore.signal()
        for pid in pids { ChildProcess(pid: pid).signal(SIGTERM) }
    }

    /// Runs until every child has ended cleanly; returns the exit code for this process.
    public func run() -> Int32 {
        for index in 1...processes { start(index) }
        var restarts = [Int](repeating: 0, count: processes + 1)
        while let (child, status) = ChildProcess.waitAny() {
            let (index, stopping) = state.withLock { state in
                (state.children.removeValue(forKey: child.pid), state.stopping)
            }
            guard let index else { continue }
            let name = "Worker-\(index)"
            if status == .exited(0) {
                logger.debug("\(name) (pid \(child.pid)) ended with \(status)")
            } else if stopping {
                logger.warning("\(name) (pid \(child.pid)) ended with \(status) while stopping")
            } else {
                restarts[index] += 1
                let backoff = min(0.1 * pow(2, Double(min(restarts[index] - 1, 6))), 5)
                logger.error(
                    "\(name) (pid \(child.pid)) died with \(status); restarting in \(String(format: "%.1f", backoff)) s"
                )
                if stopSemaphore.wait(timeout: .now() + backoff) == .success {
                    stopSemaphore.signal()
                    continue
                }
                start(index)
            }
            if state.withLock({ $0.children.isEmpty }) { break }
        }
        logger.info("process shutting down")
        return 0
    }

    private func start(_ index: Int) {
        do {
            let child = try ChildProcess.spawn(executable: executable, arguments: childArguments(index))
            let stopping = state.withLock { state -> Bool in
                state.children[child.pid] = index
                return state.stopping
            }
            if stopping { child.signal(SIGTERM) }
            logger.debug("started Worker-\(index) (pid \(child.pid))")
        } catch {
            logger.error("could not start Worker-\(index): \(error)")
        }
    }
}
