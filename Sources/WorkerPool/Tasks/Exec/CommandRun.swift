import CPoolSystem
import Glibc
import PoolSystem

/// One run of a program for the `exec` task: spawned in a process group of its own with
/// stdin, stdout and stderr as pipes, its output read as it comes (both pipes at once, so a
/// command that fills one while we wait on the other cannot deadlock), stopped at a deadline or
/// when the worker stops (SIGTERM to the group, SIGKILL after a grace period), and reaped.
///
/// After the command's own process ends, whatever it left in its group (a daemon holding the
/// stdout pipe, a forgotten `sleep &`) gets a short drain period for the pipes, then SIGKILL:
/// a task ends when its command does, and nothing it started outlives it.
struct CommandRun {
    struct Request {
        /// The resolved program.
        var path: String
        var arguments: [String]
        /// `KEY=VALUE` entries; nil: the worker's own environment.
        var environment: [String]?
        var directory: String?
        var input: [UInt8]?
        /// Bytes kept of each of stdout and stderr; the rest is read and counted.
        var outputLimit: Int
        /// Monotonic nanoseconds; nil: no limit.
        var deadline: UInt64?
        var graceNanoseconds: UInt64
        var drainNanoseconds: UInt64
        /// Readable once the worker is stopping (-1: none).
        var stopFileDescriptor: Int32 = -1
        /// Called with the process group as soon as it exists, and with 0 just before the
        /// command's process is reaped.
        var recordGroup: (pid_t) -> Void = { _ in }
    }

    enum Ending: Equatable {
        case exited(Int32)
        case signalled(Int32)
    }

    /// Why the command was stopped before it ended by itself.
    enum Interruption: Equatable {
        case deadline
        case workerStopping
    }

    struct Captured {
        var bytes: [UInt8] = []
        var total = 0
        var truncated: Bool { total > bytes.count }
    }

    struct Report {
        var pid: pid_t
        var ending: Ending
        var interruption: Interruption?
        /// SIGKILL was needed after SIGTERM's grace.
        var killed = false
        var stdout: Captured
        var stderr: Captured
        var runNanoseconds: UInt64
    }

    /// Spawns and runs `request` to its end; throws the spawn's errno (the exec's own failure
    /// included) when there is no process to run.
    static func run(_ request: Request) throws(Errno) -> Report {
        var run = try Running(request)
        return run.finish()
    }

    /// The state of one running command, owned by the calling thread.
    private struct Running {
        let request: Request
        let pid: pid_t
        let startedAt: UInt64
        var stdoutPipe: Int32
        var stderrPipe: Int32
        var stdinPipe: Int32
        var inputOffset = 0
        let processDescriptor: Int32
        var stdout = Captured()
        var stderr = Captured()
        var exitedAt: UInt64?
        var interruption: Interruption?
        var killAt: UInt64?
        var killed = false
        var watchingStop: Bool

        init(_ request: Request) throws(Errno) {
            self.request = request
            var output: [Int32] = [-1, -1]
            var errors: [Int32] = [-1, -1]
            var input: [Int32] = [-1, -1]
            guard cpool_pipe_cloexec(&output) == 0 else { throw Errno(rawValue: errno) }
            guard cpool_pipe_cloexec(&errors) == 0 else {
                let saved = errno
                closeAll(output)
                throw Errno(rawValue: saved)
            }
            if request.input?.isEmpty == false {
                guard cpool_pipe_cloexec(&input) == 0 else {
                    let saved = errno
                    closeAll(output + errors)
                    throw Errno(rawValue: saved)
                }
            } else {
                input[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)
            }
            var pid: pid_t = 0
            startedAt = cpool_monotonic_nanoseconds()
            let result = Self.spawn(request, pid: &pid, stdin: input[0], stdout: output[1], stderr: errors[1])
            // The child holds its ends now; ours must close, or end of file never comes.
            closeAll([input[0], output[1], errors[1]])
            guard result == 0 else {
                closeAll([input[1], output[0], errors[0]])
                throw Errno(rawValue: result)
            }
            self.pid = pid
            request.recordGroup(pid)
            stdoutPipe = output[0]
            stderrPipe = errors[0]
            stdinPipe = input[1]
            for fd in [stdoutPipe, stderrPipe, stdinPipe] where fd >= 0 {
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            }
            processDescriptor = cpool_pidfd_open(pid)
            watchingStop = request.stopFileDescriptor >= 0
        }

        private static func spawn(
            _ request: Request, pid: inout pid_t, stdin: Int32, stdout: Int32, stderr: Int32
        ) -> Int32 {
            var child: pid_t = 0
            let result = withCStrings(request.arguments) { argv in
                withCStrings(request.environment ?? []) { environment in
                    let envp = request.environment == nil ? nil : environment
                    guard let directory = request.directory else {
                        return cpool_spawn_command(&child, request.path, argv, envp, nil, stdin, stdout, stderr)
                    }
                    return cpool_spawn_command(&child, request.path, argv, envp, directory, stdin, stdout, stderr)
                }
            }
            pid = child
            return result
        }

        mutating func finish() -> Report {
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let now = cpool_monotonic_nanoseconds()
                step(now: now)
                if let exitedAt, (stdoutPipe < 0 && stderrPipe < 0) || now &- exitedAt >= request.drainNanoseconds {
                    break
                }
                waitForEvents(now: now, buffer: &buffer)
            }
            // Whatever is left in the group (a daemon, a background job) goes with the command.
            // The command's process is not reaped yet, so its group id cannot be anyone else's.
            kill(-pid, SIGKILL)
            request.recordGroup(0)
            let ending = reap()
            closeAll([stdoutPipe, stderrPipe, stdinPipe, processDescriptor])
            return Report(
                pid: pid, ending: ending, interruption: interruption, killed: killed, stdout: stdout,
                stderr: stderr, runNanoseconds: (exitedAt ?? cpool_monotonic_nanoseconds()) &- startedAt)
        }

