import Foundation
import Logging
import WorkerPool

/// One kind of task the benchmark runs in every mode, with the same JSON payload bytes.
struct Workload: Sendable {
    enum Kind: Sendable {
        /// `multiply`: the pool's own cost per task.
        case null
        /// `spin` for this many microseconds of CPU (calibrated loop steps).
        case cpu(us: Double)
        /// `sleep` this many milliseconds: waiting, not working.
        case io(ms: Int)
        /// `blob` with a string of this many bytes: moving data.
        case large(bytes: Int)
        /// `flaky`: spin `us`, then take the process down with probability `p`.
        case crashy(p: Double, us: Double)
        /// `locked`: spin `us` holding a process-wide lock (code that is not thread-safe).
        case locked(us: Double)
        /// `exec`: run this program (no arguments) on the worker: spawning a process per task.
        case exec(program: String)
    }

    let name: String
    let kind: Kind
    let fullCount: Int
    let quickCount: Int

    static let all: [Workload] = [
        Workload(name: "null", kind: .null, fullCount: 100_000, quickCount: 2_000),
        Workload(name: "cpu-1us", kind: .cpu(us: 1), fullCount: 50_000, quickCount: 2_000),
        Workload(name: "cpu-10us", kind: .cpu(us: 10), fullCount: 20_000, quickCount: 1_000),
        Workload(name: "cpu-100us", kind: .cpu(us: 100), fullCount: 6_000, quickCount: 300),
        Workload(name: "cpu-1ms", kind: .cpu(us: 1_000), fullCount: 800, quickCount: 60),
        Workload(name: "cpu-10ms", kind: .cpu(us: 10_000), fullCount: 100, quickCount: 12),
        Workload(name: "io-5ms", kind: .io(ms: 5), fullCount: 400, quickCount: 40),
        Workload(name: "large-64k", kind: .large(bytes: 64 << 10), fullCount: 3_000, quickCount: 150),
        Workload(name: "large-1m", kind: .large(bytes: 1 << 20), fullCount: 300, quickCount: 15),
        Workload(name: "crashy", kind: .crashy(p: 0.01, us: 100), fullCount: 500, quickCount: 100),
        Workload(name: "locked", kind: .locked(us: 100), fullCount: 3_000, quickCount: 200),
        Workload(name: "exec-true", kind: .exec(program: "true"), fullCount: 3_000, quickCount: 100),
    ]

    static var names: [String] { all.map(\.name) }

    static func named(_ name: String) -> Workload? { all.first { $0.name == name } }

    var taskName: String {
        switch kind {
        case .null: "multiply"
        case .cpu: "spin"
        case .io: "sleep"
        case .large: "blob"
        case .crashy: "flaky"
        case .locked: "locked"
        case .exec: "exec"
        }
    }

    /// Microseconds of CPU per task when the workload is pure CPU work (for "ideal" throughput).
    var cpuMicros: Double? {
        if case .cpu(let us) = kind { return us }
        return nil
    }

    /// Why this workload cannot run in one process with threads, if it cannot.
    var threadsSkipReason: String? {
        if case .crashy = kind {
            return "a crash takes the whole process down: threads share one process, so the run cannot survive it"
        }
        return nil
    }

    var description: String {
        switch kind {
        case .null: "multiply {a, b}: the pool's own cost per task"
        case .cpu(let us): "spin {us: \(Self.format(us))}: calibrated CPU loop"
        case .io(let ms): "sleep {ms: \(ms)}: waiting, no CPU"
        case .large(let bytes): "blob {data: \(bytes / 1024) KiB string}: length and checksum"
        case .crashy(let p, let us): "flaky {p: \(p), us: \(Self.format(us))}: aborts its process with probability p"
        case .locked(let us): "locked {us: \(Self.format(us))}: spins holding a process-wide lock"
        case .exec(let program): "exec {argv: [\(program)]}: a process spawned and reaped per task"
        }
    }

    private static func format(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }

    /// The payloads of `count` tasks. `null` tasks differ (`{"a": i, "b": 2}`); the others share
    /// one payload array (copy-on-write: one buffer however many tasks).
    func payloads(count: Int, stepsPerMicrosecond: Double) -> [[UInt8]] {
        // Without a calibration, each worker process converts "us" with its own.
        func steps(_ us: Double) -> String {
            stepsPerMicrosecond > 0 ? "\"iterations\":\(Int((us * stepsPerMicrosecond).rounded()))," : ""
        }
        let shared: [UInt8]
        switch kind {
        case .null:
            return (0..<count).map { Array("{\"a\":\($0),\"b\":2}".utf8) }
        case .cpu(let us):
            shared = Array("{\(steps(us))\"us\":\(us)}".utf8)
        case .io(let ms):
            shared = Array("{\"ms\":\(ms)}".utf8)
        case .large(let bytes):
            shared = Array("{\"data\":\"".utf8) + Self.base64Text(count: bytes) + Array("\"}".utf8)
        case .crashy(let p, let us):
            shared = Array("{\(steps(us))\"p\":\(p),\"us\":\(us)}".utf8)
        case .locked(let us):
            shared = Array("{\(steps(us))\"us\":\(us)}".utf8)
        case .exec(let program):
            shared = Array("{\"argv\":[\"\(program)\"]}".utf8)
        }
        return Array(repeating: shared, count: count)
    }

    /// `count` characters of base64 of pseudo-random bytes (a fixed seed: the same every run).
    static func base64Text(count: Int) -> [UInt8] {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var bytes = [UInt8](repeating: 0, count: count * 3 / 4 + 3)
        for index in bytes.indices {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            bytes[index] = UInt8(truncatingIfNeeded: state >> 32)
        }
        return Array(Data(bytes).base64EncodedString().utf8.prefix(count))
    }
}

/// Steps of the `spin` loop per microsecond, measured once in this process through the
/// registry (the same code the workers run): the fastest of 40 short runs (~0.5 ms each, so
/// some run is likely not to be preempted on a busy machine), so a busy machine does not make
/// the tasks shorter. Workers get the step count in each payload, so every process and mode
/// does the same work.
enum SpinCalibration {
    static func measure(registry: TaskRegistry, context: TaskContext) -> Double {
        let steps = 300_000
        let payload = Array("{\"iterations\":\(steps)}".utf8)
        var best = UInt64.max
        for _ in 0..<40 {
            sched_yield()
            let started = monotonicNanos()
            _ = registry.run(name: "spin", payload: payload, context: context)
            best = min(best, monotonicNanos() - started)
        }
        return Double(steps) / (Double(best) / 1000)
    }
}
