import DequeModule
import HeapModule

/// Every task between its reading and its end, and each worker thread's credit: the one place
/// that changes a lease's state, so a thread's credit always equals the leases it holds.
///
/// Leases live in a ring indexed by id (ids are dense and increasing), so finding one is an
/// index, not a hash. A lease still alive when the ring must move past it (a straggler among many
/// fast tasks) moves to a small overflow dictionary.
struct LeaseTable {
    private var slots: [Lease]
    private var mask: Int
    /// The lowest id the ring covers; it covers `base ..< base + slots.count`.
    private var base: UInt64 = 1
    private var overflow: [UInt64: Lease] = [:]
    private let maximumCapacity: Int
    /// Live leases.
    private(set) var count = 0
    /// The highest id inserted.
    private(set) var newest: UInt64 = 0
    /// Leases never sent are exactly the live ones with `attempt == 0` at or above this id, except
    /// for those the retry queue holds (a send that failed).
    private var nextFresh: UInt64 = 1
    /// Live leases never sent (`attempt == 0`).
    private(set) var freshCount = 0
    /// Tasks to send again, before new ones.
    private(set) var retry = Deque<UInt64>()
    /// Failed tasks waiting out their backoff (``Lease/State/awaitingRetry``), soonest first. An
    /// entry whose lease ended meanwhile, or failed again, is dropped when it comes up.
    private var retryTimers = Heap<RetryTimer>()
    /// Each worker thread's credit; `outstanding` is changed only here.
    var credit = CreditTable()

    init(initialCapacity: Int = 1_024, maximumCapacity: Int = 1 << 18) {
        let capacity = Self.powerOfTwo(atLeast: max(16, initialCapacity))
        slots = Array(repeating: Lease(), count: capacity)
        mask = capacity - 1
        self.maximumCapacity = max(capacity, Self.powerOfTwo(atLeast: maximumCapacity))
    }

    private static func powerOfTwo(atLeast value: Int) -> Int {
        var power = 1
        while power < value { power <<= 1 }
        return power
    }

    var isEmpty: Bool { count == 0 }

    // MARK: Finding leases

    @inline(__always)
    private func ringIndex(_ id: UInt64) -> Int? {
        id >= base && id - base < UInt64(slots.count) ? Int(truncatingIfNeeded: id) & mask : nil
    }

    func contains(_ id: UInt64) -> Bool {
        if let index = ringIndex(id) { return slots[index].id == id }
        return overflow[id] != nil
    }

    /// A copy of the lease (for tests and rare paths: it retains the name and payload).
    func lease(_ id: UInt64) -> Lease? {
        if let index = ringIndex(id) { return slots[index].id == id ? slots[index] : nil }
        return overflow[id]
    }

    /// Runs `body` on the lease in place; nil when there is none.
    @inline(__always)
    mutating func withLease<R>(_ id: UInt64, _ body: (inout Lease) -> R) -> R? {
        if let index = ringIndex(id) {
            guard slots[index].id == id else { return nil }
            return body(&slots[index])
        }
        guard let index = overflow.index(forKey: id) else { return nil }
        return body(&overflow.values[index])
    }

    /// Every live lease, in place (ring order, then the overflow).
    mutating func forEach(_ body: (inout Lease) -> Void) {
        for index in slots.indices where !slots[index].isFree { body(&slots[index]) }
        for index in overflow.indices { body(&overflow.values[index]) }
    }

    /// The ids of live leases matching `predicate`, in increasing order.
    func ids(where predicate: (Lease) -> Bool) -> [UInt64] {
        var ids: [UInt64] = []
        for lease in slots where !lease.isFree && predicate(lease) { ids.append(lease.id) }
        for lease in overflow.values where predicate(lease) { ids.append(lease.id) }
        return ids.sorted()
    }

    // MARK: Adding and removing

