import Foundation
import Logging

/// Writes `[INFO/Worker-1] message` lines to stderr, like Python's `multiprocessing.log_to_stderr`.
///
/// The application installs it once (`LoggingSystem.bootstrap`); libraries only take a `Logger`.
public struct ProcessLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public let processName: String
    /// Where each line goes instead of stderr (a live view that keeps itself below the log).
    private let output: (@Sendable (UnsafeRawBufferPointer) -> Void)?

    /// - Parameter output: receives each whole line instead of stderr; nil writes to stderr.
    public init(
        processName: String, logLevel: Logger.Level = .info,
        output: (@Sendable (UnsafeRawBufferPointer) -> Void)? = nil
    ) {
        self.processName = processName
        self.logLevel = logLevel
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = "[\(Self.levelName(event.level))/\(processName)] \(event.message)"
        if let error = event.error { line += ": \(error)" }
        let merged = event.metadata.map { metadata.merging($0) { $1 } } ?? metadata
        if !merged.isEmpty {
            line += " " + merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        }
        line += "\n"
        // One write(2) per line, so lines from several threads and processes never interleave.
        var bytes = Array(line.utf8)
        if let output { return bytes.withUnsafeBytes(output) }
        bytes.withUnsafeMutableBytes { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }

    static func levelName(_ level: Logger.Level) -> String {
        switch level {
        case .trace: "TRACE"
        case .debug: "DEBUG"
        case .info: "INFO"
        case .notice: "NOTICE"
        case .warning: "WARNING"
        case .error: "ERROR"
        case .critical: "CRITICAL"
        }
    }
}
