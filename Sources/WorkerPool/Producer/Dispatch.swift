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
    /// Incremented on every dispatch; results and acks name the attempt they belong to.
    var attempt: UInt16 = 0
    /// Times a process died (or was killed for its time limit) while running this task.
    var deaths: UInt16 = 0
    var state: State = .queued
    var peer: PeerKey?
    var dispatchedAt: ContinuousClock.Instant = .now
    /// When the task was found to need sending again, and the last sign of life of the worker
    /// that lost it; for the redelivery-delay figure.
    var lostSince: ContinuousClock.Instant?
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
        return Swift.max(1, Swift.min(maximum, Int(ahead.rounded(.up))))
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
