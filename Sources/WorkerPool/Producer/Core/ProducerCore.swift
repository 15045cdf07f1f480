import Logging

/// The producer's decisions, with no I/O: input entries, worker messages and the passing of time
/// go in; messages to send, task outcomes, log lines, event requests and releases come out.
/// Time is an argument, never read, so a seeded simulation can drive it through thousands of
/// fault schedules (see `ProducerCoreSimulationTests`); ``Producer`` turns sockets into calls.
///
/// Rules it keeps:
/// - every task read ends exactly once, as one outcome in ``outcomes``;
/// - only a worker a task was sent to (any attempt) may end it; a queued task that was never
///   sent can be ended by nobody; a process's death counts only when its own supervisor says so;
/// - a sender that has not said hello creates no state and earns no credit;
/// - a task lost with its worker, its connection or its message is sent again; one whose process
///   dies while running it is charged an attempt and fails after ``ProducerConfiguration/maxAttempts``;
/// - a task whose attempt failed is run again after a backoff, up to its retries, preferably on
///   another worker (`ProducerCore+Retries.swift`); lost work sent again is never charged a retry.
struct ProducerCore {
    let configuration: ProducerConfiguration
    let epoch: UInt32
    let startedAt: PoolTime
    var leases: LeaseTable
    var roster: WorkerRoster

    // MARK: Outputs, drained by the caller

    /// Tasks that ended, in the order they ended.
    var outcomes: [TaskOutcome] = []
    var logs: [LogLine] = []
    /// What happened to the pool, for the pool log (``record(_:now:)`` also logs what deserves a line).
    var poolEvents: [PoolEvent] = []
    /// Event changes workers asked for, with the asker's name: the caller applies them.
    var eventRequests: [(request: EventRequest, by: String)] = []
    /// Workers to confirm as released in the next broadcast.
    var releasable: [UInt32] = []

    // MARK: Counters (changed by the extensions in the other files)

    var submitted: UInt64 = 0
    var succeeded: UInt64 = 0
    var failed: UInt64 = 0
    /// Results for tasks that already ended (or of another run).
    var duplicates: UInt64 = 0
    /// Results from a known worker for a task it was never sent.
    var forged = RateLimitedLines()
    /// Messages from senders that never said hello (or under another key).
    var strangers = RateLimitedLines()
    /// Loss reports from a sender that is not the process's supervisor.
    var refusedLossReports = RateLimitedLines()
    var rejected = RateLimitedLines()
    var overdue = RateLimitedLines()
    var redeliveries: UInt64 = 0
    /// The rejection counts the pool log has been told (``noteRejections(now:)``), in its order.
    var rejectionsNoted: [UInt64] = [0, 0, 0, 0]
    var worstRedelivery: PoolTime = .zero
    /// Failed attempts held for a retry.
    var retriesScheduled: UInt64 = 0
    /// Failures and retries logged (the first few, then one in a thousand).
    var retryLog = RateLimitedLines()
    /// What metrics report beyond the totals above (see ``metricsSnapshot(now:)``).
    var counters = ProducerCounters()

    // MARK: Run state

    private(set) var inputCancelled = false
    private(set) var inputEnded = false
    private var enoughWorkers = false
    private(set) var cancelDeadline: PoolTime?
    /// Workers that joined since the last tick (only the first few are logged by name).
    var joinsThisTick = 0
    static let joinsLoggedPerTick = 50
    /// Scratch for ``receive(_:key:now:)``: the records of one results message, valid during the call.
    var resultViews: [ResultView] = []
    /// The tasks of the last message ``nextDispatch(now:into:)`` built, until the next.
    private var lastDispatch: (peer: PeerKey, ids: [UInt64])?

    /// Dispatches of one task before it fails (each lost message, reconnection or death is one).
    static let maxDispatches: UInt16 = 100
    /// New tasks kept ready to send: enough for every thread's credit without holding the input.
    static let freshTarget = 4_096

    init(configuration: ProducerConfiguration, epoch: UInt32, now: PoolTime) {
        self.configuration = configuration
        self.epoch = epoch
        self.startedAt = now
        leases = LeaseTable(maximumCapacity: max(1_024, configuration.window * 2))
        roster = WorkerRoster(capacity: configuration.maxWorkers)
    }

