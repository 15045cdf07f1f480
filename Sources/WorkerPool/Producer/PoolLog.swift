import Foundation
import Logging
import PoolSystem

/// The pool log (`--pool-log FILE`): what happened to the pool, one JSON object per line,
/// appended by a thread of its own so the dispatch thread only hands events over.
///
/// Each batch of events is written with one `write(2)` as it arrives (events are rare), so the
/// file can be followed with `tail -f` during a run. A write that fails is logged once and the
/// log stops; the run goes on (the pool log tells the story, it decides nothing).
///
/// `@unchecked Sendable`: the queue and the flags are touched only with `condition` locked;
/// the file and the encoder's state only on the writer's own thread.
final class PoolLog: @unchecked Sendable {
    let path: String
    private let condition = NSCondition()
    private var queue: [PoolEvent] = []
    private var finishing = false
    private var done = false
    private let fileDescriptor: Int32
    private let clock = WallClock()
    private let logger: Logger

    /// Opens (creating, or appending to) `path` and starts the writer thread.
    ///
    /// - Throws: ``PoolLogError`` when the file cannot be opened for appending.
    init(path: String, logger: Logger) throws(PoolLogError) {
        self.path = path
        self.logger = logger
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw PoolLogError(path: path, errno: errno) }
        fileDescriptor = fd
        // A previous run killed in mid-line left a torn tail: end it, so each line of ours parses.
        var last: UInt8 = 0
        let size = lseek(fd, 0, SEEK_END)
        if size > 0, pread(fd, &last, 1, size - 1) == 1, last != 0x0A {
            var newline = UInt8(0x0A)
            _ = withUnsafeBytes(of: &newline) { Syscall.writeAll(fd, $0) }
        }
        let thread = Thread { [self] in run() }
        thread.name = "pool-log"
        thread.start()
    }

    deinit { close(fileDescriptor) }

    /// This process's id, for the `run-started` line.
    static var processID: Int32 { getpid() }

    /// This machine's name, as the pool log's `run-started` line gives it.
    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix(while: { $0 != 0 }).map(UInt8.init(bitPattern:)), as: UTF8.self)
    }

    /// Hands over events in the order they happened. Takes one lock; never waits for I/O.
    func submit(_ events: [PoolEvent]) {
        guard !events.isEmpty else { return }
        condition.lock()
        let wasEmpty = queue.isEmpty
        queue.append(contentsOf: events)
        condition.unlock()
        if wasEmpty { condition.signal() }
    }

    /// Writes everything submitted, then ends the thread.
    func finish() {
        condition.lock()
        finishing = true
        condition.broadcast()
        while !done { condition.wait() }
        condition.unlock()
    }

    private func run() {
        var taken: [PoolEvent] = []
        var line: [UInt8] = []
        var runStart: PoolTime?
        var failed = false
        while true {
            condition.lock()
            while queue.isEmpty && !finishing { condition.wait() }
            swap(&taken, &queue)
            let ending = finishing && taken.isEmpty
            condition.unlock()
            if ending { break }
            guard !failed else {
                taken.removeAll(keepingCapacity: true)
                continue
            }
            line.removeAll(keepingCapacity: true)
            for event in taken {
                if runStart == nil { runStart = event.time }
                event.appendJSONLine(to: &line, wallClock: clock, runStart: runStart ?? event.time)
            }
            taken.removeAll(keepingCapacity: true)
            if case .failure(let error) = line.withUnsafeBytes({ Syscall.writeAll(fileDescriptor, $0) }) {
                failed = true
                logger.error("pool log \(path): write failed (\(error)); no more pool-log lines this run")
            }
        }
        condition.lock()
        done = true
        condition.broadcast()
        condition.unlock()
    }
}

/// The pool log could not be opened.
public struct PoolLogError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let errno: Int32

    public var description: String { "cannot open the pool log \(path): \(String(cString: strerror(errno)))" }
}
