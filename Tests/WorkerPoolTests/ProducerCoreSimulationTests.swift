import Foundation
import Testing

@testable import WorkerPool

/// Deterministic simulation of the producer's core: every seed builds its own world (workers,
/// fault rates, task lengths) and plays it against the real `ProducerCore`, checking its rules
/// after every event. `SIM_SEEDS=N` runs more seeds, `SIM_SEED=S` replays one.
@Suite("Producer core simulation")
struct ProducerCoreSimulationTests {
    static var seeds: [UInt64] {
        let environment = ProcessInfo.processInfo.environment
        if let seed = environment["SIM_SEED"].flatMap(UInt64.init) { return [seed] }
        let count = environment["SIM_SEEDS"].flatMap(Int.init) ?? 1_000
        let first = environment["SIM_FIRST_SEED"].flatMap(UInt64.init) ?? 1
        return (0..<UInt64(count)).map { first + $0 }
    }

    @Test("every seed: each task ends exactly once, by a worker it was sent to, and no task is held by nobody for long")
    func seeds() throws {
        let started = ContinuousClock.now
        var steps = 0
        var faults: [String: Int] = [:]
        var forged = 0
        for seed in Self.seeds {
            let simulation = PoolSimulation(seed: seed)
            do {
                try simulation.run()
            } catch let failure as SimulationFailure {
                Issue.record("\(failure)")
                return
            }
            steps += simulation.steps
            forged += simulation.forgedSent
            faults.merge(simulation.faultsInjected, uniquingKeysWith: +)
        }
        let elapsed = started.duration(to: .now)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print(
            "simulation: \(Self.seeds.count) seeds, \(steps) steps in \(String(format: "%.1f", seconds)) s "
                + "(\(Int(Double(steps) / max(seconds, 0.001))) steps/s), \(forged) forged results sent, none taken; faults: "
                + faults.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        if Self.seeds.count >= 100 {
            #expect(faults["reported deaths", default: 0] > 0 && faults["producer restarts", default: 0] > 0)
            #expect(faults["retries charged", default: 0] > 0)
        }
    }

    @Test("a failing seed replays exactly: the same seed gives the same run")
    func replays() throws {
        let first = PoolSimulation(seed: 42)
        try first.run()
        let second = PoolSimulation(seed: 42)
        try second.run()
        #expect(first.steps == second.steps && first.now == second.now)
        #expect(first.journal.keys.sorted() == second.journal.keys.sorted())
    }
}
