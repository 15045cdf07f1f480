import Atomics
import Glibc

/// A worker process's running totals, in memory its supervisor maps too, so one `--metrics`
/// endpoint on the supervisor covers every process it runs. The process's control thread is the
/// only writer (it copies what its task threads counted, a few times a second); the supervisor
/// reads, and folds a dead process's last totals into its own before the slot is reused.
///
/// `@unchecked Sendable`: every field is accessed through `UnsafeAtomic`, and the mapping lives
/// as long as the object.
public final class WorkerStatsBoard: @unchecked Sendable {
    /// What one process has counted since it started.
    public struct Totals: Sendable, Equatable {
        public var tasksOK: UInt64 = 0
        public var tasksFailed: UInt64 = 0
        public var malformedMessages: UInt64 = 0
        public var execJobs: UInt64 = 0
        public var tasksBytesReceived: UInt64 = 0
        public var resultsBytesSent: UInt64 = 0

        public init() {}

        static let fieldCount = 6

        var fields: [UInt64] {
            [tasksOK, tasksFailed, malformedMessages, execJobs, tasksBytesReceived, resultsBytesSent]
        }

        init(fields: [UInt64]) {
            (tasksOK, tasksFailed, malformedMessages) = (fields[0], fields[1], fields[2])
            (execJobs, tasksBytesReceived, resultsBytesSent) = (fields[3], fields[4], fields[5])
        }

        /// `self` plus `other`, field by field.
        public func adding(_ other: Totals) -> Totals {
            Totals(fields: zip(fields, other.fields).map { $0 &+ $1 })
        }
    }

    private static let byteCount = Totals.fieldCount * 8
    private let base: UnsafeMutableRawPointer

    /// A board private to this process (no supervisor reading it).
    public convenience init() {
        let memory = mmap(nil, Self.byteCount, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        // An anonymous private mapping of a few bytes fails only when memory is exhausted.
        precondition(memory != MAP_FAILED && memory != nil, "mmap of \(Self.byteCount) bytes failed")
        self.init(base: memory!)
    }

    /// The board in shared memory `fileDescriptor` (a memfd the supervisor made), or nil if it
    /// cannot be mapped.
    public convenience init?(fileDescriptor: Int32) {
        guard ftruncate(fileDescriptor, off_t(Self.byteCount)) == 0 else { return nil }
        let memory = mmap(nil, Self.byteCount, PROT_READ | PROT_WRITE, MAP_SHARED, fileDescriptor, 0)
        guard let memory, memory != MAP_FAILED else { return nil }
        self.init(base: memory)
    }

    private init(base: UnsafeMutableRawPointer) { self.base = base }

    deinit { munmap(base, Self.byteCount) }

    private func field(_ index: Int) -> UnsafeAtomic<UInt64> {
        UnsafeAtomic(at: (base + index * 8).assumingMemoryBound(to: UnsafeAtomic<UInt64>.Storage.self))
    }

    /// Stores the process's totals (its control thread only).
    public func store(_ totals: Totals) {
        for (index, value) in totals.fields.enumerated() { field(index).store(value, ordering: .relaxed) }
    }

    public func load() -> Totals {
        Totals(fields: (0..<Totals.fieldCount).map { field($0).load(ordering: .relaxed) })
    }

    /// Zeroes the totals (before a restarted process reuses the board).
    public func reset() { store(Totals()) }
}
