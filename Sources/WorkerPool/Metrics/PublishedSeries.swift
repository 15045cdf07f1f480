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
/// observations each bucket gained since the last publish are recorded at that bucket's mean,
/// so a backend given the same bounds counts exactly what the core counted, and the sum is
/// exact to a nanosecond per bucket and publish.
struct PublishedHistogram {
    private let timer: Timer
    private var published = FixedHistogram()

    init(_ label: String) { timer = Timer(label: label) }

    mutating func publish(_ histogram: FixedHistogram) {
        for index in histogram.counts.indices {
            let count = histogram.counts[index] &- published.counts[index]
            guard count > 0 else { continue }
            let mean = Int64(clamping: (histogram.sums[index] &- published.sums[index]) / count)
            for _ in 0..<count { timer.recordNanoseconds(mean) }
        }
        published = histogram
    }
}
