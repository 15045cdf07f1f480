import DequeModule

/// The worker processes the producer knows: only those that said hello (a process hello, or a
/// task thread's `ready`, which carries one). A message from anyone else creates nothing here.
///
/// The roster is bounded: at ``capacity`` a new hello makes room by forgetting the worker that
/// has been idle longest (no thread taking work), and is refused when every known worker is busy,
/// so a flood of made-up sender ids costs a fixed amount of memory.
struct WorkerRoster {
    struct Worker {
        let id: UInt32
        var info: WorkerInfo
        /// The sender id of the process's supervisor (0: none): the one whose loss report counts.
        var supervisor: UInt32
        /// The CURVE key it authenticated with (an index into the producer's key table; 0: plaintext).
        var key: UInt32
        var lastSeen: PoolTime
        var resultsReceived: UInt64 = 0
        var tasksDone: UInt64 = 0
        var tasksFailed: UInt64 = 0
        var restarts: UInt32 = 0
        /// Heartbeats received, and the tasks the last one listed.
        var heartbeats: UInt64 = 0
        var held: Set<UInt64> = []
        /// The running tasks of the last heartbeat (for a death nobody reported).
        var running: [UInt64] = []
        /// Its task links that said `ready`, by index.
        var links: [UInt16: TaskLinkInfo] = [:]
        var goodbyeAfter: UInt64?
        var released = false
        var lost = false
        /// Its supervisor reported the process dead: it cannot come back.
        var dead = false

        var isGone: Bool { lost || released }
        var name: String { info.name }
    }

    let capacity: Int
    private(set) var workers: [UInt32: Worker] = [:]
    /// Workers that may be forgotten, oldest first; entries that became busy are skipped.
    private var idle = Deque<UInt32>()
    /// Workers forgotten to make room that had done work: kept for the summary.
    private(set) var retired: [WorkerSummary] = []
    private(set) var forgotten: UInt64 = 0

    init(capacity: Int) { self.capacity = max(1, capacity) }

    var count: Int { workers.count }

    subscript(id: UInt32) -> Worker? {
        get { workers[id] }
        _modify { yield &workers[id] }
    }

    enum Admission {
        case known
        case joined
        /// A hello bound to another key: refused.
        case wrongKey
        /// The roster is full of workers at work.
        case full
    }

    /// Records a hello (from the process, or inside a thread's `ready`) under `key`.
    mutating func hello(_ hello: WorkerHello, from sender: UInt32, key: UInt32, now: PoolTime) -> Admission {
        if var worker = workers[sender] {
            guard worker.key == key else { return .wrongKey }
            worker.lastSeen = now
            worker.info = WorkerInfo(
                id: sender, name: hello.name, host: hello.host, pid: hello.pid, threads: hello.threads)
            worker.supervisor = hello.supervisor
            workers[sender] = worker
            return .known
        }
        if workers.count >= capacity && !forgetOne() { return .full }
        workers[sender] = Worker(
            id: sender,
            info: WorkerInfo(id: sender, name: hello.name, host: hello.host, pid: hello.pid, threads: hello.threads),
            supervisor: hello.supervisor, key: key, lastSeen: now)
        idle.append(sender)
        return .joined
    }

    /// A worker stopped taking work (it left or was lost): it may be forgotten when room is needed.
    mutating func becameIdle(_ id: UInt32) { idle.append(id) }

    /// Forgets a worker that never took work and fell silent.
    mutating func forget(_ id: UInt32) {
        guard workers.removeValue(forKey: id) != nil else { return }
        forgotten += 1
    }

    /// Forgets the longest-idle worker; false if there is none. A worker with no thread taking
    /// work holds no task (leases go only to threads, and come back when a worker is lost or leaves).
    private mutating func forgetOne() -> Bool {
        while let id = idle.popFirst() {
            guard let worker = workers[id] else { continue }
            // Still at work: it goes back on the list when it stops.
            guard worker.isGone || worker.links.isEmpty else { continue }
            workers[id] = nil
            forgotten += 1
            if worker.tasksDone + worker.tasksFailed > 0 { retired.append(Self.summary(of: worker)) }
            return true
        }
        return false
    }

    static func summary(of worker: Worker) -> WorkerSummary {
        WorkerSummary(
            name: worker.info.name, host: worker.info.host, pid: worker.info.pid, tasksDone: worker.tasksDone,
            tasksFailed: worker.tasksFailed, restarts: worker.restarts,
            state: worker.lost ? "lost" : worker.released ? "left" : "running", threads: worker.info.threads,
            running: worker.isGone ? 0 : worker.running.count, lastSeen: worker.lastSeen)
    }

    func name(of id: UInt32) -> String { workers[id]?.info.name ?? "worker \(id)" }

    /// Workers still counted as joined: introduced, not gone.
    var live: some Sequence<Worker> { workers.values.lazy.filter { !$0.isGone } }
}
