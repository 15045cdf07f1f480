/// A task between reading and its end: what to send again if its worker is lost.
struct Lease {
    enum State: Equatable {
        /// Waiting in the retry queue.
        case queued
        /// Sent to a worker thread, not yet acknowledged.
        case dispatched
        /// Acknowledged by the worker thread: in its queue or running.
        case started
    }

    var name: String
    var payload: [UInt8]
    var timeLimitMilliseconds: UInt32
    /// The input task's SHA-256 (from ``TaskFeed/Entry/digest``), carried to its outcome for the journal.
    var digest: TaskDigest = .zero
    /// Incremented on every dispatch; results and acks name the attempt they belong to.
    var attempt: UInt16 = 0
    /// Times a process died (or was killed for its time limit) while running this task.
    var deaths: UInt16 = 0
    var state: State = .queued
    var peer: PeerKey?
    var dispatchedAt: ContinuousClock.Instant = .now
    /// Heartbeats its worker had sent when it acknowledged the task: a task missing from the
    /// worker's next heartbeats (results and all) was lost in transit.
    var acknowledgedAtHeartbeat: UInt64 = 0
    /// When the task was found to need sending again, and the last sign of life of the worker
    /// that lost it; for the redelivery-delay figure.
    var lostSince: ContinuousClock.Instant?
}

extension Lease {
    enum DispatchOutcome {
        /// In the message; `lostSince` is set when this sends a lost task again.
        case added(lostSince: ContinuousClock.Instant?)
        /// It does not fit in this message: send it in the next.
        case messageFull
        /// Dispatched too often without a result: fail it.
        case exhausted(attempts: UInt16)
    }

    /// Adds this task to `writer` as its next attempt, sent to `peer`. Mutating, so callers
    /// reach it in place inside the lease table (a read would copy the name and payload).
    mutating func dispatch(
        id: UInt64, into writer: inout WireFormat.MessageWriter, to peer: PeerKey, now: ContinuousClock.Instant,
        maxMessageSize: Int
    ) -> DispatchOutcome {
        guard attempt < ProducerLoop.maxDispatches else { return .exhausted(attempts: attempt) }
        let size = TaskRecord.fixedSize + name.utf8.count + payload.count
        if writer.count > 0 && writer.byteCount + size > maxMessageSize { return .messageFull }
        attempt += 1
        writer.appendTask(
            id: id, attempt: attempt, timeLimitMilliseconds: timeLimitMilliseconds, name: name, payload: payload)
        state = .dispatched
        self.peer = peer
        dispatchedAt = now
        defer { lostSince = nil }
        return .added(lostSince: lostSince)
    }

    /// Records the worker thread's acknowledgement of `task`; returns the thread and when the
    /// task was sent, or nil for an acknowledgement of another attempt or from another worker.
    mutating func acknowledge(_ task: TaskAttempt, by sender: UInt32, heartbeats: UInt64) -> (
        PeerKey, ContinuousClock.Instant
    )? {
        guard attempt == task.attempt, state == .dispatched, let peer, peer.worker == sender else { return nil }
        state = .started
        acknowledgedAtHeartbeat = heartbeats
        return (peer, dispatchedAt)
    }
}

/// A worker thread, as the producer's ROUTER addresses it: worker id and thread index.
struct PeerKey: Hashable {
    var worker: UInt32
    var thread: UInt16

    /// The 6-byte routing id a task thread sets on its DEALER.
    var identity: [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(6)
        withUnsafeBytes(of: worker.littleEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: thread.littleEndian) { bytes.append(contentsOf: $0) }
        return bytes
    }
}

/// A worker thread's credit: it gets tasks while it holds fewer than its window, and the window
/// is sized by time from what it measured, so each thread stays a few milliseconds ahead.
struct Peer {
    let key: PeerKey
    let identity: [UInt8]
    var outstanding = 0
    /// Mean task run time, microseconds (an exponentially weighted average; starts pessimistic).
    var meanRunMicroseconds: Double = 1_000
    /// Lowest dispatch-to-acknowledgement time in this period and the last: the round trip.
    /// Acknowledgements leave the worker before the task waits in its queue, so they measure
    /// the network, not the window; a two-period minimum follows a path that changes.
    private var tripFloorCurrent = Double.infinity
    private var tripFloorPrevious = Double.infinity
    private var periodStarted = ContinuousClock.now

