import Foundation
import Logging

/// The tasks a worker can run, by name, each with typed `Codable` input and output.
///
/// ```swift
/// var registry = TaskRegistry.builtin
/// registry.register("greet") { (name: String, _) in "hello, \(name)" }
/// ```
public struct TaskRegistry: Sendable {
    /// The outcome of running one task: status plus JSON output or UTF-8 error message.
    public struct Outcome: Sendable {
        public var status: ResultStatus
        public var payload: [UInt8]
        /// The task was interrupted because the worker is stopping, not by anything it did: no
        /// result is sent, so the producer gives it to another worker once this one has left.
        var abandoned = false

        public init(status: ResultStatus, payload: [UInt8]) {
            self.status = status
            self.payload = payload
        }

        /// Ready for the next task of a thread: `ok`, and no bytes, but the room of the last
        /// answer kept for the next.
        mutating func reset() {
            status = .ok
            abandoned = false
            payload.removeAll(keepingCapacity: true)
        }
    }

    /// Runs one task and fills in `outcome`, which comes ``Outcome/reset()``: a handler that
    /// appends its answer to `outcome.payload` reuses the room of the thread's last answer, and
    /// allocates nothing per task. The payload is borrowed, valid only during the call (a worker's
    /// task thread hands it over in place, from the message it came in).
    typealias Handler =
        @Sendable (
            _ payload: UnsafeBufferPointer<UInt8>, _ context: TaskContext, _ outcome: inout Outcome
        ) -> Void

    /// A handler that makes a whole new outcome.
    typealias MakingHandler = @Sendable (_ payload: UnsafeBufferPointer<UInt8>, _ context: TaskContext) -> Outcome

    private var handlers: [String: Handler] = [:]
    /// Handlers that enforce a task's time limit themselves (`exec` kills its command and
    /// reports `time-limit`): the supervisor's kill of the whole process waits this much longer.
    private var timeLimitSlack: [String: UInt32] = [:]

    public init() {}

    /// The registered names, sorted.
    public var names: [String] { handlers.keys.sorted() }

    /// Registers `body` under `name`, replacing any earlier handler of that name.
    ///
    /// - Parameters:
    ///   - describe: a short human form of the input (`3 * 3`), logged at debug level as the
    ///     lecture's consumers print `Consumer-1: 3 * 3`.
    ///   - body: runs on one of the worker's task threads; throw ``TaskError`` for a clear failure.
    public mutating func register<Input: Decodable & Sendable, Output: Encodable & Sendable>(
        _ name: String,
        describe: (@Sendable (Input) -> String)? = nil,
        _ body: @escaping @Sendable (Input, TaskContext) throws -> Output
    ) {
        precondition(!name.isEmpty && name.utf8.count <= WireFormat.maxNameLength, "task names are 1-255 bytes")
        // One coder pair per task, made here rather than per call: swift-foundation's coders are
        // Sendable, and building them is a measurable part of a tiny task's cost.
        let decoder = JSONDecoder()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        timeLimitSlack[name] = nil
        handlers[name] = Self.filling { payload, context in
            let input: Input
            do {
                // The fast path for small plain payloads; Foundation (without copying the bytes
                // again) for everything else, so values and messages are Foundation's.
                input = try FastJSON.decode(Input.self, from: Array(payload), fallback: decoder)
            } catch {
                return Outcome(
                    status: .badArguments,
                    payload: Array("bad arguments for '\(name)': \(Self.explain(error))".utf8))
            }
            if context.logLevel <= .debug {
                context.logger.debug("\(context.workerName): \(describe?(input) ?? name)")
            }
            do {
                let output = try body(input, context)
                return Outcome(status: .ok, payload: try FastJSON.encode(output, fallback: encoder))
            } catch let error as TaskError {
                return Outcome(status: .failed, payload: Array(error.message.utf8))
            } catch {
                return Outcome(status: .failed, payload: Array("\(name) failed: \(error)".utf8))
            }
        }
    }

