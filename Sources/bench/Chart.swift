import Foundation

/// The SVG chart, drawn by hand: (1) null-task throughput against workers, one line per mode;
/// (2) the crossover: for CPU tasks of 1 µs to 10 ms, throughput as a fraction of the
/// machine's ideal, one line per mode; (3) the other workloads, each mode's best throughput
/// relative to the fastest mode's.
enum Chart {
    struct Series {
        var name: String
        var color: String
        /// Joined by a line.
        var points: [(x: Double, y: Double)]
        /// Drawn as hollow dots (other configurations with the same x).
        var others: [(x: Double, y: Double)] = []
        var lineless = false
    }

    static let palette = [
        "threads": "#1f77b4", "ipc": "#ff7f0e", "tcp": "#2ca02c", "netns": "#d62728",
    ]
    static let extraColors = ["#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"]
    /// The Python peers: squares, no line.
    static let peerColors = ["#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#636363"]

    static func svg(records: [Record], cores: Int, title: String) -> String {
        let measured = records.filter { $0.skipped != true && $0.tasksPerSecond > 0 }
        let labels = orderedModes(measured.filter { $0.mode != "peer" })
        var colors: [String: String] = [:]
        var spare = extraColors.makeIterator()
        for label in labels { colors[label] = palette[label] ?? spare.next() ?? "#333333" }

        let width = 1040.0
        var body = ""
        var y = 75.0
        // (1) Throughput against workers, null workload.
        let null = measured.filter { $0.workload == "null" }
        var throughput: [Series] = labels.map { label in
            let rows = null.filter { $0.modeLabel == label }
            let best = Dictionary(grouping: rows, by: \.workers).mapValues { $0.map(\.tasksPerSecond).max() ?? 0 }
            return Series(
                name: label, color: colors[label]!,
                points: best.keys.sorted().map { (Double($0), best[$0]!) },
                others: rows.filter { best[$0.workers] != $0.tasksPerSecond }.map {
                    (Double($0.workers), $0.tasksPerSecond)
                })
        }
        for (index, peer) in orderedModes(null.filter { $0.mode == "peer" }).enumerated() {
            let rows = null.filter { $0.modeLabel == peer }
            throughput.append(
                Series(
                    name: peer, color: peerColors[index % peerColors.count],
                    points: rows.map { (Double($0.workers), $0.tasksPerSecond) }, lineless: true))
        }
        if throughput.contains(where: { !$0.points.isEmpty }) {
            body += panel(
                x: 90, y: y, width: 620, height: 300,
                title: "null task (multiply): tasks/s against workers (processes × threads)",
                xLabel: "workers (processes × threads); line: best split, hollow: other splits",
                yLabel: "tasks/s (log)", xLog: true, yLog: true, series: throughput, xTickFormat: { Report.number($0) },
                yTickFormat: compact)
            y += 390
        }

        // (2) Crossover: CPU tasks, best throughput as a fraction of the ideal.
        let cpu = measured.filter { $0.idealTasksPerSecond != nil && $0.workload.hasPrefix("cpu-") }
        var crossover: [Series] = labels.map { label in
            let rows = cpu.filter { $0.modeLabel == label }
            var best: [Double: Double] = [:]
            for row in rows {
                guard let micros = micros(of: row.workload) else { continue }
                let ideal = Double(cores) * 1e6 / micros
                best[micros] = max(best[micros] ?? 0, row.tasksPerSecond / ideal)
            }
            return Series(name: label, color: colors[label]!, points: best.keys.sorted().map { ($0, best[$0]!) })
        }
        for (index, peer) in orderedModes(measured.filter { $0.mode == "peer" && $0.workload.hasPrefix("cpu") })
            .enumerated()
        {
            let rows = measured.filter { $0.modeLabel == peer }
            crossover.append(
                Series(
                    name: peer, color: peerColors[index % peerColors.count],
                    points: rows.compactMap { row in
                        micros(of: row.workload).map { ($0, row.tasksPerSecond / (Double(cores) * 1e6 / $0)) }
                    }, lineless: true))
        }
        if crossover.contains(where: { !$0.points.isEmpty }) {
            body += panel(
                x: 90, y: y, width: 620, height: 300,
                title: "crossover: CPU tasks, best tasks/s as a fraction of ideal (\(cores) cores × 1e6 / µs per task)",
                xLabel: "CPU work per task (µs, log)", yLabel: "fraction of ideal", xLog: true, yLog: false,
                series: crossover,
                xTickFormat: { $0 >= 1000 ? "\(Report.number($0 / 1000)) ms" : "\(Report.number($0)) µs" },
                yTickFormat: { Report.number($0) }, referenceY: 1)
            if crossover.contains(where: \.lineless) {
                body +=
                    "<text x=\"90\" y=\"\(f(y + 352))\" font-size=\"11\" fill=\"#555\">squares: the Python peers "
                    + "(Benchmarks/peers/run_peers.py), their loop calibrated to the same µs in their own process</text>\n"
            }
            y += 390
        }

        // (3) The other workloads: each mode's best tasks/s relative to the fastest mode.
        let others = ["io-5ms", "large-64k", "large-1m", "crashy", "locked", "exec-true"].filter { name in
            measured.contains { $0.workload == name && $0.mode != "peer" }
        }
        if !others.isEmpty {
            body += bars(
                x: 90, y: y, width: 620, height: 260, workloads: others, labels: labels, colors: colors,
                records: measured.filter { $0.mode != "peer" }, allRecords: records)
            y += 350
        }
        let height = y + 10
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" \
            viewBox="0 0 \(Int(width)) \(Int(height))" font-family="Helvetica, Arial, sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(Int(width / 2))" y="24" text-anchor="middle" font-size="15" font-weight="bold">\(escape(title))</text>

            """
        svg += body
        svg += "</svg>\n"
        return svg
    }

    /// Mode labels in a stable order: threads, ipc, tcp, netns, netns+delays, then the rest.
    static func orderedModes(_ records: [Record]) -> [String] {
        var seen: [String] = []
        for record in records where !seen.contains(record.modeLabel) { seen.append(record.modeLabel) }
        let order = ["threads", "ipc", "tcp", "netns"]
        return seen.sorted { a, b in
            let ia = order.firstIndex(of: a) ?? order.count
            let ib = order.firstIndex(of: b) ?? order.count
            return ia != ib ? ia < ib : a.localizedStandardCompare(b) == .orderedAscending
        }
    }

    static func micros(of workload: String) -> Double? {
        guard workload.hasPrefix("cpu-") else { return nil }
        let size = workload.dropFirst(4)
        if size.hasSuffix("ms"), let value = Double(size.dropLast(2)) { return value * 1000 }
        if size.hasSuffix("us"), let value = Double(size.dropLast(2)) { return value }
        return nil
    }

    /// 1.5k, 20k, 1.2M.
    static func compact(_ value: Double) -> String {
        if value >= 1e6 { return Report.number((value / 1e6 * 100).rounded() / 100) + "M" }
        if value >= 1e3 { return Report.number((value / 1e3 * 100).rounded() / 100) + "k" }
        return Report.number(value)
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    private static func f(_ value: Double) -> String { String(format: "%.1f", value) }

    /// Ticks for a log axis: 1-2-5 per decade when few decades, else powers of ten.
    static func logTicks(_ low: Double, _ high: Double, base2: Bool = false) -> [Double] {
        if base2 {
            var ticks: [Double] = []
            var value = pow(2, floor(log2(low)))
            while value <= high * 1.0001 {
                ticks.append(value)
                value *= 2
            }
            return ticks
        }
        let decades = log10(high) - log10(low)
        let steps: [Double] = decades <= 2.5 ? [1, 2, 5] : [1]
        var ticks: [Double] = []
        var decade = pow(10, floor(log10(low)))
        while decade <= high * 1.0001 {
            for step in steps where decade * step >= low * 0.9999 && decade * step <= high * 1.0001 {
                ticks.append(decade * step)
            }
            decade *= 10
        }
        return ticks
    }

    static func linearTicks(_ low: Double, _ high: Double) -> [Double] {
        let span = max(high - low, 1e-9)
        let rough = span / 5
        let magnitude = pow(10, floor(log10(rough)))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= rough } ?? rough
        var ticks: [Double] = []
        var value = (low / step).rounded(.down) * step
        while value <= high + step * 1e-6 {
            if value >= low - step * 1e-6 { ticks.append(value) }
            value += step
        }
        return ticks
    }

    static func panel(
        x: Double, y: Double, width: Double, height: Double, title: String, xLabel: String, yLabel: String,
        xLog: Bool, yLog: Bool, series: [Series], xTickFormat: (Double) -> String, yTickFormat: (Double) -> String,
        referenceY: Double? = nil
    ) -> String {
        let all = series.flatMap { $0.points + $0.others }
        guard !all.isEmpty else { return "" }
        var xs = all.map(\.x)
        var ys = all.map(\.y)
        if let referenceY { ys.append(referenceY) }
        var xLow = xs.min()!
        var xHigh = xs.max()!
        if xLow == xHigh {
            xLow = xLog ? xLow / 2 : xLow - 1
            xHigh = xLog ? xHigh * 2 : xHigh + 1
        }
        let xTicks: [Double]
        if xLog {
            let isPowerOfTwoAxis = xs.allSatisfy { $0 == pow(2, log2($0).rounded()) } && xHigh <= 1024
            xTicks = isPowerOfTwoAxis ? logTicks(xLow, xHigh, base2: true) : logTicks(xLow, xHigh)
        } else {
            xTicks = linearTicks(xLow, xHigh)
        }
        var yLow: Double
        var yHigh: Double
        let yTicks: [Double]
        if yLog {
            ys = ys.filter { $0 > 0 }
            yLow = pow(10, floor(log10(ys.min() ?? 1)))
            yHigh = pow(10, ceil(log10(ys.max() ?? 10)))
            if yLow == yHigh { yHigh *= 10 }
            yTicks = logTicks(yLow, yHigh)
        } else {
            yLow = 0
            yHigh = max(ys.max() ?? 1, 0.1) * 1.1
            yTicks = linearTicks(yLow, yHigh)
            yHigh = max(yHigh, yTicks.last ?? yHigh)
        }
        xs = []
        func px(_ value: Double) -> Double {
            let t = xLog ? (log(value) - log(xLow)) / (log(xHigh) - log(xLow)) : (value - xLow) / (xHigh - xLow)
            return x + 20 + t * (width - 40)
        }
        func py(_ value: Double) -> Double {
            let t =
                yLog ? (log(max(value, yLow)) - log(yLow)) / (log(yHigh) - log(yLow)) : (value - yLow) / (yHigh - yLow)
            return y + height - t * height
        }
        var out = "<g>\n"
        out += "<text x=\"\(f(x))\" y=\"\(f(y - 12))\" font-size=\"13\" font-weight=\"bold\">\(escape(title))</text>\n"
        out +=
            "<rect x=\"\(f(x))\" y=\"\(f(y))\" width=\"\(f(width))\" height=\"\(f(height))\" fill=\"none\" stroke=\"#333\"/>\n"
        for tick in yTicks {
            let ty = py(tick)
            out +=
                "<line x1=\"\(f(x))\" y1=\"\(f(ty))\" x2=\"\(f(x + width))\" y2=\"\(f(ty))\" stroke=\"#e5e5e5\"/>\n"
            out +=
                "<text x=\"\(f(x - 6))\" y=\"\(f(ty + 4))\" text-anchor=\"end\" font-size=\"11\">\(escape(yTickFormat(tick)))</text>\n"
        }
        for tick in xTicks {
            let tx = px(tick)
            out += "<line x1=\"\(f(tx))\" y1=\"\(f(y))\" x2=\"\(f(tx))\" y2=\"\(f(y + height))\" stroke=\"#f0f0f0\"/>\n"
            out +=
                "<text x=\"\(f(tx))\" y=\"\(f(y + height + 16))\" text-anchor=\"middle\" font-size=\"11\">\(escape(xTickFormat(tick)))</text>\n"
        }
        if let referenceY {
            let ry = py(referenceY)
            out +=
                "<line x1=\"\(f(x))\" y1=\"\(f(ry))\" x2=\"\(f(x + width))\" y2=\"\(f(ry))\" stroke=\"#444\" stroke-dasharray=\"6 4\"/>\n"
            out +=
                "<text x=\"\(f(x + width - 4))\" y=\"\(f(ry - 4))\" text-anchor=\"end\" font-size=\"11\" fill=\"#444\">ideal</text>\n"
        }
        out +=
            "<text x=\"\(f(x + width / 2))\" y=\"\(f(y + height + 34))\" text-anchor=\"middle\">\(escape(xLabel))</text>\n"
        out +=
            "<text x=\"\(f(x - 62))\" y=\"\(f(y + height / 2))\" text-anchor=\"middle\" transform=\"rotate(-90 \(f(x - 62)) \(f(y + height / 2)))\">\(escape(yLabel))</text>\n"
        for item in series where !item.points.isEmpty || !item.others.isEmpty {
            if !item.lineless && item.points.count > 1 {
                let path = item.points.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
                out +=
                    "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(item.color)\" stroke-width=\"2\"/>\n"
            }
            for point in item.points {
                let shape =
                    item.lineless
                    ? "<rect x=\"\(f(px(point.x) - 4))\" y=\"\(f(py(point.y) - 4))\" width=\"8\" height=\"8\" fill=\"\(item.color)\"/>"
                    : "<circle cx=\"\(f(px(point.x)))\" cy=\"\(f(py(point.y)))\" r=\"3.5\" fill=\"\(item.color)\"/>"
                out += shape + "\n"
            }
            for point in item.others {
                out +=
                    "<circle cx=\"\(f(px(point.x)))\" cy=\"\(f(py(point.y)))\" r=\"3\" fill=\"white\" stroke=\"\(item.color)\"/>\n"
            }
        }
        out += legend(x: x + width + 20, y: y + 8, entries: series.map { ($0.name, $0.color, $0.lineless) })
        out += "</g>\n"
        return out
    }

    static func legend(x: Double, y: Double, entries: [(String, String, Bool)]) -> String {
        var out = ""
        for (index, (name, color, lineless)) in entries.enumerated() {
            let ey = y + Double(index) * 18
            if lineless {
                out += "<rect x=\"\(f(x + 6))\" y=\"\(f(ey - 4))\" width=\"8\" height=\"8\" fill=\"\(color)\"/>\n"
            } else {
                out +=
                    "<line x1=\"\(f(x))\" y1=\"\(f(ey))\" x2=\"\(f(x + 20))\" y2=\"\(f(ey))\" stroke=\"\(color)\" stroke-width=\"2\"/>\n"
                out += "<circle cx=\"\(f(x + 10))\" cy=\"\(f(ey))\" r=\"3.5\" fill=\"\(color)\"/>\n"
            }
            out += "<text x=\"\(f(x + 28))\" y=\"\(f(ey + 4))\">\(escape(name))</text>\n"
        }
        return out
    }

    /// Grouped bars: per workload, each mode's best tasks/s divided by the fastest mode's,
    /// with the best absolute figure written above the group; "skipped" where a mode could not run.
    static func bars(
        x: Double, y: Double, width: Double, height: Double, workloads: [String], labels: [String],
        colors: [String: String], records: [Record], allRecords: [Record]
    ) -> String {
        var out = "<g>\n"
        out +=
            "<text x=\"\(f(x))\" y=\"\(f(y - 12))\" font-size=\"13\" font-weight=\"bold\">other workloads: each mode's best tasks/s relative to the fastest mode</text>\n"
        out +=
            "<rect x=\"\(f(x))\" y=\"\(f(y))\" width=\"\(f(width))\" height=\"\(f(height))\" fill=\"none\" stroke=\"#333\"/>\n"
        for tick in [0.0, 0.25, 0.5, 0.75, 1.0] {
            let ty = y + height - tick * height / 1.1
            out += "<line x1=\"\(f(x))\" y1=\"\(f(ty))\" x2=\"\(f(x + width))\" y2=\"\(f(ty))\" stroke=\"#e5e5e5\"/>\n"
            out +=
                "<text x=\"\(f(x - 6))\" y=\"\(f(ty + 4))\" text-anchor=\"end\" font-size=\"11\">\(Report.number(tick))</text>\n"
        }
        let groupWidth = width / Double(workloads.count)
        let barWidth = min(28, (groupWidth - 20) / Double(max(labels.count, 1)))
        for (group, workload) in workloads.enumerated() {
            let best = Dictionary(
                grouping: records.filter { $0.workload == workload }, by: \.modeLabel
            ).mapValues { $0.map(\.tasksPerSecond).max() ?? 0 }
            let top = best.values.max() ?? 0
            let left = x + Double(group) * groupWidth + (groupWidth - barWidth * Double(labels.count)) / 2
            for (index, label) in labels.enumerated() {
                let bx = left + Double(index) * barWidth
                if let value = best[label], top > 0 {
                    let h = value / top * height / 1.1
                    out +=
                        "<rect x=\"\(f(bx + 1))\" y=\"\(f(y + height - h))\" width=\"\(f(barWidth - 2))\" height=\"\(f(h))\" fill=\"\(colors[label] ?? "#333")\"><title>\(escape("\(label) \(workload): \(Report.grouped(value)) tasks/s"))</title></rect>\n"
                } else if allRecords.contains(where: { $0.workload == workload && $0.modeLabel == label }) {
                    out +=
                        "<text x=\"\(f(bx + barWidth / 2))\" y=\"\(f(y + height - 6))\" text-anchor=\"middle\" font-size=\"10\" fill=\"#a00\" transform=\"rotate(-90 \(f(bx + barWidth / 2)) \(f(y + height - 6)))\">skipped</text>\n"
                }
            }
            let center = x + (Double(group) + 0.5) * groupWidth
            out +=
                "<text x=\"\(f(center))\" y=\"\(f(y + height + 16))\" text-anchor=\"middle\">\(escape(workload))</text>\n"
            out +=
                "<text x=\"\(f(center))\" y=\"\(f(y + height + 30))\" text-anchor=\"middle\" font-size=\"10\" fill=\"#555\">best \(Report.grouped(top))/s</text>\n"
        }
        out += legend(x: x + width + 20, y: y + 8, entries: labels.map { ($0, colors[$0] ?? "#333", false) })
        out += "</g>\n"
        return out
    }
}