    // MARK: Input

    /// Whether the core takes more input now.
    var wantsInput: Bool {
        !inputCancelled && !inputEnded && leases.freshCount < Self.freshTarget && leases.count < configuration.window
    }

    /// New input entries, in id order, read at `now`: each becomes a lease, or ends at once if it
    /// cannot be sent.
    /// Every entry of `batch`, which is left empty (each is moved out, not copied).
    mutating func input(_ batch: inout TaskFeed.Batch, now: PoolTime) {
        // Taken from the end, so each entry moves out in O(1). Reversed through a buffer pointer,
        // whose swaps move the entries: the array's own `reverse()` copied each one.
        batch.withUnsafeMutableBufferPointer { $0.reverse() }
        while let entry = batch.popLast() { input(entry, now: now) }
    }

    mutating func input(_ entry: consuming TaskFeed.Entry, now: PoolTime) {
        submitted += 1
        // Taken apart and switched on as owned values, so the name and payload move into the
        // lease instead of being copied there and released with the entry.
        let (id, item, digest) = entry.parts()
        switch consume item {
        case .invalid(let reason):
            refuse(id, digest, name: "", .badInput, reason)
        case .task(let name, _, _, _) where name.isEmpty || name.utf8.count > WireFormat.maxNameLength:
            refuse(
                id, digest, name: "", .badInput,
                "task names are 1-\(WireFormat.maxNameLength) bytes; this one is \(name.utf8.count)")
        case .task(let name, let payload, let timeLimit, let retries):
            let size = TaskRecord.fixedSize + name.utf8.count + payload.count + WireFormat.headerSize
            guard size <= configuration.maxMessageSize else {
                refuse(
                    id, digest, name: name, .tooLarge,
                    "task of \(size) bytes exceeds the message limit of \(configuration.maxMessageSize)")
                return
            }
            let limit =
                timeLimit.map { UInt32(clamping: Int(($0 * 1000).rounded(.up))) }
                ?? configuration.defaultTimeLimitMilliseconds
            leases.insert(
                id: id, name: name, payload: payload, timeLimitMilliseconds: limit,
                retries: retries ?? configuration.retries, digest: digest,
                submittedTicks: ProducerCounters.ticks(now))
        }
    }

    private mutating func refuse(
        _ id: UInt64, _ digest: TaskDigest, name: String, _ status: ResultStatus, _ reason: String
    ) {
        logs.append(LogLine(level: .warning, message: "task \(id): \(reason)"))
        end(
            TaskOutcome(
                id: id, name: name, status: status, payloadStorage: Array(reason.utf8), runMicroseconds: 0,
                digest: digest))
    }

    /// The input has no more entries.
    mutating func endInput() { inputEnded = true }

    /// Stops taking input (Ctrl-C). Entries read but never sent, `unread` among them (what the
    /// feed still held), end `cancelled`; tasks already sent have the cancel grace to finish.
    mutating func cancelInput(unread: [TaskFeed.Entry], now: PoolTime) {
        guard !inputCancelled else { return }
        inputCancelled = true
        cancelDeadline = now + .milliseconds(configuration.cancelGraceMilliseconds)
        let unsent = leases.ids(where: { !$0.wasSent })
        for id in unsent {
            guard let lease = leases.remove(id) else { continue }
            end(
                TaskOutcome(
                    id: id, name: lease.name, status: .cancelled,
                    payloadStorage: Array("run cancelled before the task was sent".utf8), runMicroseconds: 0))
        }
        cancelRetries()
        for entry in unread {
            submitted += 1
            let name: String
            if case .task(let taskName, _, _, _) = entry.item { name = taskName } else { name = "" }
            end(
                TaskOutcome(
                    id: entry.id, name: name, status: .cancelled,
                    payloadStorage: Array("run cancelled before the task was sent".utf8), runMicroseconds: 0))
        }
        logs.append(LogLine(level: .warning, message: "input cancelled; waiting for \(leases.count) dispatched tasks"))
    }

    /// Ends every task still in flight as `cancelled`, so none is left without an outcome.
    mutating func cancelInFlight(reason: String) {
        for lease in leases.removeAll() {
            end(
                TaskOutcome(
                    id: lease.id, name: lease.name, status: .cancelled, payloadStorage: Array(reason.utf8),
                    runMicroseconds: 0,
                    attempts: lease.failures, deliveries: lease.attempt))
        }
    }

