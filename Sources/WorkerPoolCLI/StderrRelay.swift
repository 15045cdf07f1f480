import Foundation
import PoolSystem

/// Carries the local workers' stderr through the live view: they write into a pipe, and a
/// thread here prints their lines above the panel, so a worker's log line never lands inside it.
///
/// `@unchecked Sendable`: the descriptors are set once in `init`; the thread owns the read end.
final class StderrRelay: @unchecked Sendable {
    /// The descriptor the children get as their stderr.
    let writeEnd: Int32
    private let readEnd: Int32
    private let panel: TerminalPanel
    private let ended = DispatchSemaphore(value: 0)

    init(panel: TerminalPanel) throws {
        var ends: [Int32] = [0, 0]
        // pipe2 is not in Glibc's Swift overlay; nothing else spawns while this runs.
        guard pipe(&ends) == 0 else { throw Errno(rawValue: errno) }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        readEnd = ends[0]
        writeEnd = ends[1]
        self.panel = panel
    }

    /// Starts relaying, once the children hold the write end (this process's copy is closed,
    /// so the pipe ends when the last child does).
    func start() {
        close(writeEnd)
        let thread = Thread { [self] in run() }
        thread.name = "worker-stderr"
        thread.start()
    }

    /// Waits (at most `timeout` seconds) until every child closed its stderr.
    func finish(timeout: Double) {
        if ended.wait(timeout: .now() + timeout) == .success { ended.signal() }
    }

    private func run() {
        var pending: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4_096)
        while true {
            let count = chunk.withUnsafeMutableBytes { buffer in
                Syscall.retryingOnInterrupt { read(readEnd, buffer.baseAddress, buffer.count) }
            }
            guard case .success(let read) = count, read > 0 else { break }
            pending += chunk[..<read]
            // Whole lines only: half a line above the panel would be finished below it.
            guard let last = pending.lastIndex(of: 0x0A) else { continue }
            pending[...last].withUnsafeBytes { panel.writeAbove($0, to: STDERR_FILENO) }
            pending.removeSubrange(...last)
        }
        if !pending.isEmpty {
            pending.append(0x0A)
            pending.withUnsafeBytes { panel.writeAbove($0, to: STDERR_FILENO) }
        }
        close(readEnd)
        ended.signal()
    }
}
