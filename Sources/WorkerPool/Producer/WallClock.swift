import Foundation

/// Maps the monotonic ``PoolTime`` the core keeps to wall-clock time, from one reading of both.
struct WallClock: Sendable {
    let monotonic: PoolTime
    let realtimeNanoseconds: Int64

    init() {
        monotonic = .now
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        realtimeNanoseconds = Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }

    init(monotonic: PoolTime, realtimeNanoseconds: Int64) {
        self.monotonic = monotonic
        self.realtimeNanoseconds = realtimeNanoseconds
    }

    /// `time` as UTC ISO 8601 with milliseconds: `2025-06-01T03:12:45.120Z`.
    func iso8601(_ time: PoolTime) -> String {
        let offset = Int64(bitPattern: time.nanoseconds &- monotonic.nanoseconds)
        let wall = realtimeNanoseconds + offset
        var seconds = time_t(wall / 1_000_000_000)
        let milliseconds = Int((wall % 1_000_000_000) / 1_000_000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
            Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), milliseconds)
    }
}
