/// A histogram of durations in fixed buckets, kept as plain integers in inline storage:
/// recording is a few comparisons and two additions, with no lock, clock, allocation or
/// reference count, so the core can record every task. Whoever publishes it copies it out now
/// and then and works with the difference.
struct FixedHistogram: Sendable {
    /// Upper bounds of the buckets, in nanoseconds (a last, unbounded bucket follows).
    static let bounds: [UInt64] = PoolMetricNames.durationBucketsSeconds.map { UInt64(($0 * 1e9).rounded()) }
    /// Buckets held: the bounded ones and the last; more than the bounds need is zero.
    static let capacity = 16

    /// Observations per bucket (not cumulative), the last for those above every bound.
    private(set) var counts = InlineArray<16, UInt64>(repeating: 0)
    /// The sum of the observations in each bucket, in nanoseconds.
    private(set) var sums = InlineArray<16, UInt64>(repeating: 0)
    private let bounds = InlineArray<15, UInt64> { Self.bounds[$0] }

    /// Buckets in use: one per bound and the last.
    static var bucketCount: Int { bounds.count + 1 }

    var count: UInt64 { (0..<Self.bucketCount).reduce(0) { $0 &+ counts[$1] } }
    var sumNanoseconds: UInt64 { (0..<Self.bucketCount).reduce(0) { $0 &+ sums[$1] } }

    @inline(__always)
    mutating func record(nanoseconds value: UInt64) {
        var index = 0
        while index < bounds.count && value > bounds[index] { index += 1 }
        counts[index] &+= 1
        sums[index] &+= value
    }
}
