import CPoolSystem

/// A point on a monotonic clock, in nanoseconds. The producer's core never reads a clock: the
/// caller passes the time in, so a simulation can drive it through hours in milliseconds.
public struct PoolTime: Comparable, Hashable, Sendable {
    public var nanoseconds: UInt64

    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    public static let zero = PoolTime(nanoseconds: 0)

    /// Now on CLOCK_MONOTONIC: for the code that does I/O, never for the core.
    public static var now: PoolTime { PoolTime(nanoseconds: cpool_monotonic_nanoseconds()) }

    public static func milliseconds(_ value: Int) -> PoolTime { PoolTime(nanoseconds: UInt64(value) * 1_000_000) }

    public static func < (lhs: PoolTime, rhs: PoolTime) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    /// `self` moved later by `interval` (a length of time written as a `PoolTime`).
    public static func + (lhs: PoolTime, rhs: PoolTime) -> PoolTime {
        PoolTime(nanoseconds: lhs.nanoseconds &+ rhs.nanoseconds)
    }

    /// Time from `earlier` to `self`; zero if `earlier` is later.
    public func since(_ earlier: PoolTime) -> PoolTime {
        PoolTime(nanoseconds: nanoseconds > earlier.nanoseconds ? nanoseconds - earlier.nanoseconds : 0)
    }

    public var microseconds: Double { Double(nanoseconds) / 1_000 }
    public var seconds: Double { Double(nanoseconds) / 1e9 }
}
