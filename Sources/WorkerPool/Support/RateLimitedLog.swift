import Logging

/// Logs the first few occurrences of a repeated problem, then one line per thousand, so a
/// flood of garbage cannot drown the log; the count is always exact. The same rule as the
/// core's ``RateLimitedLines``, for code that logs directly.
struct RateLimitedLog {
    private var lines = RateLimitedLines()
    var count: UInt64 { lines.count }

    mutating func warning(_ logger: Logger, _ message: @autoclosure () -> String) {
        guard lines.countShouldLog() else { return }
        logger.warning("\(message()) [\(lines.count) so far]")
    }
}