    init(key: PeerKey) {
        self.key = key
        self.identity = key.identity
    }

    var roundTripMicroseconds: Double {
        let floor = min(tripFloorCurrent, tripFloorPrevious)
        return floor.isFinite ? floor : 0
    }

    func window(prefetchMicroseconds: Double, maximum: Int) -> Int {
        let ahead = (prefetchMicroseconds + roundTripMicroseconds) / max(meanRunMicroseconds, 1)
        guard ahead.isFinite, ahead < Double(maximum) else { return maximum }
        return Swift.max(1, Int(ahead.rounded(.up)))
    }

    /// Learns how long a task ran.
    mutating func observe(runMicroseconds: UInt32) {
        meanRunMicroseconds += (Double(runMicroseconds) - meanRunMicroseconds) * 0.2
    }

    /// Learns how long an acknowledgement took after dispatch.
    mutating func observeAcknowledgement(after elapsed: Duration, now: ContinuousClock.Instant) {
        let micros = Double(elapsed.components.seconds) * 1e6 + Double(elapsed.components.attoseconds) / 1e12
        if now - periodStarted > .seconds(5) {
            tripFloorPrevious = tripFloorCurrent
            tripFloorCurrent = .infinity
            periodStarted = now
        }
        tripFloorCurrent = min(tripFloorCurrent, micros)
    }
}

/// The worker threads that can take tasks, in dispatch order, addressable by key. An array with
/// an index keeps the per-task updates (credit, timings) in place, without rehashing a large
/// value on every result.
struct PeerTable {
    private(set) var peers: [Peer] = []
    private var index: [PeerKey: Int] = [:]
    private var cursor = 0
    /// The last key looked up and its position: consecutive results and acks mostly come from
    /// one thread, and comparing six bytes is far cheaper than hashing them.
    private var lastKey: PeerKey?
    private var lastPosition = 0

    private mutating func position(of key: PeerKey) -> Int? {
        if key == lastKey { return lastPosition }
        guard let position = index[key] else { return nil }
        lastKey = key
        lastPosition = position
        return position
    }

    var isEmpty: Bool { peers.isEmpty }
    func contains(_ key: PeerKey) -> Bool { index[key] != nil }
    func keys(ofWorker worker: UInt32) -> [PeerKey] { peers.lazy.map(\.key).filter { $0.worker == worker } }

    /// Adds a peer that already holds `outstanding` tasks (it was removed and came back).
    mutating func add(_ key: PeerKey, outstanding: Int = 0) {
        guard index[key] == nil else { return }
        index[key] = peers.count
        lastKey = nil
        var peer = Peer(key: key)
        peer.outstanding = outstanding
        peers.append(peer)
    }

    mutating func remove(_ key: PeerKey) {
        guard let position = index.removeValue(forKey: key) else { return }
        lastKey = nil
        peers.remove(at: position)
        for later in position..<peers.count { index[peers[later].key] = later }
        cursor = 0
    }

    mutating func removeAll(ofWorker worker: UInt32) {
        for key in keys(ofWorker: worker) { remove(key) }
    }

    /// Changes what `key` holds; a peer already removed is ignored.
    mutating func adjust(_ key: PeerKey, outstanding delta: Int) {
        if let position = position(of: key) { peers[position].outstanding += delta }
    }

    mutating func resetOutstanding() {
        for position in peers.indices { peers[position].outstanding = 0 }
    }

    mutating func observe(_ key: PeerKey, runMicroseconds: UInt32) {
        if let position = position(of: key) { peers[position].observe(runMicroseconds: runMicroseconds) }
    }

    mutating func observeAcknowledgement(_ key: PeerKey, after elapsed: Duration, now: ContinuousClock.Instant) {
        if let position = position(of: key) { peers[position].observeAcknowledgement(after: elapsed, now: now) }
    }

    /// The next peer, round robin, with room for more tasks, and how many.
    mutating func nextWithCredit(prefetchMicroseconds: Double, maximum: Int) -> (peer: Peer, credit: Int)? {
        guard !peers.isEmpty else { return nil }
        for step in 0..<peers.count {
            let position = (cursor + step) % peers.count
            let peer = peers[position]
            let credit = peer.window(prefetchMicroseconds: prefetchMicroseconds, maximum: maximum) - peer.outstanding
            if credit > 0 {
                cursor = (position + 1) % peers.count
                return (peer, credit)
            }
        }
        return nil
    }
}
