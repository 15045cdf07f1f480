@testable import WorkerPool

/// SplitMix64: a small, fast generator whose whole state is one seed, so a run replays exactly.
struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func chance(_ probability: Double) -> Bool {
        probability > 0 && Double.random(in: 0..<1, using: &self) < probability
    }
    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &self) }
}

/// A min-heap of timed events; ties keep insertion order, so the schedule is deterministic.
struct EventQueue<Event> {
    private var heap: [(time: UInt64, order: UInt64, event: Event)] = []
    private var inserted: UInt64 = 0

    var isEmpty: Bool { heap.isEmpty }
    var count: Int { heap.count }
    var nextTime: UInt64? { heap.first?.time }

    mutating func push(_ event: Event, at time: UInt64) {
        inserted += 1
        heap.append((time, inserted, event))
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.before(heap[child], heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> (time: UInt64, event: Event)? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let top = heap.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count && Self.before(heap[left], heap[smallest]) { smallest = left }
            if right < heap.count && Self.before(heap[right], heap[smallest]) { smallest = right }
            guard smallest != parent else { break }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
        return (top.time, top.event)
    }

    /// Every queued event, in no particular order.
    var events: some Sequence<Event> { heap.lazy.map(\.event) }

    private static func before(
        _ a: (time: UInt64, order: UInt64, event: Event), _ b: (time: UInt64, order: UInt64, event: Event)
    ) -> Bool {
        a.time != b.time ? a.time < b.time : a.order < b.order
    }
}

/// A rule the simulation found broken, with the seed that replays it.
struct SimulationFailure: Error, CustomStringConvertible {
    var seed: UInt64
    var time: UInt64
    var rule: String
    var description: String {
        "seed \(seed) broke a rule at \(Double(time) / 1e6) ms: \(rule)  (replay: SIM_SEED=\(seed) swift test --filter Simulation)"
    }
}
