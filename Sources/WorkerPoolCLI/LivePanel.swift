import Foundation
import WorkerPool

/// The live view's text (`producer --progress full`): totals, rate and ETA, then one row per
/// worker process, fitted to a width. A pure function of what it is given, so it is tested
/// without a terminal; ``TerminalPanel`` draws it.
///
/// ```
/// done 1840/4000  failed 0  in flight 12  workers 3
/// rate 612/s  ETA 3.5 s  elapsed 3.0 s
/// worker   host      pid     thr  run  done  failed  restarts  seen  state
/// Worker-1 vm        4242      1    1   615       0         0  0.2s  running
/// ```
enum LivePanel {
    /// The panel's lines for `progress` (with its ``RunProgress/workerRows``), none wider than
    /// `width` columns and at most `maxWorkerRows` worker rows; the rest are counted on one line.
    static func render(_ progress: RunProgress, rate: Double, width: Int, maxWorkerRows: Int) -> [String] {
        let width = max(width, 8)
        var lines = [totals(progress), pace(progress, rate: rate)]
        let rows = ordered(progress.workerRows)
        if !rows.isEmpty {
            let shown = Array(rows.prefix(max(1, maxWorkerRows)))
            let table = Table(rows: shown, now: progress.time, width: width)
            lines.append(table.header)
            lines += shown.map(table.line(for:))
            let hidden = rows.dropFirst(shown.count)
            if !hidden.isEmpty { lines.append(more(hidden)) }
        }
        return lines.map { fit($0, width) }
    }

    static func totals(_ progress: RunProgress) -> String {
        "done \(progress.ended)/\(progress.submitted)\(progress.inputFinished ? "" : "+")  failed \(progress.failed)  "
            + "in flight \(progress.inFlight)  workers \(progress.workers)"
    }

    static func pace(_ progress: RunProgress, rate: Double) -> String {
        var line = "rate \(Int(rate.rounded()))/s"
        if progress.workers == 0 && progress.inFlight > 0 {
            line += "  waiting for workers"
        } else if progress.inputFinished && progress.submitted > progress.ended {
            line += rate > 0 ? "  ETA \(duration(Double(progress.submitted - progress.ended) / rate))" : "  ETA -"
        }
        return line + "  elapsed \(duration(progress.elapsedSeconds))"
    }

    /// Running processes first (by host and name), then those gone, most recently seen first.
    static func ordered(_ rows: [WorkerSummary]) -> [WorkerSummary] {
        rows.sorted { left, right in
            let (leftLive, rightLive) = (left.state == "running", right.state == "running")
            if leftLive != rightLive { return leftLive }
            if leftLive { return (left.host, left.name, left.pid) < (right.host, right.name, right.pid) }
            return left.lastSeen > right.lastSeen
        }
    }

    static func more(_ hidden: ArraySlice<WorkerSummary>) -> String {
        let states = Dictionary(grouping: hidden, by: \.state).mapValues(\.count)
        let parts = ["running", "left", "lost"].compactMap { state in states[state].map { "\($0) \(state)" } }
        return "+\(hidden.count) more (\(parts.joined(separator: ", ")))"
    }

    /// `12.3 s`, `4 m 05 s`, `2 h 10 m`.
    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "-" }
        if seconds < 60 { return String(format: "%.1f s", seconds) }
        let whole = Int(seconds)
        if whole < 3_600 { return String(format: "%d m %02d s", whole / 60, whole % 60) }
        return String(format: "%d h %02d m", whole / 3_600, whole / 60 % 60)
    }

    /// How long ago: `0.4s`, `12s`, `5m`, `3h`.
    static func age(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "-" }
        if seconds < 10 { return String(format: "%.1fs", seconds) }
        if seconds < 100 { return "\(Int(seconds))s" }
        if seconds < 6_000 { return "\(Int(seconds / 60))m" }
        return "\(Int(seconds / 3_600))h"
    }

    /// `text` cut to `width` columns, its last one an ellipsis when cut.
    static func fit(_ text: String, _ width: Int) -> String {
        text.count <= width ? text : String(text.prefix(width - 1)) + "…"
    }

    /// The worker table's columns, chosen for the width: the process id and state go first
    /// when it is narrow, then the host and name columns shrink.
    struct Table {
        struct Column {
            var title: String
            var width: Int
            var rightAligned: Bool
            var value: (WorkerSummary) -> String
        }

        var columns: [Column]

        init(rows: [WorkerSummary], now: PoolTime, width: Int) {
            func widest(_ values: [String], title: String, minimum: Int, maximum: Int) -> Int {
                min(maximum, max(minimum, title.count, values.map(\.count).max() ?? 0))
            }
            let name = Column(
                title: "worker", width: widest(rows.map(\.name), title: "worker", minimum: 6, maximum: 12),
                rightAligned: false, value: \.name)
            let host = Column(
                title: "host", width: widest(rows.map(\.host), title: "host", minimum: 4, maximum: 16),
                rightAligned: false, value: \.host)
            func number(_ title: String, _ value: @escaping (WorkerSummary) -> String) -> Column {
                Column(
                    title: title, width: widest(rows.map(value), title: title, minimum: 0, maximum: 12),
                    rightAligned: true, value: value)
            }
            let pid = number("pid") { "\($0.pid)" }
            let state = Column(title: "state", width: 7, rightAligned: false, value: \.state)
            var columns = [
                name, host, pid, number("thr") { "\($0.threads)" }, number("run") { "\($0.running)" },
                number("done") { "\($0.tasksDone)" }, number("failed") { "\($0.tasksFailed)" },
                number("restarts") { "\($0.restarts)" },
                Column(
                    title: "seen", width: 5, rightAligned: true,
                    value: { $0.state == "running" ? LivePanel.age(now.since($0.lastSeen).seconds) : "-" }),
                state,
            ]
            func total() -> Int { columns.reduce(columns.count - 1) { $0 + $1.width } }
            for dropped in ["pid", "state"] where total() > width {
                columns.removeAll { $0.title == dropped }
            }
            // Then the text columns give up what they must, down to their minimum.
            for (title, minimum) in [("host", 4), ("worker", 6)] where total() > width {
                guard let index = columns.firstIndex(where: { $0.title == title }) else { continue }
                columns[index].width = max(minimum, columns[index].width - (total() - width))
            }
            self.columns = columns
        }

        var header: String { joined(columns.map { ($0, $0.title) }) }

        func line(for row: WorkerSummary) -> String { joined(columns.map { ($0, $0.value(row)) }) }

        private func joined(_ cells: [(Column, String)]) -> String {
            cells.map { column, text in
                let cut = LivePanel.fit(text, column.width)
                let pad = String(repeating: " ", count: max(0, column.width - cut.count))
                return column.rightAligned ? pad + cut : cut + pad
            }.joined(separator: " ").trimmingTrailingSpaces()
        }
    }
}

extension String {
    fileprivate func trimmingTrailingSpaces() -> String {
        var text = self
        while text.last == " " { text.removeLast() }
        return text
    }
}
