import Dispatch
import Foundation
import PoolSystem
import WorkerPool

/// Draws ``LivePanel`` in place at the bottom of a terminal: each frame is one `write(2)` that
/// moves the cursor up over the last frame and rewrites it line by line (each line ends with
/// clear-to-end-of-line, so nothing blinks blank), with the cursor hidden while the panel is up.
/// Text meant for the terminal (log lines, results, the USR1 table) goes through
/// ``writeAbove(_:to:)``, which prints it where the panel was and redraws the panel below it.
///
/// The width comes from `TIOCGWINSZ` and is read again on `SIGWINCH`.
///
/// `@unchecked Sendable`: every stored property is touched only with `lock` held; frames
/// come from the producer's thread, text from any thread, resizes from a dispatch queue.
final class TerminalPanel: @unchecked Sendable {
    private let fileDescriptor: Int32
    private let lock = NSLock()
    /// The lines on screen now (empty when nothing is drawn).
    private var shown: [String] = []
    /// The columns those lines were drawn in, to know how many rows they take after a resize.
    private var shownWidth = 80
    private var size: (columns: Int, rows: Int)
    private var latest: RunProgress?
    private var rate = RateWindow()
    private var finished = false
    private var cursorHidden = false
    private var resizes: (any DispatchSourceSignal)?

    /// A panel on `fileDescriptor` (stderr), or nil when it is not a terminal.
    init?(fileDescriptor: Int32 = STDERR_FILENO) {
        guard isatty(fileDescriptor) == 1 else { return nil }
        self.fileDescriptor = fileDescriptor
        size = Self.windowSize(of: fileDescriptor)
        shownWidth = size.columns
        signal(SIGWINCH, SIG_IGN)
        let resizes = DispatchSource.makeSignalSource(signal: SIGWINCH, queue: .global())
        resizes.setEventHandler { [weak self] in self?.resized() }
        resizes.resume()
        self.resizes = resizes
        // However the process ends (exit after a second Ctrl-C, a validation error), the
        // cursor comes back.
        atexit { _ = "\u{1B}[?25h".withCString { write(STDERR_FILENO, $0, 6) } }
    }

    /// The terminal's columns and rows; 80 × 24 when it does not say.
    static func windowSize(of fileDescriptor: Int32) -> (columns: Int, rows: Int) {
        var size = winsize()
        guard ioctl(fileDescriptor, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return (80, 24) }
        return (Int(size.ws_col), size.ws_row > 0 ? Int(size.ws_row) : 24)
    }

    /// Worker rows that fit: the panel never takes more than half the screen (and at most 20).
    private var maxWorkerRows: Int { max(1, min(20, size.rows / 2 - 4)) }

    /// Draws the run as it now stands.
    func update(_ progress: RunProgress) {
        lock.lock()
        defer { lock.unlock() }
        guard !finished else { return }
        latest = progress
        rate.add(elapsed: progress.elapsedSeconds, ended: progress.ended)
        draw(prefix: [])
    }

    /// Writes `bytes` (whole lines) to `target` above the panel, then redraws the panel.
    func writeAbove(_ bytes: UnsafeRawBufferPointer, to target: Int32) {
        lock.lock()
        defer { lock.unlock() }
        guard !shown.isEmpty, !finished else {
            _ = Syscall.writeAll(target, bytes)
            return
        }
        if target == fileDescriptor {
            draw(prefix: Array(bytes))
        } else {
            // Another descriptor on the same terminal (stdout): erase, write there, redraw.
            let erase = Array(eraseSequence().utf8)
            erase.withUnsafeBytes { _ = Syscall.writeAll(fileDescriptor, $0) }
            shown = []
            _ = Syscall.writeAll(target, bytes)
            draw(prefix: [])
        }
    }

    /// Erases the panel and shows the cursor again: what follows prints as without a panel.
    func finish() {
        lock.lock()
        defer { lock.unlock() }
        guard !finished else { return }
        finished = true
        resizes?.cancel()
        var bytes = Array(eraseSequence().utf8)
        if cursorHidden { bytes += Array("\u{1B}[?25h".utf8) }
        bytes.withUnsafeBytes { _ = Syscall.writeAll(fileDescriptor, $0) }
        shown = []
    }

    private func resized() {
        lock.lock()
        defer { lock.unlock() }
        size = Self.windowSize(of: fileDescriptor)
        guard !finished, latest != nil else { return }
        draw(prefix: [])
    }

    /// Moves the cursor to where the panel starts. After a resize a terminal that reflows
    /// has wrapped each line wider than the new width onto several rows.
    private func eraseSequence() -> String {
        shown.isEmpty ? "" : "\r\u{1B}[\(shownRows)A\u{1B}[J"
    }

    /// The rows the panel on screen takes now.
    private var shownRows: Int {
        guard size.columns < shownWidth else { return shown.count }
        return shown.reduce(0) { rows, line in rows + max(1, (line.count + size.columns - 1) / size.columns) }
    }

    /// One frame in one write: back over the old panel, `prefix` (text to keep above), the new
    /// panel line by line, and a clear of whatever the old panel had below the new one.
    private func draw(prefix: [UInt8]) {
        guard let latest else {
            _ = prefix.withUnsafeBytes { Syscall.writeAll(fileDescriptor, $0) }
            return
        }
        let lines = LivePanel.render(
            latest, rate: rate.perSecond(elapsed: latest.elapsedSeconds, ended: latest.ended),
            width: size.columns, maxWorkerRows: maxWorkerRows)
        var frame = ""
        if !cursorHidden {
            frame += "\u{1B}[?25l"
            cursorHidden = true
        }
        if !shown.isEmpty {
            frame += "\r\u{1B}[\(shownRows)A"
            // Text above, a resize, or a shorter panel: nothing of the old one may stay.
            if !prefix.isEmpty || size.columns != shownWidth || lines.count < shown.count { frame += "\u{1B}[J" }
        }
        var bytes = Array(frame.utf8)
        bytes += prefix
        for line in lines { bytes += Array((line + "\u{1B}[K\n").utf8) }
        bytes.withUnsafeBytes { _ = Syscall.writeAll(fileDescriptor, $0) }
        shown = lines
        shownWidth = size.columns
    }
}

/// Tasks per second over the last few seconds (the whole run's rate says little at its end).
struct RateWindow {
    private var samples: [(elapsed: Double, ended: UInt64)] = []
    static let span = 5.0

    mutating func add(elapsed: Double, ended: UInt64) {
        samples.append((elapsed, ended))
        while let first = samples.first, elapsed - first.elapsed > Self.span { samples.removeFirst() }
    }

    func perSecond(elapsed: Double, ended: UInt64) -> Double {
        guard let first = samples.first, elapsed - first.elapsed >= 1, ended >= first.ended else {
            return elapsed > 0 ? Double(ended) / elapsed : 0
        }
        return Double(ended - first.ended) / (elapsed - first.elapsed)
    }
}
