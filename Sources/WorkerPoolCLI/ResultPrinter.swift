import Foundation
import PoolSystem
import WorkerPool

/// Writes each task's end to stdout as it arrives, and progress to stderr on a terminal.
///
/// `@unchecked Sendable`: results arrive on the producer's outcome thread and progress on its
/// I/O thread; every method takes `lock` before touching the buffer or the progress state.
final class ResultPrinter: @unchecked Sendable {
    enum Format: String, CaseIterable {
        case human, jsonl, none
    }

    private let format: Format
    private let showProgress: Bool
    private let stdoutIsTerminal = isatty(STDOUT_FILENO) == 1
    private var buffer: [UInt8] = []
    private var records = OutcomeRecordWriter()
    private var progressShown = false
    private let lock = NSLock()
    /// The live view (`--progress full` on a terminal), in place of the progress line.
    private let panel: TerminalPanel?

    /// Write each result at once instead of in blocks (with a journal: what is durable is shown).
    private let unbuffered: Bool
    /// `producer exec`'s way of showing a job; nil for tasks.
    private var exec: ExecOutcomePrinter?
    /// `--output none` for tasks: nothing to print, so no lock to take per result.
    private let printsNothing: Bool

    init(
        format: Format, showProgress: Bool, unbuffered: Bool = false, exec: ExecOutcomePrinter? = nil,
        panel: TerminalPanel? = nil
    ) {
        self.format = format
        self.showProgress = showProgress
        self.panel = panel
        self.unbuffered = unbuffered
        self.exec = exec
        printsNothing = format == .none && exec == nil
        buffer.reserveCapacity(1 << 16)
    }

    func print(_ outcome: TaskOutcome) {
        guard !printsNothing else { return }
        lock.lock()
        defer { lock.unlock() }
        if exec != nil {
            printJob(outcome)
            return
        }
        switch format {
        case .none: return  // `producer exec`'s, handled above
        case .human:
            if outcome.status == .ok {
                buffer.append(contentsOf: "Result: ".utf8)
                var text = outcome.resultText
                text.withUTF8 { buffer.append(contentsOf: $0) }
            } else {
                let task = outcome.name.isEmpty ? "" : " (\(outcome.name))"
                buffer.append(
                    contentsOf: "Failed: task \(outcome.id)\(task) \(outcome.status): \(outcome.message)".utf8)
            }
            if outcome.attempts > 1 { buffer.append(contentsOf: " (after \(outcome.attempts) attempts)".utf8) }
        case .jsonl:
            records.appendJSONLine(outcome, to: &buffer)
        }
        buffer.append(0x0A)
        // Under the live view, results for the terminal wait for the next frame (a quarter of a
        // second): one redraw per batch, not per line.
        if buffer.count >= 1 << 16 || (stdoutIsTerminal && panel == nil) || unbuffered { flushLocked() }
    }

    func flush() {
        lock.lock()
        defer { lock.unlock() }
        if exec != nil, format != .none {
            var errors: [UInt8] = []
            exec?.drainAll(format: format, stdout: &buffer, stderr: &errors)
            writeErrors(errors)
        }
        flushLocked()
    }

    /// An exec job: its stdout to ours, its stderr to ours (at once, so a failure is seen as
    /// it happens), or one JSON line.
    private func printJob(_ outcome: TaskOutcome) {
        guard format != .none else { return }
        var errors: [UInt8] = []
        exec?.add(outcome, format: format, stdout: &buffer, stderr: &errors)
        // A job's output as it ends (human): its stdout first, then what it said on stderr.
        if buffer.count >= 1 << 16 || stdoutIsTerminal || unbuffered || format == .human { flushLocked() }
        writeErrors(errors)
    }

    private func writeErrors(_ errors: [UInt8]) {
        guard !errors.isEmpty else { return }
        if let panel { return errors.withUnsafeBytes { panel.writeAbove($0, to: STDERR_FILENO) } }
        if progressShown { clearProgressLocked() }
        errors.withUnsafeBytes { _ = Syscall.writeAll(STDERR_FILENO, $0) }
    }

    private func flushLocked() {
        guard !buffer.isEmpty else { return }
        if let panel, stdoutIsTerminal {
            buffer.withUnsafeBytes { panel.writeAbove($0, to: STDOUT_FILENO) }
            buffer.removeAll(keepingCapacity: true)
            return
        }
        if progressShown && stdoutIsTerminal { clearProgressLocked() }
        // A failed write (stdout closed, say) drops the block; the run goes on.
        buffer.withUnsafeBytes { _ = Syscall.writeAll(STDOUT_FILENO, $0) }
        buffer.removeAll(keepingCapacity: true)
    }

    func progress(_ progress: RunProgress) {
        lock.lock()
        defer { lock.unlock() }
        flushLocked()
        if let panel { return panel.update(progress) }
        guard showProgress else { return }
        let rate = progress.elapsedSeconds > 0 ? Double(progress.ended) / progress.elapsedSeconds : 0
        var line =
            "\(progress.ended)/\(progress.submitted)\(progress.inputFinished ? "" : "+") done, "
            + "\(progress.failed) failed, \(progress.inFlight) in flight, \(progress.workers) workers, "
            + "\(Int(rate)) tasks/s"
        if progress.inputFinished && rate > 0 {
            let remaining = Double(progress.submitted - progress.ended) / rate
            line += String(format: ", ETA %.0f s", remaining)
        } else if progress.workers == 0 && progress.inFlight > 0 {
            line += ", waiting for workers"
        }
        writeStderr("\r\u{1B}[K" + line)
        progressShown = true
    }

    func clearProgress() {
        lock.lock()
        defer { lock.unlock() }
        panel?.finish()
        clearProgressLocked()
    }

    /// Writes `text` to stderr where the progress shows, keeping the progress below it.
    func writeAboveProgress(_ text: String) {
        lock.lock()
        defer { lock.unlock() }
        var bytes = Array(text.utf8)
        if let panel { return bytes.withUnsafeBytes { panel.writeAbove($0, to: STDERR_FILENO) } }
        clearProgressLocked()
        bytes.withUnsafeMutableBytes { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }

    private func clearProgressLocked() {
        guard progressShown else { return }
        writeStderr("\r\u{1B}[K")
        progressShown = false
    }

    private func writeStderr(_ text: String) {
        var bytes = Array(text.utf8)
        bytes.withUnsafeMutableBytes { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }
}
