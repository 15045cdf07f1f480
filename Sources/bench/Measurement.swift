import Foundation
import Histogram

/// Monotonic time in nanoseconds (`CLOCK_MONOTONIC`), cheap enough to read once per task.
func monotonicNanos() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return UInt64(spec.tv_sec) &* 1_000_000_000 &+ UInt64(spec.tv_nsec)
}

/// A latency histogram in nanoseconds (HdrHistogram, 3 significant digits, up to an hour).
func makeLatencyHistogram() -> Histogram<UInt64> {
    var histogram = Histogram<UInt64>(highestTrackableValue: 3_600_000_000_000, numberOfSignificantValueDigits: .three)
    histogram.autoResize = true
    return histogram
}

/// CPU time (user + system) of this process and of its reaped children, from `getrusage`.
///
/// Children count once they are reaped, and grandchildren once their parent reaped them: a
/// worker supervisor reaps its worker processes, and the benchmark reaps the supervisor, so the
/// children's delta over a run covers every worker process of it.
struct CPUUsage {
    var selfSeconds: Double
    var childrenSeconds: Double

    static func now() -> CPUUsage {
        CPUUsage(
            selfSeconds: seconds(__rusage_who_t(RUSAGE_SELF.rawValue)),
            childrenSeconds: seconds(__rusage_who_t(RUSAGE_CHILDREN.rawValue)))
    }

    private static func seconds(_ who: __rusage_who_t) -> Double {
        var usage = rusage()
        guard getrusage(who, &usage) == 0 else { return 0 }
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec)
            + Double(usage.ru_stime.tv_usec) / 1e6
    }
}

/// Small readers of `/proc`.
enum ProcFS {
    /// The whole of a (small) `/proc` file; their reported size is 0, so read until EOF.
    static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return Command.readAll(fd)
    }

    /// A `kB` field of `/proc/PID/status` (`VmHWM`, `VmRSS`), in kB.
    static func statusKB(_ field: String, pid: pid_t?) -> Int? {
        guard let text = read("/proc/\(pid.map { "\($0)" } ?? "self")/status") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            return Int(line.dropFirst(field.count + 1).split(whereSeparator: \.isWhitespace).first ?? "")
        }
        return nil
    }

    /// Resets this process's peak RSS (`VmHWM`) to its current RSS: `5` to `/proc/self/clear_refs`.
    @discardableResult
    static func resetPeakRSS() -> Bool {
        let fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return write(fd, "5", 1) == 1
    }

    struct Stat {
        var state: Character
        var parent: pid_t
        /// utime + stime, seconds.
        var cpuSeconds: Double
        /// cutime + cstime (reaped children), seconds.
        var childrenCPUSeconds: Double
    }

    static let ticksPerSecond = Double(max(sysconf(Int32(_SC_CLK_TCK)), 1))

    /// Fields of `/proc/PID/stat`; the command name may hold spaces and parentheses, so the
    /// fields are counted from the last `)`.
    static func stat(pid: pid_t) -> Stat? {
        guard let text = read("/proc/\(pid)/stat"), let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state), so field N is fields[N - 3].
        guard fields.count > 14, let state = fields[0].first, let parent = pid_t(fields[1]),
            let utime = Double(fields[11]), let stime = Double(fields[12]), let cutime = Double(fields[13]),
            let cstime = Double(fields[14])
        else { return nil }
        return Stat(
            state: state, parent: parent, cpuSeconds: (utime + stime) / ticksPerSecond,
            childrenCPUSeconds: (cutime + cstime) / ticksPerSecond)
    }

    /// The children of `pid` (all its threads'), from `/proc/PID/task/TID/children`, or by
    /// scanning `/proc` where the kernel lacks that file.
    static func children(of pid: pid_t) -> [pid_t] {
        let taskDirectory = "/proc/\(pid)/task"
        if let tasks = try? FileManager.default.contentsOfDirectory(atPath: taskDirectory),
            FileManager.default.fileExists(atPath: "\(taskDirectory)/\(pid)/children")
        {
            return tasks.flatMap { task in
                (read("\(taskDirectory)/\(task)/children") ?? "").split(separator: " ").compactMap { pid_t($0) }
            }
        }
        let all = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return all.compactMap { pid_t($0) }.filter { stat(pid: $0)?.parent == pid }
    }
}

/// Samples the worker processes under some root processes (a supervisor, or one per network
/// host): their CPU time and peak RSS, read from `/proc` while they live.
///
/// Used for the peak RSS of workers in every mode, and for their CPU time where they are not
/// this process's children (netns). CPU: the roots' own and reaped children's time plus the
/// live descendants' time at the last sample (taken when the last result arrives, so the
/// workers' shutdown is not counted). RSS: the largest sum over one sample of the live
/// processes' `VmHWM` (each process's own peak so far).
final class WorkerSampler: @unchecked Sendable {
    private let lock = NSLock()
    private var roots: [pid_t] = []
    private var cpu: Double = 0
    private var rssKB = 0
    private var seen = Set<pid_t>()

    func setRoots(_ pids: [pid_t]) {
        lock.withLock { roots = pids }
    }

    var cpuSeconds: Double { lock.withLock { cpu } }
    var peakRSSKB: Int { lock.withLock { rssKB } }
    var processesSeen: Int { lock.withLock { seen.count } }

    func sample() {
        let roots = lock.withLock { self.roots }
        guard !roots.isEmpty else { return }
        var total = 0.0
        var rss = 0
        var found: [pid_t] = []
        var queue = roots
        var index = 0
        while index < queue.count {
            let pid = queue[index]
            index += 1
            guard let stat = ProcFS.stat(pid: pid), stat.state != "Z" else { continue }
            found.append(pid)
            total += stat.cpuSeconds
            // A root's reaped children (restarted processes) are no longer sampled themselves.
            if roots.contains(pid) { total += stat.childrenCPUSeconds }
            rss += ProcFS.statusKB("VmHWM", pid: pid) ?? 0
            queue += ProcFS.children(of: pid)
        }
        lock.withLock {
            if !found.isEmpty { cpu = max(cpu, total) }
            rssKB = max(rssKB, rss)
            seen.formUnion(found)
        }
    }
}

/// Submit times by task id (ids run from 1), written by the source's thread before each emit
/// and read on the producer's thread when the result comes (the producer's feed orders them).
final class SubmitTimes: @unchecked Sendable {
    private let pointer: UnsafeMutablePointer<UInt64>
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        pointer = .allocate(capacity: capacity + 1)
        pointer.initialize(repeating: 0, count: capacity + 1)
    }

    deinit { pointer.deallocate() }

    subscript(id: Int) -> UInt64 {
        get { id >= 0 && id <= capacity ? pointer[id] : 0 }
        set { if id >= 0 && id <= capacity { pointer[id] = newValue } }
    }
}
