import Foundation

/// What a worker's `exec` task may run, and how (`worker --allow-exec`, `--exec-allow`).
public struct ExecPolicy: Sendable {
    /// Programs that may run, as canonical paths (see ``canonicalPath(_:)``); nil: any program.
    public private(set) var allowed: [String]?
    /// Bytes kept of each of stdout and stderr; a task may ask for less (`"max_output"`).
    public var outputLimit = 1 << 20
    /// Between SIGTERM and SIGKILL when a command is stopped (time limit, worker shutdown).
    public var graceMilliseconds: UInt32 = 2_000
    /// How long the pipes are still read after the command's own process ended (a daemon it
    /// left may hold them open); then its process group is killed.
    public var drainMilliseconds: UInt32 = 100

    public init() {}

    /// Limits the task to `programs`: absolute paths, or names found in this process's `PATH`.
    /// Throws a message naming the first that is not an executable file.
    public mutating func allow(_ programs: [String]) throws(TaskError) {
        var allowed: [String] = []
        for program in programs {
            switch ProgramLookup.resolve(program, path: ProgramLookup.defaultSearchPath, directory: nil) {
            case .success(let path): allowed.append(Self.canonicalPath(path))
            case .failure(let error): throw TaskError("--exec-allow \(program): \(error.message)")
            }
        }
        self.allowed = allowed
    }

    /// `path` with its directory resolved (symlinks, `..`) but its last component kept: with a
    /// merged /usr, `/bin/gzip` and `/usr/bin/gzip` are the same program, while a symlink to a
    /// multi-call binary (busybox) stays the program it names.
    public static func canonicalPath(_ path: String) -> String {
        let url = URL(fileURLWithPath: path)
        let name = url.lastPathComponent
        let directory = url.deletingLastPathComponent().path
        guard let resolved = realpath(directory, nil) else { return url.standardizedFileURL.path }
        defer { free(resolved) }
        let base = String(cString: resolved)
        return base.hasSuffix("/") ? base + name : base + "/" + name
    }

    /// Whether `endpoint` is `tcp://` to a host other than this one's loopback: exec over
    /// plaintext there lets whoever can pose as the producer run programs here.
    public static func isRemote(_ endpoint: String) -> Bool {
        guard endpoint.hasPrefix("tcp://") else { return false }
        var host = endpoint.dropFirst("tcp://".count)
        if let colon = host.lastIndex(of: ":") { host = host[..<colon] }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        return !(host.hasPrefix("127.") || host == "localhost" || host == "::1")
    }

    func permits(_ path: String) -> Bool {
        guard let allowed else { return true }
        return allowed.contains(Self.canonicalPath(path))
    }

    /// The time-limit slack the supervisor gives `exec`: the handler's own kill must come first.
    var supervisorSlackMilliseconds: UInt32 { graceMilliseconds + drainMilliseconds + 1_000 }
}

/// Finds the program an `argv[0]` names, the way `execvp` would, and says clearly why not.
enum ProgramLookup {
    static var defaultSearchPath: String {
        ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
    }

    /// `name` with a slash is a path (relative to `directory` when given); without one, it is
    /// looked up in `path`'s directories.
    static func resolve(_ name: String, path: String, directory: String?) -> Result<String, TaskError> {
        guard !name.isEmpty else { return .failure(TaskError("argv[0] is empty")) }
        if name.contains("/") {
            let full = name.hasPrefix("/") || directory == nil ? name : directory! + "/" + name
            return check(full, named: name)
        }
        var notExecutable: String?
        for entry in path.split(separator: ":", omittingEmptySubsequences: false) {
            let candidate = (entry.isEmpty ? "." : String(entry)) + "/" + name
            var info = stat()
            guard stat(candidate, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { continue }
            if access(candidate, X_OK) == 0 { return .success(candidate) }
            notExecutable = notExecutable ?? candidate
        }
        if let notExecutable { return .failure(TaskError("'\(notExecutable)' is not executable (permission denied)")) }
        return .failure(TaskError("program '\(name)' not found in PATH (\(path))"))
    }

    private static func check(_ full: String, named name: String) -> Result<String, TaskError> {
        var info = stat()
        guard stat(full, &info) == 0 else {
            return .failure(TaskError("program '\(name)' does not exist (\(String(cString: strerror(errno))))"))
        }
        guard info.st_mode & S_IFMT != S_IFDIR else { return .failure(TaskError("'\(name)' is a directory")) }
        guard access(full, X_OK) == 0 else {
            return .failure(TaskError("'\(name)' is not executable (permission denied)"))
        }
        return .success(full)
    }
}
