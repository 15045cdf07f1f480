import Logging

/// Logs the first few occurrences of a repeated problem, then one line per thousand, so a
/// flood of garbage cannot drown the log; the count is always exact.
struct RateLimitedLog {
    private(set) var count: UInt64 = 0

    mutating func warning(_ logger: Logger, _ message: @autoclosure () -> String) {
        count += 1
        if count <= 10 || count % 1_000 == 0 {
            logger.warning("\(message()) [\(count) so far]")
        }
    }
}
