import ArgumentParser
import WorkerPool

/// `producer [options] exec [--shell] [--keep-order] -- COMMAND ARG...`: GNU parallel's habit on
/// the pool, one `exec` task per input line.
public struct ExecCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "exec",
        abstract: "Run a program once per input line on the pool's workers, as GNU parallel and xargs do.",
        discussion: """
            Lines come from --input or stdin (empty lines are skipped). Replacement strings, as in GNU \
            parallel: {} the line, {.} without extension, {/} basename, {//} dirname, {/.} basename \
            without extension, {#} the job number; with none, the line is appended. Arguments are \
            passed as argv (no shell) unless --shell. Workers must run with --allow-exec; \
            --local-workers N starts its own. Each job's stdout is printed as it ends, its stderr \
            goes to stderr; exit status 1 if any job failed. Producer options go before 'exec': \
            ls *.log | producer --local-workers 4 exec -- gzip -9 {}
            """)

    @ParentCommand var producer: ProducerCommand

    @Flag(help: "Run the command through /bin/sh -c (replacements are quoted into it).")
    var shell = false

    @Flag(help: "Print outputs in input order (as parallel -k), not as jobs end.")
    var keepOrder = false

    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments, after --.")
    var command: [String] = []

    public init() {}

    public mutating func validate() throws {
        // The command is captured whole, dashes and all; what comes before it is ours.
        if let first = command.first, first.hasPrefix("-"), first != "--" {
            if ["-h", "--help", "-help"].contains(first) { throw CleanExit.helpRequest(self) }
            throw ValidationError("unknown option '\(first)' for exec; the command goes after '--'")
        }
        if command.first == "--" { command.removeFirst() }
        guard !command.isEmpty else {
            throw ValidationError("give the command to run after 'exec --', e.g. producer exec -- gzip -9 {}")
        }
        if producer.demo || producer.generate != nil {
            throw ValidationError("exec reads its lines from --input or stdin; --demo and --generate do not apply")
        }
    }

    public func run() throws {
        let template: ExecTemplate
        do {
            template = try ExecTemplate(command: command, shell: shell)
        } catch {
            throw ValidationError(error.message)
        }
        try producer.runPool(exec: ExecJobs(template: template, keepOrder: keepOrder))
    }
}

/// What `producer exec` changes in a run: its input, its output, and workers that run programs.
struct ExecJobs: Sendable {
    var template: ExecTemplate
    var keepOrder: Bool
}
