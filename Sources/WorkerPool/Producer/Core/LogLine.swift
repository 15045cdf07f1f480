import Logging

/// A line the core wants logged; the code around it writes it to its `Logger`.
struct LogLine: Sendable, Equatable {
    var level: Logger.Level
    var message: String
}

/// Logs the first few occurrences of a repeated problem, then one line per thousand, so a
/// flood of garbage cannot drown the log; the count is always exact.
struct RateLimitedLines {
    private(set) var count: UInt64 = 0
    /// The last message logged (without its count), for the pool log's summary of these.
    private(set) var lastMessage: String?

    mutating func note(_ level: Logger.Level, _ message: @autoclosure () -> String, into lines: inout [LogLine]) {
        guard countShouldLog() else { return }
        let text = message()
        lastMessage = text
        lines.append(LogLine(level: level, message: "\(text) [\(count) so far]"))
    }

    /// Counts one occurrence; true for the first ten and then one in a thousand.
    mutating func countShouldLog() -> Bool {
        count += 1
        return count <= 10 || count % 1_000 == 0
    }
}
