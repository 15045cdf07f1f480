import Foundation

/// Named boolean events with `wait(timeout)`, shared by the threads of one process.
///
/// `@unchecked Sendable`: every stored property is read and written only while `condition`
/// is locked, and waiters are woken with `broadcast()` on each change.
final class EventTable: @unchecked Sendable {
    private let condition = NSCondition()
    private var names: Set<String> = []
    private var sequence: UInt64 = 0
    private var epoch: UInt32 = 0
    private var shutdown = false
    private var synchronized = false
    private var interrupted = false

    func isSet(_ name: String) -> Bool { locked { names.contains(name) } }

    var isShutdown: Bool { locked { shutdown } }

    /// Whether the producer's state has arrived at least once (always true on the producer).
    var isSynchronized: Bool { locked { synchronized } }

    /// Blocks until `name` is set or `timeout` seconds pass (`nil`: forever); returns whether it is set.
    func wait(_ name: String, timeout: Double?) -> Bool {
        // Beyond a year is "forever"; a huge timeout must not overflow the condition's clock.
        let deadline = timeout.flatMap { $0 < 31_536_000 ? Date(timeIntervalSinceNow: max(0, $0)) : nil }
        condition.lock()
        defer { condition.unlock() }
        while !names.contains(name) && !interrupted {
            if let deadline {
                if !condition.wait(until: deadline) { return names.contains(name) }
            } else {
                condition.wait()
            }
        }
        return true
    }

    /// Changes the state locally; returns the new snapshot.
    func change(_ body: (inout Set<String>, inout Bool) -> Void) {
        locked {
            body(&names, &shutdown)
            sequence += 1
            synchronized = true
            condition.broadcast()
        }
    }

    /// Sets (or clears) `name` unless the table already holds ``EventTable/maxEvents`` names;
    /// returns whether the request was within limits.
    @discardableResult
    func apply(_ request: EventRequest) -> Bool {
        locked {
            switch request.operation {
            case .set:
                guard names.contains(request.name) || names.count < Self.maxEvents else { return false }
                names.insert(request.name)
            case .clear:
                names.remove(request.name)
            }
            sequence += 1
            synchronized = true
            condition.broadcast()
            return true
        }
    }

    /// At most this many events are set at once, so a snapshot always fits one message.
    static let maxEvents = 4_096

    /// Wakes every waiter for good: `wait` returns the current state from now on (the worker
    /// is leaving and no task may block that).
    func interruptWaits() {
        locked {
            interrupted = true
            condition.broadcast()
        }
    }

    /// Adopts a snapshot from the producer unless it is older than the one held. Returns
    /// whether it was adopted.
    @discardableResult
    func adopt(_ snapshot: EventSnapshot) -> Bool {
        locked {
            // A snapshot from another run (a restarted producer) replaces everything.
            guard !synchronized || snapshot.epoch != epoch || snapshot.sequence >= sequence else { return false }
            names = Set(snapshot.setEvents)
            sequence = snapshot.sequence
            epoch = snapshot.epoch
            shutdown = snapshot.shutdown
            synchronized = true
            condition.broadcast()
            return true
        }
    }

    func snapshot() -> EventSnapshot {
        locked { EventSnapshot(epoch: epoch, sequence: sequence, shutdown: shutdown, setEvents: names.sorted()) }
    }

    /// The run id of the producer whose state this is (set by ``adopt(_:)`` or ``setEpoch(_:)``).
    var currentEpoch: UInt32 { locked { epoch } }

    /// For the producer: stamps its own run id on the snapshots it makes.
    func setEpoch(_ value: UInt32) { locked { epoch = value } }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        condition.lock()
        defer { condition.unlock() }
        return try body()
    }
}
