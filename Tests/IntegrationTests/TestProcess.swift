import Foundation
import Testing
import WorkerPool
import ZeroMQ

/// A real `producer` or `worker` process started by a test, with its stdout and stderr in
/// files. `stop()` (called from `defer` in every test) ends it even when the test failed.
final class TestProcess: @unchecked Sendable {
    // @unchecked Sendable: `process` is only touched from the test's own task; the exit
    // semaphore is thread-safe.
    let process = Process()
    let name: String
    let stdoutURL: URL
    let stderrURL: URL
    private let exited = DispatchSemaphore(value: 0)

    static let binDirectory: URL = {
        if let path = ProcessInfo.processInfo.environment["WORKER_POOL_BIN"] {
            return URL(fileURLWithPath: path)
        }
        // The test bundle is built beside the executables it depends on.
        let candidates = [
            Bundle.main.bundleURL, URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent(".build/debug"),
        ]
        return candidates.first {
            FileManager.default.isExecutableFile(atPath: $0.appendingPathComponent("producer").path)
        } ?? candidates[2]
    }()

    /// - Parameter executable: a binary of this package by name, or any program by absolute path.
    init(_ executable: String, _ arguments: [String], in directory: URL, stdin: URL? = nil) throws {
        name = URL(fileURLWithPath: executable).lastPathComponent
        let tag = "\(name)-\(UUID().uuidString.prefix(8))"
        stdoutURL = directory.appendingPathComponent("\(tag).out")
        stderrURL = directory.appendingPathComponent("\(tag).err")
        _ = FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        process.executableURL =
            executable.hasPrefix("/")
            ? URL(fileURLWithPath: executable) : Self.binDirectory.appendingPathComponent(executable)
        process.arguments = arguments
        process.standardOutput = try FileHandle(forWritingTo: stdoutURL)
        process.standardError = try FileHandle(forWritingTo: stderrURL)
        process.standardInput = try stdin.map { try FileHandle(forReadingFrom: $0) } ?? FileHandle.nullDevice
        let exited = self.exited
        process.terminationHandler = { _ in exited.signal() }
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }
    var stdout: String { (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }

    /// Waits for the process to exit and returns its exit code; nil on timeout, after which the
    /// process is stopped unless `killOnTimeout` is false.
    func waitForExit(timeout: Double = 60, killOnTimeout: Bool = true) -> Int32? {
        guard exited.wait(timeout: .now() + timeout) == .success else {
            if killOnTimeout { stop() }
            return nil
        }
        exited.signal()
        return process.terminationStatus
    }

    /// Waits until stdout holds at least `lines` lines (results arrive there).
    func waitForStdout(lines: Int, timeout: Double = 60) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while Date() < deadline {
            if stdout.utf8.count(where: { $0 == UInt8(ascii: "\n") }) >= lines { return true }
            if exited.wait(timeout: .now() + 0.02) == .success {
                exited.signal()
                break
            }
        }
        return stdout.utf8.count(where: { $0 == UInt8(ascii: "\n") }) >= lines
    }

    /// Waits until stderr contains `text` (the process announces what it did there).
    func waitForStderr(containing text: String, timeout: Double = 30) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while Date() < deadline {
            if stderr.contains(text) { return true }
            if exited.wait(timeout: .now() + 0.02) == .success {
                exited.signal()
                return stderr.contains(text)
            }
        }
        return false
    }

    /// Ends the process and its children if it is still running: SIGTERM, then SIGKILL.
    func stop() {
        guard process.isRunning else { return }
        kill(pid, SIGTERM)
        if exited.wait(timeout: .now() + 10) == .success {
            exited.signal()
            return
        }
        kill(pid, SIGKILL)
        _ = exited.wait(timeout: .now() + 5)
        exited.signal()
    }
}

/// A fresh directory for one test's files and ipc endpoints, removed afterwards.
func makeTemporaryDirectory() throws -> URL {
    // ipc:// paths must stay short (108 bytes on Linux), so not under a long TMPDIR.
    let url = URL(fileURLWithPath: "/tmp/zwp-\(UUID().uuidString.prefix(12))")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Writes `lines` (one task each) to `url` as a JSON-lines file.
func writeLines(_ lines: [String], to url: URL) throws {
    try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
}

/// Writes `lines` as `tasks.jsonl` in `directory` and returns its URL (a producer's `--input`).
func writeTaskFile(_ lines: [String], in directory: URL) throws -> URL {
    let url = directory.appendingPathComponent("tasks.jsonl")
    try writeLines(lines, to: url)
    return url
}

/// Whether a process with this pid still exists (zombies included).
func processExists(_ pid: Int32) -> Bool {
    kill(pid, 0) == 0 || errno == EPERM
}

/// One line of `producer --output jsonl`.
struct OutcomeLine: Decodable {
    var id: UInt64
    var task: String
    var status: String
    var result: JSONValue?
    var error: String?
    var worker: String?
    var host: String?
    var pid: Int32?
    /// Present when the task took more than one attempt (retries).
    var attempts: Int?
    /// Present when it was sent more often than its attempts (lost work sent again).
    var deliveries: Int?
}

enum JSONValue: Decodable, Equatable {
    case string(String), number(Double), bool(Bool), object([String: JSONValue]), array([JSONValue]), null

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    subscript(key: String) -> JSONValue? {
        if case .object(let fields) = self { return fields[key] }
        return nil
    }
}

func parseOutcomes(_ text: String) throws -> [OutcomeLine] {
    try text.split(separator: "\n").map { try JSONDecoder().decode(OutcomeLine.self, from: Data($0.utf8)) }
}

/// The outcome records of a `--journal` file (without its header, its input checkpoints, and a
/// last line torn by a kill).
func journalOutcomes(_ url: URL) throws -> [OutcomeLine] {
    let text = try String(contentsOf: url, encoding: .utf8)
    let complete = text.hasSuffix("\n") ? Substring(text) : text[..<(text.lastIndex(of: "\n") ?? text.startIndex)]
    let records = complete.split(separator: "\n").filter { $0.hasPrefix("{\"id\":") }
    return try parseOutcomes(records.joined(separator: "\n"))
}

/// Raw sockets bound where a producer binds, for tests that play the producer to a real worker.
/// Receives time out after 20 s so a test fails instead of hanging.
struct FakeProducer {
    let context: Context
    let tasks: Socket
    let results: Socket
    let publisher: Socket

    init(endpoints: PoolEndpoints) throws {
        context = try Context()
        tasks = try Socket(context, .router)
        try tasks.setReceiveTimeout(milliseconds: 20_000)
        try tasks.bind(endpoints.tasks)
        results = try Socket(context, .pull)
        try results.setReceiveTimeout(milliseconds: 20_000)
        try results.bind(endpoints.results)
        publisher = try Socket(context, .xpub)
        try publisher.setXPubVerbose(true)
        try publisher.setReceiveTimeout(milliseconds: 20_000)
        try publisher.bind(endpoints.events)
    }
}
