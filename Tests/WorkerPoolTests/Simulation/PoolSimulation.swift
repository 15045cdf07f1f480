import Foundation

@testable import WorkerPool

/// A seeded, deterministic world around the real ``ProducerCore``: worker processes with task
/// threads, their supervisors, a network that delays, reorders, duplicates and drops, and a
/// schedule of faults (deaths reported and not, frozen processes, dropped connections, time
/// limits, poison tasks, tasks that fail some runs or all, forged messages, a cancelled run,
/// producer restarts from the journal, with retries of failed attempts or without).
/// After every event it checks the core's rules; ``run()`` throws the first broken one with the
/// seed that replays it.
final class PoolSimulation {
    struct Nature {
        var runMilliseconds: Int
        var poison = false
        var timeLimitMilliseconds: Int?
        /// How many runs fail (a handler's error) before one succeeds; `.max` fails every time.
        var failTimes = 0
        /// The task line's `"retries"`, overriding the run's.
        var retries: UInt16?
    }

    enum Event {
        case toWorker(worker: UInt32, thread: UInt16, generation: Int, bytes: [UInt8])
        case toProducerTasks(identity: [UInt8], bytes: [UInt8], key: UInt32, incarnation: Int)
        case toProducerResults(bytes: [UInt8], key: UInt32, incarnation: Int)
        case finished(worker: UInt32, thread: UInt16, token: Int)
        case killForTimeLimit(worker: UInt32, thread: UInt16, token: Int)
        case heartbeat(worker: UInt32)
        case reconnect(worker: UInt32, thread: UInt16)
        case thaw(worker: UInt32)
        case spawn(supervisor: UInt32, key: UInt32)
        case producerTick
        case fault
        case cancel
        case restartProducer
        case commitJournal
    }

    final class Worker {
        /// A task link: one connection feeding `capacity` threads, which run its queue.
        struct Thread {
            var capacity = 1
            var generation = 0
            var connected = false
            var queue: [(record: TaskRecord, epoch: UInt32)] = []
            var running: [(record: TaskRecord, epoch: UInt32, token: Int)] = []
        }
        let id: UInt32
        let supervisor: UInt32
        let key: UInt32
        var threads: [Thread]
        var alive = true
        var frozen = false
        var done: UInt64 = 0

        init(id: UInt32, supervisor: UInt32, key: UInt32, capacities: [Int]) {
            self.id = id
            self.supervisor = supervisor
            self.key = key
            self.threads = capacities.map { Thread(capacity: $0) }
        }

        var hello: WorkerHello {
            WorkerHello(
                pid: id % 100_000, threads: UInt16(threads.reduce(0) { $0 + $1.capacity }), supervisor: supervisor,
                name: "W\(id)", host: "sim")
        }

        /// Held tasks, as a heartbeat lists them.
        var held: [HeldTask] {
            var held: [HeldTask] = []
            for thread in threads {
                held += thread.running.map { HeldTask(id: $0.record.id, running: true) }
                held += thread.queue.map { HeldTask(id: $0.record.id, running: false) }
            }
            return held
        }
    }

    let seed: UInt64
    var random: SeededRandom
    private(set) var now: UInt64 = 0
    var events = EventQueue<Event>()
    var core: ProducerCore
    let configuration: ProducerConfiguration
    var writer: WireFormat.MessageWriter
    var workers: [UInt32: Worker] = [:]
    var natures: [UInt64: Nature] = [:]
    let taskCount: Int
    var nextInput = 1
    var incarnation = 0
    var tokens = 0

    // Fault rates, drawn from the seed so seeds explore different worlds.
    let dropRate: Double
    let duplicateRate: Double
    let maxDelayMicroseconds: Int
    let faultEveryMilliseconds: Int
    let cancels: Bool
    let restarts: Bool