    /// Every task read has ended and no more will be read.
    var isComplete: Bool { leases.isEmpty && (inputCancelled || inputEnded) }

    // MARK: Dispatch

    /// Fills `writer` with tasks for the next worker thread with credit (tasks to send again
    /// first) and returns that thread's routing id; nil when no thread has credit or no task
    /// waits. The caller sends the message, or calls ``dispatchFailed(peerGone:)``.
    mutating func nextDispatch(now: PoolTime, into writer: inout WireFormat.MessageWriter) -> [UInt8]? {
        lastDispatch = nil
        guard enoughWorkers || checkEnoughWorkers() else { return nil }
        if leases.hasRetryTimers { leases.releaseDueRetries(now: now) }
        guard !leases.retry.isEmpty || leases.freshCount > 0,
            let (position, credit) = threadWithCredit()
        else { return nil }
        let peer = leases.credit.peers[position]
        // A fair share of what waits, by threads: two tasks for two idle threads go one to each,
        // not both to the first (a task may wait for another); a long queue still fills each
        // link's credit.
        let waiting = leases.retry.count + leases.freshCount
        let threads = max(1, leases.credit.capacity)
        let share = max(1, (waiting * peer.capacity + threads - 1) / threads)
        let limit = min(credit, configuration.batchSize, share)
        writer.reset(kind: .tasks, epoch: epoch)
        var ids: [UInt64] = []
        ids.reserveCapacity(min(limit, 64))
        fill: while Int(writer.count) < limit, let id = leases.nextToSend() {
            switch leases.dispatch(
                id, to: peer.key, into: &writer, now: now, maxMessageSize: configuration.maxMessageSize,
                maxDispatches: Self.maxDispatches)
            {
            case .added(let redelivery):
                ids.append(id)
                if let redelivery {
                    worstRedelivery = max(worstRedelivery, now.since(redelivery.lostSince))
                    redeliveries += 1
                    recordRedelivery(id, redelivery, to: peer.key.worker, now: now)
                }
            case .messageFull:
                break fill
            case .exhausted(let attempts):
                // Sent again and again without a result (a result too big for this producer, a
                // peer that keeps reconnecting): an explicit failure, not an endless loop.
                guard let lease = leases.remove(id) else { continue }
                let reason = "sent \(attempts) times without a result; giving up"
                record(.taskFailed(id: id, name: lease.name, status: .failed, reason: reason), now: now)
                end(
                    TaskOutcome(
                        id: id, name: lease.name, status: .failed, payloadStorage: Array(reason.utf8),
                        runMicroseconds: 0,
                        digest: lease.digest, attempts: lease.failures + 1, deliveries: lease.attempt))
            case .gone:
                continue
            }
        }
        guard !ids.isEmpty else { return nil }
        counters.dispatched &+= UInt64(ids.count)
        lastDispatch = (peer.key, ids)
        return peer.identity
    }

    /// The message of the last ``nextDispatch(now:into:)`` could not be sent: its tasks wait for
    /// another thread; a thread that is gone takes no more until its next `ready`.
    mutating func dispatchFailed(peerGone: Bool) {
        guard let (peer, ids) = lastDispatch else { return }
        lastDispatch = nil
        counters.dispatched &-= UInt64(ids.count)
        leases.undispatch(ids, from: peer)
        if peerGone { leases.credit.remove(peer) }
    }

    /// Introduced (hello) and reachable (`ready` for all its threads): hold tasks back until enough
    /// workers are, so the first to connect do not take the whole start of the input.
    private mutating func checkEnoughWorkers() -> Bool {
        let joined = roster.live.filter { $0.links.values.reduce(0) { $0 + Int($1.capacity) } >= Int($0.info.threads) }
            .count
        enoughWorkers = joined >= configuration.minimumWorkers
        return enoughWorkers
    }

    // MARK: Ending tasks

    @inline(__always)
    mutating func end(_ outcome: consuming TaskOutcome) {
        if outcome.status == .ok { succeeded += 1 } else { failed += 1 }
        counters.ended[Int(outcome.status.rawValue)] &+= 1
        outcomes.append(consume outcome)
    }
}
