import Foundation
import Histogram
import Logging
import Synchronization
import WorkerPool

/// The `threads` mode: N threads of this process pull tasks from a shared queue (a
/// lock-protected index into the payloads) and call `TaskRegistry.run` directly: no sockets,
/// no wire encoding, no other process. The JSON payload bytes are those the other modes send.
///
/// Submit times: the other modes' source blocks once the producer holds 4096 tasks it has not
/// read; to match, task i counts as submitted when task i - 4096 was taken (all of
/// the first 4096 at the start). Its latency is then queueing in a 4096-deep buffer plus the run.
struct ThreadsRunner {
    static let sourceDepth = 4096

    let registry: TaskRegistry
    let events: PoolEvents
    let logger: Logger

    func context(thread: Int) -> TaskContext {
        TaskContext(workerName: "Thread-\(thread)", host: "bench", events: events, logger: logger)
    }

    func run(workload: Workload, payloads: [[UInt8]], threads: Int, stop: BenchStop) -> Measured {
        let contexts = (1...threads).map { context(thread: $0) }
        var measured = Measured()
        measured.tasks = payloads.count
        let shared = SharedQueue(count: payloads.count)
        let name = workload.taskName
        let registry = registry
        let finished = DispatchSemaphore(value: 0)
        let results = Mutex<[ThreadResult]>([])
        let cpuBefore = CPUUsage.now()
        ProcFS.resetPeakRSS()
        let started = monotonicNanos()
        shared.start = started
        for index in 0..<threads {
            let context = contexts[index]
            let thread = Thread {
                var result = ThreadResult()
                while !stop.isStopped, let (task, submitted) = shared.take() {
                    let outcome = registry.run(name: name, payload: payloads[task], context: context)
                    let now = monotonicNanos()
                    result.latency.record(now &- submitted)
                    if outcome.status == .ok { result.succeeded += 1 } else { result.failed += 1 }
                    result.lastResult = now
                }
                results.withLock { $0.append(result) }
                finished.signal()
            }
            thread.name = "bench-thread-\(index + 1)"
            thread.stackSize = 8 << 20
            thread.start()
        }
        for _ in 0..<threads { finished.wait() }
        let cpuAfter = CPUUsage.now()
        measured.firstSubmit = started
        for result in results.withLock({ $0 }) {
            measured.succeeded += result.succeeded
            measured.failed += result.failed
            measured.lastResult = max(measured.lastResult, result.lastResult)
            measured.latency.add(result.latency)
        }
        measured.producerCPU = cpuAfter.selfSeconds - cpuBefore.selfSeconds
        measured.workerCPU = 0
        measured.producerRSSKB = ProcFS.statusKB("VmHWM", pid: nil)
        measured.workersRSSKB = 0
        if stop.isStopped { measured.note = "interrupted" }
        return measured
    }

    /// One round trip at a time: this thread hands a task to a worker thread and waits for its
    /// result (a semaphore each way), `count` times: the in-process floor for the RTT runs.
    func roundTrips(count: Int, payload: [UInt8], stop: BenchStop) -> Measured {
        var measured = Measured()
        measured.tasks = count
        let context = context(thread: 1)
        let request = DispatchSemaphore(value: 0)
        let reply = DispatchSemaphore(value: 0)
        let done = Atomic<Bool>(false)
        let okCount = Atomic<Int>(0)
        let registry = registry
        let thread = Thread {
            while true {
                request.wait()
                if done.load(ordering: .acquiring) { break }
                if registry.run(name: "multiply", payload: payload, context: context).status == .ok {
                    okCount.add(1, ordering: .relaxed)
                }
                reply.signal()
            }
            reply.signal()
        }
        thread.name = "bench-rtt"
        thread.start()
        let cpuBefore = CPUUsage.now()
        ProcFS.resetPeakRSS()
        measured.firstSubmit = monotonicNanos()
        for _ in 0..<count where !stop.isStopped {
            let sent = monotonicNanos()
            request.signal()
            reply.wait()
            let now = monotonicNanos()
            measured.latency.record(now - sent)
            measured.lastResult = now
        }
        done.store(true, ordering: .releasing)
        request.signal()
        reply.wait()
        measured.producerCPU = CPUUsage.now().selfSeconds - cpuBefore.selfSeconds
        measured.workerCPU = 0
        measured.producerRSSKB = ProcFS.statusKB("VmHWM", pid: nil)
        measured.workersRSSKB = 0
        measured.succeeded = okCount.load(ordering: .relaxed)
        measured.failed = Int(measured.latency.totalCount) - measured.succeeded
        return measured
    }
}

private struct ThreadResult: Sendable {
    var latency = makeLatencyHistogram()
    var succeeded = 0
    var failed = 0
    var lastResult: UInt64 = 0
}

/// The threads' shared queue: the next index, and when each task was taken, under one lock.
private final class SharedQueue: @unchecked Sendable {
    private let lock = NSLock()
    private var next = 0
    private let count: Int
    private let taken: UnsafeMutablePointer<UInt64>
    var start: UInt64 = 0

    init(count: Int) {
        self.count = count
        taken = .allocate(capacity: max(count, 1))
    }

    deinit { taken.deallocate() }

    /// The next task's index and its submit time, or nil when none is left.
    func take() -> (Int, UInt64)? {
        lock.lock()
        defer { lock.unlock() }
        guard next < count else { return nil }
        let index = next
        next += 1
        taken[index] = monotonicNanos()
        let submitted = index >= ThreadsRunner.sourceDepth ? taken[index - ThreadsRunner.sourceDepth] : start
        return (index, submitted)
    }
}
