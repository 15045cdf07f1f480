import CPoolSystem
import Foundation

/// The `exec` task: runs a program on the worker.
///
/// `{"argv": ["gzip", "-9", "a.log"], "stdin": "...", "env": {"K": "V"}, "cwd": "/data"}`, or
/// `{"shell": "gzip -9 a.log | wc -c"}` (run by `/bin/sh -c`); `"max_output": BYTES` keeps less
/// of stdout and stderr than the worker's limit. The result (on success, and as the message of a
/// failure) is a JSON object: `error` (failures only), `argv` or `shell`, `pid`, `exit_code`,
/// `signal`, `stdout`/`stderr` with `_encoding` (`utf-8`, or `base64` when not UTF-8), `_bytes`
/// (all that was written) and `_truncated`, and `run_s`. A non-zero exit or a signal fails the
/// task; a time limit kills the command's process group and fails it `time-limit`.
extension TaskRegistry {
    /// Registers `exec` under `policy` (off unless a worker is started with `--allow-exec`).
    public mutating func enableExec(_ policy: ExecPolicy) {
        // A command that closes its stdin early must not take the worker down with SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        let decoder = JSONDecoder()
        registerRaw("exec", timeLimitSlackMilliseconds: policy.supervisorSlackMilliseconds) { payload, context in
            let arguments: ExecArguments
            do {
                arguments = try FastJSON.decode(ExecArguments.self, from: Array(payload), fallback: decoder)
            } catch {
                return Outcome(
                    status: .badArguments, payload: Array("bad arguments for 'exec': \(Self.explain(error))".utf8))
            }
            return ExecTask(policy: policy, arguments: arguments, context: context).run()
        }
    }

    /// The message of an `exec` task sent to a worker that does not run programs.
    static let execDisabledMessage =
        "unknown task 'exec': this worker does not run programs; start it with --allow-exec (and --exec-allow PATH to limit which)"
}

/// `exec`'s arguments as sent.
struct ExecArguments: Codable, Sendable {
    var argv: [String]?
    var shell: String?
    var stdin: String?
    var env: [String: String]?
    var cwd: String?
    var maxOutput: Int?

    enum CodingKeys: String, CodingKey {
        case argv, shell, stdin, env, cwd
        case maxOutput = "max_output"
    }
}

/// One `exec` task: checks its arguments, runs the command, and words the outcome.
struct ExecTask {
    let policy: ExecPolicy
    let arguments: ExecArguments
    let context: TaskContext

    func run() -> TaskRegistry.Outcome {
        let request: CommandRun.Request
        switch prepare() {
        case .success(let prepared): request = prepared
        case .failure(.badArguments(let message)): return outcome(.badArguments, error: message)
        case .failure(.refused(let message)): return outcome(.failed, error: message)
        }
        let report: CommandRun.Report
        do {
            report = try CommandRun.run(request)
        } catch {
            return outcome(.failed, error: "cannot run '\(request.path)': \(error)")
        }
        if report.interruption == .workerStopping {
            var abandoned = outcome(.cancelled, error: "the worker stopped while the command ran")
            abandoned.abandoned = true
            return abandoned
        }
        let (status, error) = Self.judge(report, limitMilliseconds: context.timeLimitMilliseconds, policy: policy)
        return outcome(status, error: error, report: report)
    }

    /// Why a command's end is, or is not, a success.
    static func judge(
        _ report: CommandRun.Report, limitMilliseconds: UInt32, policy: ExecPolicy
    ) -> (ResultStatus, String?) {
        if report.interruption == .deadline {
            var error =
                "ran past its time limit of \(Double(limitMilliseconds) / 1000) s: its process group was sent SIGTERM"
            if report.killed { error += ", and SIGKILL \(Double(policy.graceMilliseconds) / 1000) s later" }
            return (.timeLimit, error)
        }
        switch report.ending {
        case .exited(0): return (.ok, nil)
        case .exited(let code): return (.failed, "exit code \(code)")
        case .signalled(let signal): return (.failed, "killed by signal \(signal) (\(Self.signalName(signal)))")
        }
    }

    static func signalName(_ signal: Int32) -> String {
        let names: [Int32: String] = [
            SIGHUP: "SIGHUP", SIGINT: "SIGINT", SIGQUIT: "SIGQUIT", SIGILL: "SIGILL", SIGABRT: "SIGABRT",
            SIGBUS: "SIGBUS", SIGFPE: "SIGFPE", SIGKILL: "SIGKILL", SIGSEGV: "SIGSEGV", SIGPIPE: "SIGPIPE",
            SIGALRM: "SIGALRM", SIGTERM: "SIGTERM", SIGUSR1: "SIGUSR1", SIGUSR2: "SIGUSR2", SIGXCPU: "SIGXCPU",
        ]
        return names[signal] ?? String(cString: strsignal(signal))
    }