    /// Adds a new task, never sent; ids must increase.
    mutating func insert(
        id: UInt64, name: String, payload: [UInt8], timeLimitMilliseconds: UInt32, retries: UInt16 = 0,
        digest: TaskDigest = .zero, submittedTicks: UInt32 = 0
    ) {
        precondition(id > newest, "lease ids must increase")
        if id - base >= UInt64(slots.count) { makeRoom(for: id) }
        newest = id
        count += 1
        freshCount += 1
        let index = Int(truncatingIfNeeded: id) & mask
        slots[index].id = id
        slots[index].name = name
        slots[index].payload = payload
        slots[index].timeLimitMilliseconds = timeLimitMilliseconds
        slots[index].retries = retries
        slots[index].digest = digest
        slots[index].submittedTicks = submittedTicks
    }

    /// Grows the ring if it is crowded, else moves the leases that would block `id` to the overflow.
    private mutating func makeRoom(for id: UInt64) {
        let inRing = count - overflow.count
        while id - base >= UInt64(slots.count) && inRing * 2 > slots.count && slots.count < maximumCapacity {
            grow()
        }
        guard id - base >= UInt64(slots.count) else { return }
        let newBase = id - UInt64(slots.count) + 1
        // Past a long gap every slot is in the way, once.
        let steps = min(newBase - base, UInt64(slots.count))
        for step in 0..<steps {
            let index = Int(truncatingIfNeeded: base &+ step) & mask
            guard !slots[index].isFree else { continue }
            var moved = Lease()
            swap(&moved, &slots[index])
            overflow[moved.id] = moved
        }
        base = newBase
    }

    private mutating func grow() {
        var larger = [Lease](repeating: Lease(), count: slots.count * 2)
        let largerMask = larger.count - 1
        for index in slots.indices where !slots[index].isFree {
            var lease = Lease()
            swap(&lease, &slots[index])
            larger[Int(truncatingIfNeeded: lease.id) & largerMask] = lease
        }
        slots = larger
        mask = largerMask
    }

    /// Removes the lease and returns it, giving back its thread's credit and leaving the retry
    /// queue: the task has ended.
    mutating func remove(_ id: UInt64) -> Lease? {
        var lease: Lease
        if let index = ringIndex(id) {
            guard slots[index].id == id else { return nil }
            lease = Lease()
            swap(&lease, &slots[index])
        } else {
            guard let removed = overflow.removeValue(forKey: id) else { return nil }
            lease = removed
        }
        count -= 1
        if lease.isOut, let holder = lease.holder { credit.adjust(holder, outstanding: -1) }
        if lease.state == .queued, let position = retry.firstIndex(of: id) { retry.remove(at: position) }
        if lease.attempt == 0 { freshCount -= 1 }
        return lease
    }

    /// Removes every lease (a cancelled run), returning them in id order.
    mutating func removeAll() -> [Lease] {
        removeAll(where: { _ in true })
    }

    /// Removes the leases matching `predicate`, returning them in id order.
    mutating func removeAll(where predicate: (Lease) -> Bool) -> [Lease] {
        ids(where: predicate).compactMap { remove($0) }
    }

    // MARK: Sending

    /// The next task to send: one to send again, else a new one.
    mutating func nextToSend() -> UInt64? {
        if let id = retry.popFirst() { return id }
        while freshCount > 0 && nextFresh <= newest {
            let id = nextFresh
            nextFresh += 1
            if withLease(id, { $0.attempt == 0 && $0.state == .queued }) == true { return id }
        }
        return nil
    }

    /// A lost task sent again: since when it was lost, why, and the worker that had it.
    struct Redelivery {
        var lostSince: PoolTime
        var reason: RedeliveryReason
        var previousWorker: UInt32
    }

    enum DispatchOutcome {
        /// In the message; `redelivery` is set when this sends a lost task again.
        case added(redelivery: Redelivery?)
        /// It does not fit in this message: it waits for the next.
        case messageFull
        /// Sent too often without a result: fail it.
        case exhausted(attempts: UInt16)
        /// No such lease (it ended meanwhile).
        case gone
    }

