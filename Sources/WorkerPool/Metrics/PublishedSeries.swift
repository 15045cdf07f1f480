import Metrics

/// A swift-metrics counter fed from a running total: each publish adds what the total grew by.
struct PublishedCounter {
    private let counter: Counter
    private var published: UInt64 = 0

    init(_ label: String, _ dimensions: [(String, String)] = []) {
        counter = Counter(label: label, dimensions: dimensions)
        // Present from the first scrape, so a rate over a run's start sees its first increase.
        counter.increment(by: 0)
    }

    mutating func publish(_ total: UInt64) {
        guard total > published else { return }
        counter.increment(by: Int64(clamping: total - published))
        published = total
    }
}

/// Counters of one metric by one label, fed from totals indexed like `values`.
struct PublishedCounterFamily {
    private var counters: [PublishedCounter]

    init(_ label: String, dimension: String, values: [String]) {
        counters = values.map { PublishedCounter(label, [(dimension, $0)]) }
    }

    mutating func publish(_ totals: [UInt64]) {
        for index in counters.indices where index < totals.count { counters[index].publish(totals[index]) }
    }
}

/// A swift-metrics timer (a histogram in Prometheus) fed from a ``FixedHistogram``: the
/// observations each bucket gained since the last publish are recorded at that bucket's mean, so
/// a backend given the same bounds puts each in the bucket the core counted it in.
///
/// Recording is a call per observation (swift-prometheus takes a lock and walks every bucket:
/// about 650 instructions), so a publish records at most ``budget`` of them: up to that every
/// observation, beyond it each bucket its exact share (remainders carried to the next publish).
/// Quantiles and the mean stay right; `_count` then counts the sample, not the tasks.
struct PublishedHistogram {
    /// Observations recorded per publish at most (per tick: about 2,000 a second).
    static let budget: UInt64 = 512

    private let timer: Timer
    private var published = FixedHistogram()
    /// Fractions of an observation owed to each bucket by earlier scaled publishes.
    private var carried: [Double] = Array(repeating: 0, count: FixedHistogram.bucketCount)

    init(_ label: String, factory: any MetricsFactory = MetricsSystem.factory) {
        timer = Timer(label: label, dimensions: [], factory: factory)
    }

    mutating func publish(_ histogram: FixedHistogram) {
        let counts = (0..<FixedHistogram.bucketCount).map { histogram.counts[$0] &- published.counts[$0] }
        let total = counts.reduce(0, &+)
        guard total > 0 else { return }
        let scale = total > Self.budget ? Double(Self.budget) / Double(total) : 1
        for index in counts.indices where counts[index] > 0 {
            let mean = Int64(clamping: (histogram.sums[index] &- published.sums[index]) / counts[index])
            var recorded = counts[index]
            if scale < 1 {
                let owed = Double(counts[index]) * scale + carried[index]
                recorded = UInt64(owed.rounded(.down))
                carried[index] = owed - Double(recorded)
            }
            for _ in 0..<recorded { timer.recordNanoseconds(mean) }
        }
        published = histogram
    }
}
