import Foundation
import Histogram

/// One measured (or skipped) run: a row of the table and a record of the JSON.
struct Record: Codable, Sendable {
    /// `threads`, `ipc`, `tcp`, `netns`, or `peer` (the Python peers).
    var mode: String
    /// netns: round-trip time added with netem, in milliseconds.
    var addedRTTMs: Double?
    /// The workload (`null`, `cpu-1ms`, ...), or `rtt` for the one-in-flight round trips.
    var workload: String
    var task: String
    var processes: Int
    var threads: Int
    var tasks: Int
    var succeeded: Int
    var failed: Int
    /// Wall clock from the first submit to the last result.
    var seconds: Double
    var tasksPerSecond: Double
    /// Latency from submit (the source emitting the task) to its result, milliseconds.
    var p50Ms: Double?
    var p99Ms: Double?
    var maxMs: Double?
    var meanMs: Double?
    /// CPU time of the producer's process (this one) and of the worker processes, seconds.
    var producerCPUSeconds: Double?
    var workerCPUSeconds: Double?
    var cpuSeconds: Double?
    /// Peak RSS of this process during the run, and the summed peaks of the worker processes.
    var producerPeakRSSMB: Double?
    var workersPeakRSSMB: Double?
    var peakRSSMB: Double?
    /// Worker processes seen (restarted ones count again).
    var workerProcessesSeen: Int?
    /// Tasks sent again (crashes), per the producer's summary.
    var redeliveries: Int?
    /// Worker processes that died during the run (from the supervisors' logs).
    var processDeaths: Int?
    /// For pure CPU workloads: min(workers, cores) × 1e6 / µs per task.
    var idealTasksPerSecond: Double?
    /// Why the run was skipped or failed; nil for a clean run.
    var note: String?
    var skipped: Bool?
    /// Extra fields of a peer record (chunksize, runs, ...).
    var peer: String?
    var chunksize: Int?
    var runs: [Double]?

    enum CodingKeys: String, CodingKey {
        case mode, workload, task, processes, threads, tasks, succeeded, failed, seconds, note, skipped, peer, chunksize
        case runs
        case addedRTTMs = "added_rtt_ms"
        case tasksPerSecond = "tasks_per_second"
        case p50Ms = "p50_ms"
        case p99Ms = "p99_ms"
        case maxMs = "max_ms"
        case meanMs = "mean_ms"
        case producerCPUSeconds = "producer_cpu_s"
        case workerCPUSeconds = "worker_cpu_s"
        case cpuSeconds = "cpu_s"
        case producerPeakRSSMB = "producer_peak_rss_mb"
        case workersPeakRSSMB = "workers_peak_rss_mb"
        case peakRSSMB = "peak_rss_mb"
        case workerProcessesSeen = "worker_processes_seen"
        case redeliveries
        case processDeaths = "process_deaths"
        case idealTasksPerSecond = "ideal_tasks_per_second"
    }

    /// The label of the mode in the table and chart: `netns+10ms` for netns with added delay.
    var modeLabel: String {
        if mode == "peer", let peer { return "py:\(peer)\(chunksize.map { "/\($0)" } ?? "")" }
        if let addedRTTMs, addedRTTMs > 0 { return "\(mode)+\(Report.number(addedRTTMs))ms" }
        return mode
    }

    var workers: Int { processes * threads }

    mutating func setLatency(_ histogram: Histogram<UInt64>) {
        guard histogram.totalCount > 0 else { return }
        p50Ms = Double(histogram.valueAtPercentile(50)) / 1e6
        p99Ms = Double(histogram.valueAtPercentile(99)) / 1e6
        maxMs = Double(histogram.max) / 1e6
        meanMs = histogram.mean / 1e6
    }
}

/// What one run measured, before it becomes a ``Record``.
struct Measured {
    var tasks = 0
    var succeeded = 0
    var failed = 0
    var firstSubmit: UInt64 = 0
    var lastResult: UInt64 = 0
    var latency = makeLatencyHistogram()
    var producerCPU: Double?
    var workerCPU: Double?
    var producerRSSKB: Int?
    var workersRSSKB: Int?
    var workerProcessesSeen: Int?
    var redeliveries: Int?
    var processDeaths: Int?
    var note: String?

    var seconds: Double { lastResult > firstSubmit ? Double(lastResult - firstSubmit) / 1e9 : 0 }

    func record(
        mode: String, addedRTTMs: Double? = nil, workload: String, task: String, processes: Int, threads: Int,
        idealTasksPerSecond: Double? = nil
    ) -> Record {
        var record = Record(
            mode: mode, addedRTTMs: addedRTTMs, workload: workload, task: task, processes: processes,
            threads: threads, tasks: tasks, succeeded: succeeded, failed: failed, seconds: seconds,
            tasksPerSecond: seconds > 0 ? Double(succeeded + failed) / seconds : 0)
        record.setLatency(latency)
        record.producerCPUSeconds = producerCPU
        record.workerCPUSeconds = workerCPU
        if producerCPU != nil || workerCPU != nil { record.cpuSeconds = (producerCPU ?? 0) + (workerCPU ?? 0) }
        record.producerPeakRSSMB = producerRSSKB.map { Double($0) / 1024 }
        record.workersPeakRSSMB = workersRSSKB.map { Double($0) / 1024 }
        if producerRSSKB != nil || workersRSSKB != nil {
            record.peakRSSMB = Double((producerRSSKB ?? 0) + (workersRSSKB ?? 0)) / 1024
        }
        record.workerProcessesSeen = workerProcessesSeen
        record.redeliveries = redeliveries
        record.processDeaths = processDeaths
        record.idealTasksPerSecond = idealTasksPerSecond
        record.note = note
        return record
    }
}
