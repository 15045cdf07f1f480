import Foundation

/// The table on stdout, and the JSON document.
enum Report {
    /// A compact number: integers without a fraction, others with up to 3 significant digits.
    static func number(_ value: Double) -> String {
        if value == value.rounded() && abs(value) < 1e15 { return String(Int(value)) }
        return significant(value, 3)
    }

    static func significant(_ value: Double, _ digits: Int) -> String {
        guard value.isFinite else { return "-" }
        if value == 0 { return "0" }
        let magnitude = Int(floor(log10(abs(value))))
        let decimals = max(0, digits - 1 - magnitude)
        return String(format: "%.\(decimals)f", value)
    }

    static func grouped(_ value: Double) -> String {
        guard value.isFinite else { return "-" }
        let integer = Int(value.rounded())
        let digits = String(abs(integer))
        var out = ""
        for (offset, character) in digits.enumerated() {
            if offset > 0 && (digits.count - offset) % 3 == 0 { out += "," }
            out.append(character)
        }
        return (integer < 0 ? "-" : "") + out
    }

    static func table(_ records: [Record]) -> String {
        let head = [
            "mode", "workload", "processes", "threads", "tasks", "tasks/s", "p50 ms", "p99 ms", "CPU s",
            "peak RSS MB", "note",
        ]
        var rows: [[String]] = []
        for record in records {
            if record.skipped == true {
                rows.append([
                    record.modeLabel, record.workload, "\(record.processes)", "\(record.threads)", "-", "skipped", "-",
                    "-", "-", "-", record.note ?? "",
                ])
                continue
            }
            rows.append([
                record.modeLabel, record.workload, "\(record.processes)", "\(record.threads)",
                grouped(Double(record.tasks)),
                grouped(record.tasksPerSecond), record.p50Ms.map { significant($0, 3) } ?? "-",
                record.p99Ms.map { significant($0, 3) } ?? "-", record.cpuSeconds.map { significant($0, 3) } ?? "-",
                record.peakRSSMB.map { String(format: "%.0f", $0) } ?? "-", record.note ?? "",
            ])
        }
        let widths = head.indices.map { column in
            ([head[column]] + rows.map { $0[column] }).map(\.count).max() ?? 0
        }
        let rightAligned: Set<Int> = [2, 3, 4, 5, 6, 7, 8, 9]
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { column, cell in
                let pad = String(repeating: " ", count: widths[column] - cell.count)
                return rightAligned.contains(column) ? pad + cell : cell + pad
            }
            .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
        var text = line(head) + "\n" + line(widths.map { String(repeating: "-", count: $0) }) + "\n"
        for row in rows { text += line(row) + "\n" }
        return text
    }

    /// What the machine is: uname, CPU model, cores, memory, load, date, git commit.
    static func machineInfo() -> [String: Any] {
        var info: [String: Any] = [:]
        var names = utsname()
        if uname(&names) == 0 {
            func field<T>(_ value: T) -> String {
                withUnsafeBytes(of: value) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            }
            info["uname"] = [
                "sysname": field(names.sysname), "nodename": field(names.nodename), "release": field(names.release),
                "version": field(names.version), "machine": field(names.machine),
            ]
        }
        let cpuinfo = ProcFS.read("/proc/cpuinfo") ?? ""
        if let model = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("model name") }) {
            info["cpu_model"] = model.split(separator: ":", maxSplits: 1).last?.trimmingCharacters(in: .whitespaces)
        }
        info["cores"] = ProcessInfo.processInfo.activeProcessorCount
        info["memory_gib"] = ((ProcFS.statusLine("/proc/meminfo", "MemTotal") ?? 0) / 1024 / 1024 * 10).rounded() / 10
        info["load_average"] = (ProcFS.read("/proc/loadavg") ?? "").split(separator: " ").prefix(3).compactMap {
            Double($0)
        }
        info["date"] = ISO8601DateFormatter().string(from: Date())
        if let git = Command.which("git"),
            let head = try? Command.run(git, ["rev-parse", "HEAD"], captureStderr: true), head.ok
        {
            info["git_commit"] = head.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            if let status = try? Command.run(
                git, ["status", "--porcelain", "--untracked-files=no"], captureStderr: true),
                status.ok
            {
                info["git_dirty"] = !status.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
            }
        }
        return info
    }

    static func json(records: [Record], extra: [String: Any]) throws -> Data {
        let encoder = JSONEncoder()
        let encoded = try encoder.encode(records)
        var document = extra
        document["records"] = try JSONSerialization.jsonObject(with: encoded)
        return try JSONSerialization.data(
            withJSONObject: document, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    }
}

extension ProcFS {
    /// A number from a `Name: value kB` line of a file such as `/proc/meminfo`.
    static func statusLine(_ path: String, _ field: String) -> Double? {
        guard let text = read(path) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            return Double(line.dropFirst(field.count + 1).split(whereSeparator: \.isWhitespace).first ?? "")
        }
        return nil
    }
}