    /// Adds task `id` to `writer` as its next attempt, sent to `peer`.
    mutating func dispatch(
        _ id: UInt64, to peer: PeerKey, into writer: inout WireFormat.MessageWriter, now: PoolTime,
        maxMessageSize: Int, maxDispatches: UInt16
    ) -> DispatchOutcome {
        var wasFresh = false
        let outcome =
            withLease(id) { lease -> DispatchOutcome in
                // Retries are sends too, but not lost ones: only the rest count towards the cap.
                guard lease.attempt &- lease.failures < maxDispatches else {
                    return .exhausted(attempts: lease.attempt)
                }
                if writer.count > 0 && writer.byteCount + lease.encodedSize > maxMessageSize { return .messageFull }
                wasFresh = lease.attempt == 0
                lease.attempt += 1
                writer.appendTask(
                    id: id, attempt: lease.attempt, timeLimitMilliseconds: lease.timeLimitMilliseconds,
                    name: lease.name, payload: lease.payload)
                lease.state = .dispatched
                lease.holder = peer
                let redelivery =
                    lease.lostSince == .zero
                    ? nil
                    : Redelivery(
                        lostSince: lease.lostSince, reason: lease.lostReason,
                        previousWorker: lease.laterWorkers.last ?? lease.firstWorker)
                if lease.firstWorker == 0 {
                    lease.firstWorker = peer.worker
                } else {
                    lease.laterWorkers.append(peer.worker)
                }
                lease.dispatchedAt = now
                lease.lostSince = .zero
                lease.lostReason = .none
                return .added(redelivery: redelivery)
            } ?? .gone
        if wasFresh { freshCount -= 1 }
        switch outcome {
        case .added: credit.adjust(peer, outstanding: 1)
        case .messageFull: retry.prepend(id)
        case .exhausted, .gone: break
        }
        return outcome
    }

    /// A message could not be sent: its tasks (`ids`, in message order) never left, so they
    /// go back to the front of the queue as if never dispatched.
    mutating func undispatch(_ ids: [UInt64], from peer: PeerKey) {
        for id in ids.reversed() {
            var fresh = false
            let reverted =
                withLease(id) { lease -> Bool in
                    guard lease.state == .dispatched, lease.holder == peer else { return false }
                    lease.state = .queued
                    lease.holder = nil
                    lease.attempt -= 1
                    fresh = lease.attempt == 0
                    if lease.laterWorkers.isEmpty { lease.firstWorker = 0 } else { lease.laterWorkers.removeLast() }
                    return true
                } ?? false
            guard reverted else { continue }
            if fresh { freshCount += 1 }
            credit.adjust(peer, outstanding: -1)
            retry.prepend(id)
        }
    }

    // MARK: Acknowledgements and losses

    /// The worker holds task `id` (attempt `attempt`, or any attempt when nil): it arrived.
    /// Returns true when this moved it from dispatched to started.
    @discardableResult
    mutating func markHeld(_ id: UInt64, attempt: UInt16?, by worker: UInt32, heartbeats: UInt64) -> Bool {
        withLease(id) { lease -> Bool in
            guard lease.state == .dispatched, let holder = lease.holder, holder.worker == worker,
                attempt.map({ $0 == lease.attempt }) ?? true
            else { return false }
            lease.state = .started
            lease.heldSinceHeartbeat = UInt32(truncatingIfNeeded: heartbeats)
            return true
        } ?? false
    }

    /// Puts a dispatched or started task back in the retry queue, returning its credit.
    /// Returns false if it was not out.
    @discardableResult
    mutating func requeue(_ id: UInt64, lostSince: PoolTime, reason: RedeliveryReason) -> Bool {
        var holder: PeerKey?
        let wasOut =
            withLease(id) { lease -> Bool in
                guard lease.isOut else { return false }
                holder = lease.holder
                lease.state = .queued
                lease.holder = nil
                lease.lostSince = lostSince
                lease.lostReason = reason
                return true
            } ?? false
        guard wasOut else { return false }
        if let holder { credit.adjust(holder, outstanding: -1) }
        retry.append(id)
        return true
    }