    /// Puts `fast` in front of the handler registered under `name`: it sees the raw JSON
    /// arguments first and returns the outcome, or nil to leave the task to the handler. For hot
    /// tasks whose usual arguments can be read without `Codable`; anything unusual goes on to the
    /// handler, so outcomes and error messages stay the handler's.
    public mutating func addFastPath(
        _ name: String, _ fast: @escaping @Sendable (_ payload: [UInt8], _ context: TaskContext) -> Outcome?
    ) {
        addFastPath(
            name,
            inPlace: { payload, context, outcome in
                guard let answer = fast(Array(payload), context) else { return false }
                outcome = answer
                return true
            })
    }

    /// ``addFastPath(_:_:)`` for a fast path that reads the payload in place and fills in the
    /// outcome as a ``Handler`` does (no array per task); it returns false, leaving the outcome
    /// as it came, to leave the task to the handler.
    mutating func addFastPath(
        _ name: String,
        inPlace fast:
            @escaping @Sendable (
                _ payload: UnsafeBufferPointer<UInt8>, _ context: TaskContext, _ outcome: inout Outcome
            ) -> Bool
    ) {
        guard let handler = handlers[name] else { preconditionFailure("register '\(name)' before its fast path") }
        handlers[name] = { payload, context, outcome in
            if !fast(payload, context, &outcome) { handler(payload, context, &outcome) }
        }
    }

    /// Runs the task named `name`; never throws: every problem is an ``Outcome`` with a message.
    public func run(name: String, payload: [UInt8], context: TaskContext) -> Outcome {
        guard let handler = handlers[name] else { return unknown(name) }
        var outcome = Outcome(status: .ok, payload: [])
        payload.withUnsafeBufferPointer { handler($0, context, &outcome) }
        return outcome
    }

    /// The handler registered under `name`: a task thread resolves it once per name, not per task.
    func handler(named name: String) -> Handler? { handlers[name] }

    /// Registers a handler that makes its own outcomes (statuses other than `ok` and `failed`).
    /// - Parameter timeLimitSlackMilliseconds: nonzero when the handler ends its task at the
    ///   time limit itself; the supervisor then kills the process only this much later.
    mutating func registerRaw(
        _ name: String, timeLimitSlackMilliseconds: UInt32 = 0, _ handler: @escaping MakingHandler
    ) {
        precondition(!name.isEmpty && name.utf8.count <= WireFormat.maxNameLength, "task names are 1-255 bytes")
        handlers[name] = Self.filling(handler)
        timeLimitSlack[name] = timeLimitSlackMilliseconds > 0 ? timeLimitSlackMilliseconds : nil
    }

    /// `make` as a ``Handler``: its outcome replaces the one handed in.
    private static func filling(_ make: @escaping MakingHandler) -> Handler {
        { payload, context, outcome in outcome = make(payload, context) }
    }

    /// How much later than a task's limit the supervisor kills the process, for tasks named `name`.
    func timeLimitSlack(named name: String) -> UInt32 { timeLimitSlack[name] ?? 0 }

    /// The outcome of a task whose name no handler has.
    func unknown(_ name: String) -> Outcome {
        if name == "exec" { return Outcome(status: .unknownTask, payload: Array(Self.execDisabledMessage.utf8)) }
        return Outcome(
            status: .unknownTask,
            payload: Array("unknown task '\(name)'; this worker knows: \(names.joined(separator: ", "))".utf8))
    }

    /// A one-line reason for a decoding failure, naming the field.
    static func explain(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        func path(_ context: DecodingError.Context, _ last: CodingKey? = nil) -> String {
            let keys = context.codingPath + (last.map { [$0] } ?? [])
            return keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "missing field '\(path(context, key))'"
        case .typeMismatch(let type, let context):
            let field = path(context)
            return field.isEmpty ? "expected \(Self.jsonKind(type))" : "field '\(field)' must be \(Self.jsonKind(type))"
        case .valueNotFound(let type, let context):
            return "field '\(path(context))' is null, expected \(Self.jsonKind(type))"
        case .dataCorrupted(let context):
            let field = path(context)
            let reason = (context.underlyingError.map { "\($0.localizedDescription)" }) ?? context.debugDescription
            return field.isEmpty ? "not valid JSON (\(reason))" : "field '\(field)': \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    private static func jsonKind(_ type: Any.Type) -> String {
        switch type {
        case is any BinaryInteger.Type: "an integer"
        case is any BinaryFloatingPoint.Type: "a number"
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        default: "\(type)"
        }
    }
}