    enum Problem: Error {
        /// The task's own arguments are wrong whatever the worker.
        case badArguments(String)
        /// This worker cannot or may not run it.
        case refused(String)
    }

    /// The command to spawn, or why there is none.
    func prepare() -> Result<CommandRun.Request, Problem> {
        let argv: [String]
        switch (arguments.argv, arguments.shell) {
        case (let list?, nil):
            guard !list.isEmpty else {
                return .failure(.badArguments("argv is empty: give the program and its arguments"))
            }
            argv = list
        case (nil, let script?):
            argv = ["sh", "-c", script]
        default:
            return .failure(.badArguments("give \"argv\" (a list of strings) or \"shell\" (a string), not both"))
        }
        for (index, argument) in argv.enumerated() where argument.utf8.contains(0) {
            return .failure(.badArguments("argv[\(index)] contains a NUL byte"))
        }
        var environment: [String]?
        var searchPath = ProgramLookup.defaultSearchPath
        if let env = arguments.env {
            for key in env.keys where key.isEmpty || key.contains("=") || key.utf8.contains(0) {
                return .failure(.badArguments("env key '\(key)' must be non-empty, without '=' or NUL"))
            }
            for (key, value) in env where value.utf8.contains(0) {
                return .failure(.badArguments("env value of '\(key)' contains a NUL byte"))
            }
            var merged = ProcessInfo.processInfo.environment
            merged.merge(env) { _, new in new }
            searchPath = merged["PATH"] ?? searchPath
            environment = merged.map { "\($0.key)=\($0.value)" }
        }
        if let cwd = arguments.cwd {
            var info = stat()
            guard stat(cwd, &info) == 0 else {
                return .failure(.refused("cwd '\(cwd)' does not exist (\(String(cString: strerror(errno))))"))
            }
            guard info.st_mode & S_IFMT == S_IFDIR else { return .failure(.refused("cwd '\(cwd)' is not a directory")) }
        }
        let program = arguments.shell != nil ? "/bin/sh" : argv[0]
        let path: String
        switch ProgramLookup.resolve(program, path: searchPath, directory: arguments.cwd) {
        case .success(let found): path = found
        case .failure(let error): return .failure(.refused(error.message))
        }
        guard policy.permits(path) else {
            let list = policy.allowed?.joined(separator: ", ") ?? ""
            return .failure(.refused("'\(path)' is not on this worker's --exec-allow list (\(list))"))
        }
        if let limit = arguments.maxOutput, limit < 0 {
            return .failure(.badArguments("max_output must be 0 or more bytes"))
        }
        let now = cpool_monotonic_nanoseconds()
        let limit = context.timeLimitMilliseconds
        let board = context.board
        let thread = context.thread
        return .success(
            CommandRun.Request(
                path: path, arguments: argv, environment: environment, directory: arguments.cwd,
                input: arguments.stdin.map { Array($0.utf8) },
                outputLimit: min(arguments.maxOutput ?? policy.outputLimit, policy.outputLimit),
                deadline: limit > 0 ? now + UInt64(limit) * 1_000_000 : nil,
                graceNanoseconds: UInt64(policy.graceMilliseconds) * 1_000_000,
                drainNanoseconds: UInt64(policy.drainMilliseconds) * 1_000_000,
                stopFileDescriptor: context.stopFileDescriptor,
                recordGroup: { group in board?.setCommandGroup(thread: thread, group) }))
    }

    private func outcome(_ status: ResultStatus, error: String?, report: CommandRun.Report? = nil)
        -> TaskRegistry.Outcome
    {
        var json = ExecResultJSON()
        json.open()
        if let error { json.field("error", string: error) }
        if let shell = arguments.shell {
            json.field("shell", string: shell)
        } else if let argv = arguments.argv {
            json.field("argv", strings: argv)
        }
        if let report {
            json.field("pid", integer: Int(report.pid))
            switch report.ending {
            case .exited(let code):
                json.field("exit_code", integer: Int(code))
                json.fieldNull("signal")
            case .signalled(let signal):
                json.fieldNull("exit_code")
                json.field("signal", integer: Int(signal))
            }
            json.field("stdout", captured: report.stdout)
            json.field("stderr", captured: report.stderr)
            json.field("run_s", seconds: report.runNanoseconds)
        }
        json.close()
        return TaskRegistry.Outcome(status: status, payload: json.bytes)
    }
}
