import Atomics
import CPoolSystem
import Glibc

/// Which task each thread of a worker process is running, in memory the process's supervisor
/// maps too: the supervisor enforces time limits from it and, when the process dies, reports
/// what it was running. A task thread writes its own slot only; readers tolerate a torn read by
/// re-checking the task id.
///
/// `@unchecked Sendable`: every field is accessed through `UnsafeAtomic`, and the mapping lives
/// as long as the object.
public final class RunningTaskBoard: @unchecked Sendable {
    public struct Running: Sendable, Equatable {
        public var task: TaskAttempt
        public var startedNanoseconds: UInt64
        /// 0: no limit.
        public var limitNanoseconds: UInt64
    }

    /// Task id, attempt, start, limit, and the process group of a command the task runs (exec).
    static let fieldsPerSlot = 5
    public let threads: Int
    private let base: UnsafeMutableRawPointer
    private let byteCount: Int

    /// The bytes a board for `threads` threads needs.
    public static func byteCount(threads: Int) -> Int { max(threads, 1) * fieldsPerSlot * 8 }

    /// A board private to this process (no supervisor watching).
    public convenience init(threads: Int) {
        let size = Self.byteCount(threads: threads)
        let memory = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        // An anonymous private mapping of a few bytes fails only when memory is exhausted.
        precondition(memory != MAP_FAILED && memory != nil, "mmap of \(size) bytes failed")
        self.init(base: memory!, threads: threads)
    }

    /// The board in shared memory `fileDescriptor` (a memfd sized by the supervisor), or nil if
    /// it cannot be mapped.
    public convenience init?(fileDescriptor: Int32, threads: Int) {
        let size = Self.byteCount(threads: threads)
        guard ftruncate(fileDescriptor, off_t(size)) == 0 else { return nil }
        let memory = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fileDescriptor, 0)
        guard let memory, memory != MAP_FAILED else { return nil }
        self.init(base: memory, threads: threads)
    }

    private init(base: UnsafeMutableRawPointer, threads: Int) {
        self.base = base
        self.threads = threads
        self.byteCount = Self.byteCount(threads: threads)
    }

    deinit { munmap(base, byteCount) }

    private func field(_ thread: Int, _ index: Int) -> UnsafeAtomic<UInt64> {
        let pointer = (base + (thread * Self.fieldsPerSlot + index) * 8)
            .assumingMemoryBound(to: UnsafeAtomic<UInt64>.Storage.self)
        return UnsafeAtomic(at: pointer)
    }

    /// Thread `thread` (0-based) starts `task`; `limitMilliseconds` 0 is no limit.
    public func begin(
        thread: Int, task: TaskAttempt, limitMilliseconds: UInt32,
        startedNanoseconds: UInt64 = cpool_monotonic_nanoseconds()
    ) {
        field(thread, 0).store(0, ordering: .releasing)
        field(thread, 1).store(UInt64(task.attempt), ordering: .relaxed)
        field(thread, 2).store(startedNanoseconds, ordering: .relaxed)
        field(thread, 3).store(UInt64(limitMilliseconds) * 1_000_000, ordering: .relaxed)
        field(thread, 0).store(task.id, ordering: .releasing)
    }

    public func end(thread: Int) { field(thread, 0).store(0, ordering: .releasing) }

    /// What thread `thread` runs, if anything.
    public func running(thread: Int) -> Running? {
        let id = field(thread, 0).load(ordering: .acquiring)
        guard id != 0 else { return nil }
        let attempt = field(thread, 1).load(ordering: .relaxed)
        let started = field(thread, 2).load(ordering: .relaxed)
        let limit = field(thread, 3).load(ordering: .relaxed)
        guard field(thread, 0).load(ordering: .acquiring) == id else { return nil }
        return Running(
            task: TaskAttempt(id: id, attempt: UInt16(truncatingIfNeeded: attempt)), startedNanoseconds: started,
            limitNanoseconds: limit)
    }

    public var allRunning: [Running] { (0..<threads).compactMap { running(thread: $0) } }

    /// Thread `thread` runs a command in process group `group` (0: none any more). Written before
    /// the command's process is reaped, so the group id cannot belong to anyone else meanwhile.
    public func setCommandGroup(thread: Int, _ group: pid_t) {
        field(thread, 4).store(UInt64(UInt32(bitPattern: group)), ordering: .releasing)
    }

    /// The process group of the command thread `thread` runs, if any.
    public func commandGroup(thread: Int) -> pid_t? {
        let group = pid_t(bitPattern: UInt32(truncatingIfNeeded: field(thread, 4).load(ordering: .acquiring)))
        return group > 0 ? group : nil
    }

    /// SIGKILLs the process group of every command still recorded, and forgets them: the
    /// supervisor calls this when the process died, so no command outlives it. Returns the groups.
    @discardableResult
    public func killCommandGroups() -> [pid_t] {
        var killed: [pid_t] = []
        for thread in 0..<threads {
            guard let group = commandGroup(thread: thread) else { continue }
            kill(-group, SIGKILL)
            setCommandGroup(thread: thread, 0)
            killed.append(group)
        }
        return killed
    }

    /// Marks every slot idle (before a restarted process reuses the board).
    public func reset() { for thread in 0..<threads { end(thread: thread) } }
}
