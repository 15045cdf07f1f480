/// A worker process's task link (its DEALER, feeding some of its threads), as the producer's
/// ROUTER addresses it: worker id and link index.
struct PeerKey: Hashable, Sendable {
    var worker: UInt32
    var link: UInt16

    /// The 6-byte routing id a task link sets on its DEALER.
    var identity: [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(6)
        withUnsafeBytes(of: worker.littleEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: link.littleEndian) { bytes.append(contentsOf: $0) }
        return bytes
    }

    /// Whether `bytes` is this key's routing id, without building one.
    func isIdentity(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count == 6 && bytes.loadUnaligned(as: UInt32.self) == worker.littleEndian
            && bytes.loadUnaligned(fromByteOffset: 4, as: UInt16.self) == link.littleEndian
    }
}

/// A task link's credit: it gets tasks while it holds fewer than its window, and the window is
/// sized by time from what it measured, so each of its threads stays a few milliseconds ahead.
struct Peer {
    let key: PeerKey
    let identity: [UInt8]
    /// The task threads behind this link: its window is theirs together.
    let capacity: Int
    /// How long the link may hold a result before sending it (with others).
    let resultDelayMicroseconds: Double
    /// Tasks sent to this thread and not yet ended or taken back.
    var outstanding = 0
    /// Mean task run time, microseconds (an exponentially weighted average; starts pessimistic).
    var meanRunMicroseconds: Double = 1_000
    /// Lowest round trip (dispatch to result, less the task's queue wait and run time) in this
    /// period and the last: a two-period minimum follows a path that changes.
    private var tripFloorCurrent = Double.infinity
    private var tripFloorPrevious = Double.infinity
    private var periodStarted: PoolTime

    init(key: PeerKey, _ link: TaskLinkInfo, now: PoolTime) {
        self.key = key
        self.identity = key.identity
        self.capacity = max(1, Int(link.capacity))
        self.resultDelayMicroseconds = Double(link.resultDelayMicroseconds)
        self.periodStarted = now
    }

    var roundTripMicroseconds: Double {
        let floor = min(tripFloorCurrent, tripFloorPrevious)
        return floor.isFinite ? floor : 0
    }

    /// Tasks this link may hold: one running on each of its threads, plus what they run in
    /// `prefetch + round trip + result delay` (at least one more for the link), at most `maximum`
    /// a thread. A link that holds results to send them together is sent enough to keep its
    /// threads busy while their results wait.
    func window(prefetchMicroseconds: Double, maximum: Int) -> Int {
        let ahead =
            Double(capacity) * (prefetchMicroseconds + roundTripMicroseconds + resultDelayMicroseconds)
            / max(meanRunMicroseconds, 1)
        let limit = maximum * capacity
        guard ahead.isFinite, ahead < Double(limit) else { return limit }
        return Swift.min(limit, capacity + Swift.max(1, Int(ahead.rounded(.up))))
    }

    /// Learns how long a task ran, and the round trip around it.
    mutating func observe(runMicroseconds: UInt32, tripMicroseconds: Double?, now: PoolTime) {
        meanRunMicroseconds += (Double(runMicroseconds) - meanRunMicroseconds) * 0.2
        guard let trip = tripMicroseconds else { return }
        if now.since(periodStarted) > .milliseconds(5_000) {
            tripFloorPrevious = tripFloorCurrent
            tripFloorCurrent = .infinity
            periodStarted = now
        }
        tripFloorCurrent = min(tripFloorCurrent, trip)
    }
}

/// The task links that can take tasks, in dispatch order, addressable by key. An array with
/// an index keeps the per-task updates (credit, timings) in place, without rehashing a large
/// value on every result. Only ``LeaseTable`` changes `outstanding`, so credit always equals the
/// leases a thread holds.
struct CreditTable {
    private(set) var peers: [Peer] = []
    private var index: [PeerKey: Int] = [:]
    private var cursor = 0
    /// The last key looked up and its position: consecutive results mostly come from one
    /// thread, and comparing six bytes is far cheaper than hashing them.
    private var lastKey: PeerKey?
    private var lastPosition = 0

    mutating func position(of key: PeerKey) -> Int? {
        if key == lastKey { return lastPosition }
        guard let position = index[key] else { return nil }
        lastKey = key
        lastPosition = position
        return position
    }

    var count: Int { peers.count }
    /// Task threads behind all links.
    private(set) var capacity = 0
    func contains(_ key: PeerKey) -> Bool { index[key] != nil }
    func keys(ofWorker worker: UInt32) -> [PeerKey] { peers.lazy.map(\.key).filter { $0.worker == worker } }

    /// Adds a peer that already holds `outstanding` tasks (it was removed and came back).
    mutating func add(_ key: PeerKey, _ link: TaskLinkInfo, outstanding: Int, now: PoolTime) {
        guard index[key] == nil else { return }
        index[key] = peers.count
        lastKey = nil
        var peer = Peer(key: key, link, now: now)
        self.capacity += peer.capacity
        peer.outstanding = outstanding
        peers.append(peer)
    }

    mutating func remove(_ key: PeerKey) {
        guard let position = index.removeValue(forKey: key) else { return }
        lastKey = nil
        capacity -= peers[position].capacity
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

    mutating func observe(_ key: PeerKey, runMicroseconds: UInt32, tripMicroseconds: Double?, now: PoolTime) {
        if let position = position(of: key) {
            peers[position].observe(runMicroseconds: runMicroseconds, tripMicroseconds: tripMicroseconds, now: now)
        }
    }

    /// The next peer, round robin, with room for more tasks, and how many.
    mutating func nextWithCredit(prefetchMicroseconds: Double, maximum: Int) -> (position: Int, credit: Int)? {
        guard !peers.isEmpty else { return nil }
        for step in 0..<peers.count {
            let position = (cursor + step) % peers.count
            let peer = peers[position]
            let credit = peer.window(prefetchMicroseconds: prefetchMicroseconds, maximum: maximum) - peer.outstanding
            if credit > 0 {
                cursor = (position + 1) % peers.count
                return (position, credit)
            }
        }
        return nil
    }
}
