/// A histogram of durations in fixed buckets, kept as plain integers: recording is a few
/// comparisons and two additions, with no lock, clock or allocation, so the core can record
/// every task. Whoever publishes it copies it out now and then and works with the difference.
struct FixedHistogram: Sendable, Equatable {
    /// Upper bounds of the buckets, in nanoseconds (a last, unbounded bucket follows).
    static let bounds: [UInt64] = PoolMetricNames.durationBucketsSeconds.map { UInt64(($0 * 1e9).rounded()) }

    private let bounds: [UInt64] = Self.bounds
    /// Observations per bucket (not cumulative), the last for those above every bound.
    private(set) var counts: [UInt64] = Array(repeating: 0, count: Self.bounds.count + 1)
    /// The sum of the observations in each bucket, in nanoseconds.
    private(set) var sums: [UInt64] = Array(repeating: 0, count: Self.bounds.count + 1)

    var count: UInt64 { counts.reduce(0, &+) }
    var sumNanoseconds: UInt64 { sums.reduce(0, &+) }

    @inline(__always)
    mutating func record(nanoseconds value: UInt64) {
        var index = 0
        while index < bounds.count && value > bounds[index] { index += 1 }
        counts[index] &+= 1
        sums[index] &+= value
    }
}
