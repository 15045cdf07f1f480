import ArgumentParser
import WorkerPool

/// The worker's options for the `exec` task, which runs programs and is off by default.
struct ExecOptions: ParsableArguments {
    @Flag(
        help: ArgumentHelp(
            "Run the exec task: programs named by the producer, with this worker's privileges.",
            discussion:
                "Over plaintext tcp to a producer that is not on this host, refused unless CURVE is on or --allow-exec-insecure is given."
        ))
    var allowExec = false

    @Option(
        name: .customLong("exec-allow"),
        help:
            "With --allow-exec: only this program (a path, or a name in PATH). Repeatable. /bin/sh allows every shell command."
    )
    var execAllow: [String] = []

    @Flag(
        help: "With --allow-exec: accept a plaintext tcp producer elsewhere (anyone who can pose as it runs code here)."
    )
    var allowExecInsecure = false

    @Option(help: "Seconds between SIGTERM and SIGKILL when a command is stopped (time limit, shutdown).")
    var execGrace: Double = 2

    @Option(help: "Bytes kept of each command's stdout and of its stderr (the rest is counted, flagged truncated).")
    var execMaxOutput: Int = 1 << 20

    /// Refuses settings that cannot work, and exec over plaintext to a producer elsewhere.
    func check(endpoints: PoolEndpoints, curve: Bool) throws {
        guard allowExec else {
            if !execAllow.isEmpty || allowExecInsecure {
                throw ValidationError("--exec-allow and --allow-exec-insecure need --allow-exec")
            }
            return
        }
        guard execGrace >= 0, execGrace <= 3_600 else { throw ValidationError("--exec-grace must be 0-3600 seconds") }
        guard execMaxOutput >= 0, execMaxOutput <= 1 << 30 else {
            throw ValidationError("--exec-max-output must be 0 to 1 GiB")
        }
        if !curve && !allowExecInsecure,
            let remote = [endpoints.tasks, endpoints.results, endpoints.events].first(where: ExecPolicy.isRemote)
        {
            throw ValidationError(
                "--allow-exec over plaintext tcp to \(remote) is refused: whoever can pose as the producer there could run any program on this host. Use CURVE (--curve-key, --curve-server-key), a loopback or ipc:// producer, or --allow-exec-insecure if the network is yours alone."
            )
        }
        _ = try policy()
    }

    /// The exec policy these options give, or nil when exec is off.
    func policy() throws -> ExecPolicy? {
        guard allowExec else { return nil }
        var policy = ExecPolicy()
        policy.outputLimit = execMaxOutput
        policy.graceMilliseconds = UInt32((execGrace * 1000).rounded())
        if !execAllow.isEmpty {
            do {
                try policy.allow(execAllow)
            } catch {
                throw ValidationError(error.message)
            }
        }
        return policy
    }

    /// The same options for a worker process the supervisor starts.
    var childArguments: [String] {
        guard allowExec else { return [] }
        var arguments = ["--allow-exec", "--exec-grace", "\(execGrace)", "--exec-max-output", "\(execMaxOutput)"]
        for program in execAllow { arguments += ["--exec-allow", program] }
        if allowExecInsecure { arguments.append("--allow-exec-insecure") }
        return arguments
    }
}
