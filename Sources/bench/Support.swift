import Foundation
import PoolSystem
import Synchronization
import WorkerPool

/// Ctrl-C and SIGTERM: the first stops the sweep after cancelling the run in progress (the
/// producer ends what it sent, workers leave, the cluster comes down, results so far are
/// written); the second runs the emergency cleanups and exits 130 at once.
final class BenchStop: Sendable {
    private let stopped = Atomic<Bool>(false)
    private let state = Mutex(State())

    private struct State {
        var producer: Producer?
        var cleanups: [Int: @Sendable () -> Void] = [:]
        var nextCleanup = 0
        var signals = 0
    }

    var isStopped: Bool { stopped.load(ordering: .acquiring) }

    /// The producer of the run in progress, cancelled on the first signal.
    func setProducer(_ producer: Producer?) {
        let cancelNow = state.withLock { state -> Bool in
            state.producer = producer
            return isStopped
        }
        if cancelNow { producer?.cancel() }
    }

    /// Registers something to undo if the process must leave at once; returns its key.
    func addCleanup(_ cleanup: @escaping @Sendable () -> Void) -> Int {
        state.withLock { state in
            state.nextCleanup += 1
            state.cleanups[state.nextCleanup] = cleanup
            return state.nextCleanup
        }
    }

    func removeCleanup(_ key: Int) {
        _ = state.withLock { $0.cleanups.removeValue(forKey: key) }
    }

    func signalled(_ number: Int32) {
        let (count, producer, cleanups) = state.withLock { state in
            state.signals += 1
            return (state.signals, state.producer, Array(state.cleanups.values))
        }
        stopped.store(true, ordering: .releasing)
        if count == 1 {
            Log.line("bench: signal \(number): stopping after the run in progress (again to leave at once)")
            producer?.cancel()
        } else {
            Log.line("bench: second signal: cleaning up and leaving")
            for cleanup in cleanups { cleanup() }
            exit(130)
        }
    }

    /// Installs the handlers; keep the returned sources alive.
    func install() -> [any DispatchSourceSignal] {
        [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in signalled(number) }
            source.resume()
            return source
        }
    }
}

/// Progress and messages on stderr; a live line (rewritten with `\r`) only on a terminal.
enum Log {
    static let isTerminal = isatty(STDERR_FILENO) == 1
    private static let liveShown = Mutex(false)

    static func line(_ text: String) {
        liveShown.withLock { shown in
            var out = shown ? "\r\u{1B}[K" : ""
            shown = false
            out += text + "\n"
            FileHandle.standardError.write(Data(out.utf8))
        }
    }

    static func live(_ text: String) {
        guard isTerminal else { return }
        liveShown.withLock { shown in
            shown = true
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + text).utf8))
        }
    }
}

/// Runs a command to its end (no shell), with stdout captured and stderr passed through or
/// captured. Uses `ChildProcess` (posix_spawn + waitpid on its own pid), not Foundation's
/// `Process`, whose reaping could race with the waits on local worker supervisors.
enum Command {
    struct Output {
        var status: ChildProcess.Status
        var stdout: String
        var stderr: String
        var ok: Bool { status == .exited(0) }
    }

    static func run(_ executable: String, _ arguments: [String], captureStderr: Bool = false) throws -> Output {
        var outPipe: [Int32] = [-1, -1]
        var errPipe: [Int32] = [-1, -1]
        guard makePipe(&outPipe) else { throw POSIXError(.EMFILE) }
        if captureStderr {
            guard makePipe(&errPipe) else {
                close(outPipe[0])
                close(outPipe[1])
                throw POSIXError(.EMFILE)
            }
        }
        var inherit: [(source: Int32, target: Int32)] = [(outPipe[1], 1)]
        if captureStderr { inherit.append((errPipe[1], 2)) }
        let child: ChildProcess
        do {
            child = try ChildProcess.spawn(executable: executable, arguments: arguments, inherit: inherit)
        } catch {
            for fd in outPipe + errPipe where fd >= 0 { close(fd) }
            throw error
        }
        close(outPipe[1])
        if captureStderr { close(errPipe[1]) }
        // Read stderr on another thread so neither pipe can fill up and stall the child.
        let errText = Mutex("")
        let errDone = DispatchSemaphore(value: 0)
        if captureStderr {
            let fd = errPipe[0]
            Thread {
                let text = readAll(fd)
                errText.withLock { $0 = text }
                errDone.signal()
            }.start()
        }
        let out = readAll(outPipe[0])
        close(outPipe[0])
        if captureStderr {
            errDone.wait()
            close(errPipe[0])
        }
        let status = child.wait()
        return Output(status: status, stdout: out, stderr: errText.withLock { $0 })
    }

    /// A pipe whose ends close on exec (only the dup2'ed copy reaches the child). Commands are
    /// started from one thread at a time, so nothing else forks between pipe and fcntl.
    private static func makePipe(_ fds: inout [Int32]) -> Bool {
        guard pipe(&fds) == 0 else { return false }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return true
    }

    /// Everything left to read on `fd`, until end of file.
    static func readAll(_ fd: Int32) -> String {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let got = buffer.withUnsafeMutableBytes { raw in
                Syscall.retryingOnInterrupt { Glibc.read(fd, raw.baseAddress, raw.count) }
            }
            guard case .success(let count) = got, count > 0 else { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The full path of `name` on PATH, or nil.
    static func which(_ name: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}

/// A private temporary directory, removed by `remove()`.
func makeTemporaryDirectory(prefix: String) throws -> String {
    var template = Array((NSTemporaryDirectory() + "/\(prefix)-XXXXXX").utf8CString)
    guard let made = mkdtemp(&template) else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    return String(cString: made)
}
