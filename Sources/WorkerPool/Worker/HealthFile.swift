import Foundation
import Logging

/// The file container probes read (`--health-file`): `connected` while the producer's broadcasts
/// arrive (they come every 250 ms), `waiting` otherwise, rewritten every second, so a stale file
/// means a stuck worker.
///
/// Under a supervisor each process writes its own `PATH.N` and the supervisor writes `PATH` from
/// them: `connected` only when every process is, and nothing at all (the file goes stale) while a
/// process that has been running for a while stops writing.
struct HealthFile {
    let path: String
    private var lastHeard: ContinuousClock.Instant?
    private var lastWritten: ContinuousClock.Instant?
    private var warned = false

    init(path: String) { self.path = path }

    mutating func heard() { lastHeard = .now }

    /// A worker process's own state, at most once a second.
    mutating func update(now: ContinuousClock.Instant, logger: Logger) {
        if let lastWritten, now - lastWritten < .seconds(1) { return }
        lastWritten = now
        let connected = lastHeard.map { now - $0 < .seconds(3) } ?? false
        write(connected ? "connected" : "waiting", logger: logger)
    }

    /// The supervisor's summary of its processes' files (`PATH.N` for each index in `children`,
    /// with when each process started); at most once a second.
    mutating func summarize(
        children: [(index: Int, startedAt: ContinuousClock.Instant)], now: ContinuousClock.Instant, logger: Logger
    ) {
        if let lastWritten, now - lastWritten < .seconds(1) { return }
        lastWritten = now
        var connected = !children.isEmpty
        for child in children {
            let file = Self.childPath(path, index: child.index)
            let modified = (try? FileManager.default.attributesOfItem(atPath: file))?[.modificationDate] as? Date
            guard let modified, Date().timeIntervalSince(modified) < 5 else {
                // Not written lately: a process just started has not had time; any other is stuck.
                if now - child.startedAt > .seconds(5) { return }
                connected = false
                continue
            }
            let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
            if !text.hasPrefix("connected") { connected = false }
        }
        write(connected ? "connected" : "waiting", logger: logger)
    }

    /// Where worker process `index` (1-based) writes under a supervisor.
    static func childPath(_ path: String, index: Int) -> String { "\(path).\(index)" }

    /// Replaces the file in one step, so a probe never reads half of it.
    private mutating func write(_ state: String, logger: Logger) {
        let temporary = "\(path).\(getpid()).tmp"
        do {
            try (state + "\n").write(toFile: temporary, atomically: false, encoding: .utf8)
            guard rename(temporary, path) == 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        } catch {
            if !warned { logger.warning("cannot write health file \(path): \(error)") }
            warned = true
            try? FileManager.default.removeItem(atPath: temporary)
        }
    }
}