    // What really happened, to judge the core by.
    /// The journal: outcomes made durable, by id, across producer restarts.
    var journal: [UInt64: TaskOutcome] = [:]
    var uncommitted: [TaskOutcome] = []
    /// Outcomes of this incarnation not journaled (cancelled ones).
    var unjournaled: [UInt64: TaskOutcome] = [:]
    /// (task id, worker id) pairs of tasks a worker really received, and that the core sent.
    var received: Set<[UInt64]> = []
    var sent: Set<[UInt64]> = []
    /// When each live task was last accounted for: waiting in the core, on the wire, or held by a
    /// worker that is alive and not frozen.
    var lastAccounted: [UInt64: (time: UInt64, attempt: UInt16)] = [:]
    var forgedSent = 0
    var faultsInjected: [String: Int] = [:]
    var steps = 0
    /// Failed runs each task's workers produced so far (across producer restarts).
    var failuresProduced: [UInt64: Int] = [:]
    /// What retries the core charged, as seen from outside (``PoolSimulation+Retries.swift``).
    var retryLedger = RetryLedger()

    static let trace = ProcessInfo.processInfo.environment["SIM_TRACE"] != nil
    static let forgedPayload = Array("\"forged\"".utf8)

    init(seed: UInt64) {
        self.seed = seed
        var random = SeededRandom(seed: seed)
        taskCount = random.int(20...160)
        dropRate = random.chance(0.5) ? Double(random.int(0...50)) / 1_000 : 0
        duplicateRate = random.chance(0.5) ? Double(random.int(0...50)) / 1_000 : 0
        maxDelayMicroseconds = random.int(50...20_000)
        faultEveryMilliseconds = random.int(50...2_000)
        cancels = random.chance(0.15)
        restarts = random.chance(0.3)
        var configuration = ProducerConfiguration()
        configuration.maxAttempts = 3
        configuration.window = random.chance(0.2) ? random.int(8...64) : 100_000
        configuration.batchSize = random.chance(0.3) ? 1 : 1_000
        configuration.maxWorkers = random.chance(0.3) ? random.int(4...12) : 10_000
        configuration.cancelGraceMilliseconds = 2_000
        if random.chance(0.4) {
            configuration.retries = UInt16(random.int(1...4))
            configuration.retryBackoffMilliseconds = UInt32(random.int(1...100))
            configuration.retryBackoffCapMilliseconds = UInt32(random.int(20...400))
        }
        self.configuration = configuration
        self.random = random
        core = ProducerCore(configuration: configuration, epoch: 1, now: PoolTime(nanoseconds: 0))
        writer = WireFormat.MessageWriter(kind: .tasks, epoch: 1)
        for id in 1...UInt64(taskCount) {
            var nature = Nature(
                runMilliseconds: self.random.chance(0.1) ? self.random.int(20...400) : self.random.int(0...8))
            if self.random.chance(0.03) { nature.poison = true }
            if self.random.chance(0.05) {
                nature.timeLimitMilliseconds = self.random.int(5...100)
            }
            if self.random.chance(0.07) {
                nature.failTimes = self.random.int(1...3)
            } else if self.random.chance(0.02) {
                nature.failTimes = .max
            }
            if self.random.chance(0.1) { nature.retries = UInt16(self.random.int(0...3)) }
            natures[id] = nature
        }
    }

    // MARK: Running

    /// Runs to the end of the job; throws the first rule broken.
    func run() throws {
        let supervisors = random.int(1...4)
        for index in 0..<supervisors {
            let supervisor = UInt32(truncatingIfNeeded: random.next()) | 1
            events.push(.spawn(supervisor: supervisor, key: UInt32(index + 1)), at: UInt64(random.int(0...5_000_000)))
        }
        events.push(.producerTick, at: 250_000_000)
        events.push(.fault, at: ms(faultEveryMilliseconds))
        events.push(.commitJournal, at: ms(20))
        if cancels { events.push(.cancel, at: ms(random.int(10...3_000))) }
        if restarts { events.push(.restartProducer, at: ms(random.int(10...3_000))) }
        pump()
        while !core.isComplete {
            steps += 1
            guard let (time, event) = events.pop() else { throw failure("nothing left to happen, yet tasks are open") }
            now = max(now, time)
            guard now < ms(900_000), steps < 2_000_000 else {
                throw failure("the run did not complete (\(core.leases.count) leases open)")
            }
            handle(event)
            pump()
            try check()
        }
        commit()
        try checkEnd()
    }

    func ms(_ value: Int) -> UInt64 { UInt64(value) * 1_000_000 }
    var poolNow: PoolTime { PoolTime(nanoseconds: now) }
    func delay() -> UInt64 { UInt64(random.int(20...maxDelayMicroseconds)) * 1_000 }

