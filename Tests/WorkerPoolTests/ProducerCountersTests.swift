import Metrics
import MetricsTestKit
import Testing

@testable import WorkerPool

/// What the core counts for metrics, driven by hand like ``ProducerCoreTests``.
@Suite("Producer counters")
struct ProducerCountersTests {
    typealias Harness = ProducerCoreTests.Harness

    @Test("a run's counts: dispatched, ended by status, workers joined and lost, tasks sent again by why")
    func countsFollowTheRun() {
        var pool = Harness()
        pool.join(1, supervisor: 50)
        pool.join(2, supervisor: 60)
        pool.input(6)
        let sent = pool.dispatch()
        #expect(pool.core.counters.dispatched == 6)
        #expect(pool.core.counters.workersJoined == 2 && pool.core.counters.threadsJoined == 2)
        let first = sent.filter { $0.worker == 1 }.flatMap(\.ids)
        let second = sent.filter { $0.worker == 2 }.flatMap(\.ids)
        for id in first { pool.result(id, from: 1) }
        #expect(pool.core.counters.ended[Int(ResultStatus.ok.rawValue)] == UInt64(first.count))
        let loss = WorkerLoss(process: 2, reason: .died, detail: 9, signalled: true, running: [])
        pool.deliver(WireFormat.encode(loss, supervisor: 60))
        let counters = pool.core.counters
        #expect(counters.workersLost[ProducerCounters.LossReason.died.rawValue] == 1)
        #expect(counters.threadsLost == 1)
        #expect(counters.requeued[ProducerCounters.RequeueReason.processDied.rawValue] == UInt64(second.count))
        #expect(pool.dispatch().flatMap(\.ids).sorted() == second.sorted())
        #expect(pool.core.counters.dispatched == 6 + UInt64(second.count), "every attempt counts")
        let snapshot = pool.core.metricsSnapshot()
        #expect(snapshot.read == 6 && snapshot.inFlight == second.count && snapshot.waiting == 0)
        #expect(snapshot.workers == 1 && snapshot.threads == 1)
    }

    @Test("the latency histogram measures from reading a task to its result, in time passed in")
    func latencyFromReadingToResult() {
        var pool = Harness()
        pool.join(1)
        pool.now = .milliseconds(100)
        pool.input(3)
        let sent = pool.dispatch().flatMap(\.ids)
        pool.now = .milliseconds(107)
        for id in sent { pool.result(id, from: 1) }
        let latency = pool.core.counters.latency
        #expect(latency.count == 3)
        // Stored in 65.536 µs units: 7 ms to within one.
        #expect(abs(Int(latency.sumNanoseconds) - 3 * 7_000_000) <= 3 * 65_536, "\(latency.sumNanoseconds)")
        // 7 ms is above the 5 ms bound and within the 10 ms one.
        let tenMilliseconds = FixedHistogram.bounds.firstIndex(of: 10_000_000)
        #expect(tenMilliseconds.map { latency.counts[$0] } == 3)
    }

    @Test("a value on a bound belongs to that bucket; one above every bound to the last")
    func bucketBounds() {
        var histogram = FixedHistogram()
        histogram.record(nanoseconds: FixedHistogram.bounds[0])
        histogram.record(nanoseconds: FixedHistogram.bounds[0] + 1)
        histogram.record(nanoseconds: FixedHistogram.bounds.last! + 1)
        let last = FixedHistogram.bucketCount - 1
        #expect(histogram.counts[0] == 1 && histogram.counts[1] == 1 && histogram.counts[last] == 1)
        #expect(FixedHistogram.bucketCount <= FixedHistogram.capacity)
        #expect(histogram.count == 3)
    }

    @Test("a published histogram records every observation up to its budget, then each bucket's exact share")
    func publishedHistogramBudget() throws {
        let metrics = TestMetrics()
        var published = PublishedHistogram("latency", factory: metrics)
        var histogram = FixedHistogram()
        for _ in 0..<100 { histogram.record(nanoseconds: 2_000) }
        published.publish(histogram)
        let timer = try metrics.expectTimer("latency")
        #expect(timer.values.count == 100 && timer.values.allSatisfy { $0 == 2_000 }, "under budget: all of them")
        // Ten times the budget, a quarter of it slow: the sample keeps the quarter.
        let many = Int(PublishedHistogram.budget) * 10
        for index in 0..<many { histogram.record(nanoseconds: index % 4 == 0 ? 2_000_000_000 : 3_000) }
        published.publish(histogram)
        let sample = timer.values.dropFirst(100)
        #expect(UInt64(sample.count) <= PublishedHistogram.budget && sample.count >= Int(PublishedHistogram.budget) - 2)
        let slow = sample.filter { $0 == 2_000_000_000 }.count
        #expect(abs(slow * 4 - sample.count) <= 4, "\(slow) slow of \(sample.count)")
        #expect(sample.allSatisfy { $0 == 2_000_000_000 || $0 == 3_000 }, "each at its bucket's mean")
    }
}