        /// Deadlines and escalation: SIGTERM at the deadline or the worker's stop, SIGKILL after grace.
        private mutating func step(now: UInt64) {
            guard exitedAt == nil else { return }
            if interruption == nil, let deadline = request.deadline, now >= deadline {
                terminate(.deadline, now: now)
            }
            if let killAt, now >= killAt, !killed {
                kill(-pid, SIGKILL)
                killed = true
            }
        }

        private mutating func terminate(_ reason: Interruption, now: UInt64) {
            guard interruption == nil else { return }
            interruption = reason
            kill(-pid, SIGTERM)
            killAt = now &+ request.graceNanoseconds
        }

        private mutating func waitForEvents(now: UInt64, buffer: inout [UInt8]) {
            var fds: [pollfd] = []
            fds.reserveCapacity(5)
            if stdoutPipe >= 0 { fds.append(pollfd(fd: stdoutPipe, events: Int16(POLLIN), revents: 0)) }
            if stderrPipe >= 0 { fds.append(pollfd(fd: stderrPipe, events: Int16(POLLIN), revents: 0)) }
            if stdinPipe >= 0 { fds.append(pollfd(fd: stdinPipe, events: Int16(POLLOUT), revents: 0)) }
            if processDescriptor >= 0 && exitedAt == nil {
                fds.append(pollfd(fd: processDescriptor, events: Int16(POLLIN), revents: 0))
            }
            if watchingStop && interruption == nil && exitedAt == nil {
                fds.append(pollfd(fd: request.stopFileDescriptor, events: Int16(POLLIN), revents: 0))
            }
            let ready = fds.withUnsafeMutableBufferPointer { poll($0.baseAddress, nfds_t($0.count), timeout(now: now)) }
            if ready < 0 && errno != EINTR { usleep(1_000) }  // cannot happen with valid descriptors; never spin
            for entry in fds where entry.revents != 0 {
                switch entry.fd {
                case stdoutPipe: read(&stdoutPipe, into: &stdout, buffer: &buffer)
                case stderrPipe: read(&stderrPipe, into: &stderr, buffer: &buffer)
                case stdinPipe: writeInput()
                case processDescriptor: exitedAt = cpool_monotonic_nanoseconds()
                default: terminate(.workerStopping, now: cpool_monotonic_nanoseconds())
                }
            }
            if processDescriptor < 0 && exitedAt == nil && hasExited() { exitedAt = cpool_monotonic_nanoseconds() }
        }

        /// Milliseconds until the next thing due: the deadline, the SIGKILL, the drain's end.
        private func timeout(now: UInt64) -> Int32 {
            var due: UInt64?
            func consider(_ time: UInt64?) {
                guard let time else { return }
                due = min(due ?? time, time)
            }
            if let exitedAt {
                consider(exitedAt &+ request.drainNanoseconds)
            } else {
                if interruption == nil { consider(request.deadline) }
                if !killed { consider(killAt) }
                // Without a pidfd (a kernel before 5.3) the exit is noticed by polling.
                if processDescriptor < 0 { consider(now &+ 5_000_000) }
            }
            guard let due else { return -1 }
            return due <= now ? 0 : Int32(clamping: (due - now + 999_999) / 1_000_000)
        }

        private func read(_ fd: inout Int32, into captured: inout Captured, buffer: inout [UInt8]) {
            let limit = request.outputLimit
            // At most 1 MiB per wake-up: a command that writes without pause must not keep
            // this loop from its deadlines.
            for _ in 0..<16 {
                let got = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                if got > 0 {
                    let keep = min(got, max(limit - captured.bytes.count, 0))
                    if keep > 0 { captured.bytes.append(contentsOf: buffer[0..<keep]) }
                    captured.total += got
                    continue
                }
                if got < 0 && errno == EINTR { continue }
                if got < 0 && errno == EAGAIN { return }
                close(fd)  // end of file, or an error that will not go away
                fd = -1
                return
            }
        }

        private mutating func writeInput() {
            guard let input = request.input else { return }
            while inputOffset < input.count {
                let written = input.withUnsafeBytes {
                    Glibc.write(stdinPipe, $0.baseAddress! + inputOffset, input.count - inputOffset)
                }
                if written > 0 {
                    inputOffset += written
                    continue
                }
                if written < 0 && errno == EINTR { continue }
                if written < 0 && errno == EAGAIN { return }
                break  // EPIPE: the command does not read its input; SIGPIPE is ignored here
            }
            close(stdinPipe)
            stdinPipe = -1
        }

        private func hasExited() -> Bool {
            var info = siginfo_t()
            // WNOWAIT: look without reaping, so the group id stays ours until the end.
            return waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_signo == SIGCHLD
        }

        private func reap() -> Ending {
            var raw: Int32 = 0
            guard case .success = Syscall.retryingOnInterrupt({ waitpid(pid, &raw, 0) }) else { return .exited(-1) }
            return raw & 0x7f == 0 ? .exited((raw >> 8) & 0xff) : .signalled(raw & 0x7f)
        }
    }
}

private func closeAll(_ descriptors: [Int32]) {
    for fd in descriptors where fd >= 0 { close(fd) }
}

/// `strings` as a NULL-terminated array of C strings, for the duration of `body`.
private func withCStrings<Result>(
    _ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> Result
) -> Result {
    let pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) } + [nil]
    defer { for pointer in pointers { free(pointer) } }
    return body(pointers)
}