    func failure(_ rule: String) -> SimulationFailure { SimulationFailure(seed: seed, time: now, rule: rule) }

    // MARK: The producer's side (what ProducerRunLoop does with sockets)

    func pump() {
        while core.wantsInput {
            guard nextInput <= taskCount else {
                core.endInput()
                break
            }
            let id = UInt64(nextInput)
            nextInput += 1
            if journal[id] != nil { continue }  // resumed: the journal holds it
            let nature = natures[id] ?? Nature(runMilliseconds: 0)
            let limit = nature.timeLimitMilliseconds.map { Double($0) / 1_000 }
            core.input(
                TaskFeed.Entry(
                    id: id,
                    item: .task(
                        name: "sim", payload: Array("{}".utf8), timeLimitSeconds: limit, retries: nature.retries)),
                now: poolNow)
        }
        while let identity = core.nextDispatch(now: poolNow, into: &writer) {
            let bytes = writer.withFinishedBytes { Array($0) }
            route(identity: identity, bytes: bytes)
        }
        for outcome in core.outcomes {
            if outcome.status == .cancelled {
                unjournaled[outcome.id] = outcome
            } else {
                uncommitted.append(outcome)
            }
        }
        checkOutcomes(core.outcomes)
        core.outcomes.removeAll()
        if Self.trace { for line in core.logs { print("\(Double(now) / 1e6) ms [\(line.level)] \(line.message)") } }
        core.logs.removeAll()
        checkPoolEvents(core.poolEvents)
        core.poolEvents.removeAll()
        core.eventRequests.removeAll()
        core.releasable.removeAll()
    }

    var outcomeFailure: String?
    var outcomeFailureOverride: String?
    var lastLivenessCheck: UInt64 = 0

    /// Every redelivery the pool log records names its task, the worker that had it and the one
    /// that gets it, and why.
    func checkPoolEvents(_ events: [PoolEvent]) {
        for event in events {
            guard case .taskRedelivered(let redelivery) = event.kind else { continue }
            if redelivery.fromID == 0 || redelivery.toID == 0 || redelivery.reason == .none || redelivery.attempt < 2 {
                outcomeFailure = outcomeFailure ?? "task \(redelivery.id) redelivered without its story: \(redelivery)"
            }
        }
    }

    func checkOutcomes(_ outcomes: [TaskOutcome]) {
        for outcome in outcomes {
            if journal[outcome.id] != nil || uncommitted.filter({ $0.id == outcome.id }).count > 1
                || (unjournaled[outcome.id] != nil && outcome.status != .cancelled)
            {
                outcomeFailure = outcomeFailure ?? "task \(outcome.id) ended twice"
            }
            if outcome.payload == Self.forgedPayload {
                outcomeFailure = outcomeFailure ?? "a forged result ended task \(outcome.id)"
            }
            if let worker = outcome.worker, outcome.status == .ok || outcome.status == .failed,
                !received.contains([outcome.id, UInt64(worker.id)])
            {
                outcomeFailure = outcomeFailure ?? "task \(outcome.id) ended by \(worker.id), which never received it"
            }
            lastAccounted[outcome.id] = nil
            checkAttempts(of: outcome)
        }
    }

    func route(identity: [UInt8], bytes: [UInt8]) {
        let workerID = identity.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
        let thread = identity.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4, as: UInt16.self) }
        for case .task(let record) in (try? WireFormat.decodeTasks(bytes)) ?? [] {
            sent.insert([record.id, UInt64(workerID)])
            checkBackoff(beforeSending: record.id)
        }
        guard let worker = workers[workerID], worker.alive, Int(thread) < worker.threads.count,
            worker.threads[Int(thread)].connected
        else {
            // ROUTER_MANDATORY: the peer is not connected.
            core.dispatchFailed(peerGone: true)
            return
        }
        send(
            .toWorker(
                worker: workerID, thread: thread, generation: worker.threads[Int(thread)].generation, bytes: bytes))
    }

    /// Puts a message on the wire: it may be lost, late, early or doubled.
    func send(_ event: Event) {
        guard !random.chance(dropRate) else { return }
        events.push(event, at: now + delay())
        if random.chance(duplicateRate) { events.push(event, at: now + delay()) }
    }

    func commit() {
        for outcome in uncommitted { journal[outcome.id] = outcome }
        uncommitted.removeAll()
    }
}