    /// Requeues every out lease matching `predicate`; returns how many.
    @discardableResult
    mutating func requeueAll(where predicate: (Lease) -> Bool, lostSince: PoolTime, reason: RedeliveryReason) -> Int {
        let matching = ids(where: { $0.isOut && predicate($0) })
        for id in matching { requeue(id, lostSince: lostSince, reason: reason) }
        return matching.count
    }

    /// How many leases `peer` holds (for a thread that comes back after being removed).
    func holding(_ peer: PeerKey) -> Int {
        var held = 0
        for lease in slots where !lease.isFree && lease.isOut && lease.holder == peer { held += 1 }
        for lease in overflow.values where lease.isOut && lease.holder == peer { held += 1 }
        return held
    }

    /// Adds a task link that takes tasks for its threads, holding what it already held.
    mutating func addPeer(_ key: PeerKey, _ link: TaskLinkInfo, now: PoolTime) {
        guard !credit.contains(key) else { return }
        credit.add(key, link, outstanding: holding(key), now: now)
    }

    // MARK: Retries of failed attempts

    /// When a failed task's backoff ends.
    struct RetryTimer: Comparable {
        var due: PoolTime
        var id: UInt64
        /// The lease's ``Lease/failures`` when the timer was set: a later failure sets another.
        var failures: UInt16

        static func < (lhs: RetryTimer, rhs: RetryTimer) -> Bool { (lhs.due, lhs.id) < (rhs.due, rhs.id) }
    }

    /// Whether any failed task waits out its backoff.
    var hasRetryTimers: Bool { !retryTimers.isEmpty }

    /// The soonest end of a backoff (possibly of a task that ended since: waking for it is harmless).
    var nextRetryDue: PoolTime? { retryTimers.min?.due }

    /// Charges task `id` a failed attempt, its last one having failed on `worker`, and holds it
    /// until `due`: its thread's credit is given back (the attempt is over), its deaths start
    /// again from zero, and ``releaseDueRetries(now:)`` queues it once `due` has passed.
    /// Returns the failures charged so far; nil when there is no such lease.
    @discardableResult
    mutating func holdForRetry(_ id: UInt64, failedOn worker: UInt32, until due: PoolTime) -> UInt16? {
        var holder: PeerKey?
        var wasQueued = false
        let failures =
            withLease(id) { lease -> UInt16 in
                holder = lease.isOut ? lease.holder : nil
                wasQueued = lease.state == .queued
                lease.state = .awaitingRetry
                lease.holder = nil
                lease.failures += 1
                lease.deaths = 0
                lease.failedOn = worker
                lease.lostSince = .zero
                return lease.failures
            }
        guard let failures else { return nil }
        if let holder { credit.adjust(holder, outstanding: -1) }
        // An earlier attempt's failure may come while a lost later one waits to be sent again.
        if wasQueued, let position = retry.firstIndex(of: id) { retry.remove(at: position) }
        retryTimers.insert(RetryTimer(due: due, id: id, failures: failures))
        return failures
    }

    /// Queues every task whose backoff has ended (behind tasks lost and waiting to be sent again).
    mutating func releaseDueRetries(now: PoolTime) {
        while let timer = retryTimers.min, timer.due <= now {
            retryTimers.removeMin()
            let released =
                withLease(timer.id) { lease -> Bool in
                    guard lease.state == .awaitingRetry, lease.failures == timer.failures else { return false }
                    lease.state = .queued
                    return true
                } ?? false
            if released { retry.append(timer.id) }
        }
    }

    /// The worker the next task to send again last failed on (0: none, or no such task), so
    /// dispatch can give it to another worker.
    func nextRetryAvoids() -> UInt32 {
        guard let id = retry.first else { return 0 }
        if let index = ringIndex(id) { return slots[index].id == id ? slots[index].failedOn : 0 }
        return overflow[id]?.failedOn ?? 0
    }
}
