import CPoolSystem
import Foundation
import Glibc
import PoolSystem

/// A child process started with `posix_spawn`, inheriting stdin, stdout and stderr.
///
/// Written against POSIX rather than Foundation's `Process` because the supervisor reaps any
/// child with `waitpid(-1)`, which would race with `Process`'s own reaping.
public struct ChildProcess: Sendable, Equatable {
    public let pid: pid_t

    public enum Status: Sendable, Equatable, CustomStringConvertible {
        case exited(Int32)
        case signalled(Int32)

        init(raw: Int32) {
            // WIFEXITED / WEXITSTATUS / WTERMSIG, which Swift does not import as macros.
            if raw & 0x7f == 0 {
                self = .exited((raw >> 8) & 0xff)
            } else {
                self = .signalled(raw & 0x7f)
            }
        }

        public var description: String {
            switch self {
            case .exited(let code): "exitcode \(code)"
            case .signalled(let signal): "signal \(signal) (\(String(cString: strsignal(signal))))"
            }
        }
    }

    /// Starts `executable`; `inherit` maps descriptors of this process to descriptor numbers in
    /// the child (e.g. a shared-memory file to 3).
    /// With `newProcessGroup`, the child leads a process group of its own, so a terminal's
    /// Ctrl-C does not reach it and ``signalGroup(_:)`` reaches it and all its children.
    public static func spawn(
        executable: String, arguments: [String], inherit: [(source: Int32, target: Int32)] = [],
        newProcessGroup: Bool = false
    ) throws -> ChildProcess {
        var argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (source, target) in inherit { posix_spawn_file_actions_adddup2(&actions, source, target) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Children start with no blocked signals and default SIGTERM/SIGINT handling, whatever
        // this process (a test runner, a supervisor using dispatch sources) has set.
        var flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGPIPE, SIGUSR1] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        if newProcessGroup {
            flags |= Int32(POSIX_SPAWN_SETPGROUP)
            posix_spawnattr_setpgroup(&attributes, 0)
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, &argv, Glibc.environ)
        guard result == 0 else {
            throw POSIXError(POSIXErrorCode(rawValue: result) ?? .EINVAL)
        }
        return ChildProcess(pid: pid)
    }

    /// Sends `signal`; a child that already ended is ignored.
    public func signal(_ signal: Int32) { kill(pid, signal) }

    /// Sends `signal` to the process group this child leads (see `newProcessGroup`).
    public func signalGroup(_ signal: Int32) { kill(-pid, signal) }

    /// Blocks until this child ends.
    public func wait() -> Status {
        var raw: Int32 = 0
        guard case .success = Syscall.retryingOnInterrupt({ waitpid(pid, &raw, 0) }) else { return .exited(-1) }
        return Status(raw: raw)
    }

    /// Returns the status if the child has ended, without blocking.
    public func poll() -> Status? {
        var raw: Int32 = 0
        let result = waitpid(pid, &raw, WNOHANG)
        return result == pid ? Status(raw: raw) : nil
    }

    /// Blocks until any child of this process ends; `nil` when there are none left.
    public static func waitAny() -> (ChildProcess, Status)? {
        var raw: Int32 = 0
        guard case .success(let pid) = Syscall.retryingOnInterrupt({ waitpid(-1, &raw, 0) }), pid > 0 else {
            return nil
        }
        return (ChildProcess(pid: pid), Status(raw: raw))
    }

    /// Reaps one child that has already ended, without blocking.
    public static func waitAnyNow() -> (ChildProcess, Status)? {
        var raw: Int32 = 0
        let pid = waitpid(-1, &raw, WNOHANG)
        return pid > 0 ? (ChildProcess(pid: pid), Status(raw: raw)) : nil
    }

    /// The running executable's path, for re-executing it as a child.
    public static var currentExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// Makes the kernel send `signal` to this process when its parent dies, and reports
    /// whether the expected parent is still there (it may have died before this call).
    public static func followParent(_ expectedParent: pid_t, signal: Int32 = SIGTERM) -> Bool {
        _ = cpool_set_parent_death_signal(signal)
        return getppid() == expectedParent
    }
}
