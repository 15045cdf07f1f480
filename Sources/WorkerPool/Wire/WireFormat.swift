/// The bytes producer and workers exchange.
///
/// Every message is **one frame**: an 8-byte header followed by `count` records of the
/// header's kind, all integers little-endian.
///
/// ```
/// header  | version u8 | kind u8 | count u16 | sender u32 |
/// task    | id u64 | attempt u16 | name length u8 | payload length u32 | name | payload |
/// result  | id u64 | attempt u16 | status u8 | run time µs u32 | payload length u32 | payload |
/// ```
///
/// One frame rather than a header frame plus a payload frame: libzmq handles a frame of up to
/// 33 bytes without allocating, and several records per frame give batching on the same format.
/// `sender` is the worker's random 32-bit id on worker messages (0 from the producer).
public enum WireFormat {
    public static let version: UInt8 = 1
    public static let headerSize = 8
    public static let maxNameLength = 255
    /// Default limit for one message, enforced by the sender and, via `ZMQ_MAXMSGSIZE`, by the receiver.
    public static let defaultMaxMessageSize = 16 << 20
}

/// What a message carries; the socket it travels on is fixed by the kind.
public enum MessageKind: UInt8, Sendable, CustomStringConvertible {
    // producer → worker, tasks socket
    case tasks = 1
    // worker → producer, results socket
    case results = 2
    case hello = 3
    case goodbye = 4
    case eventRequest = 5
    // producer → workers, events socket
    case eventState = 6
    case released = 7

    public var description: String {
        switch self {
        case .tasks: "tasks"
        case .results: "results"
        case .hello: "hello"
        case .goodbye: "goodbye"
        case .eventRequest: "event-request"
        case .eventState: "event-state"
        case .released: "released"
        }
    }
}

public struct MessageHeader: Sendable, Equatable {
    public var kind: MessageKind
    public var count: UInt16
    public var sender: UInt32

    public init(kind: MessageKind, count: UInt16, sender: UInt32) {
        self.kind = kind
        self.count = count
        self.sender = sender
    }

    static func read(from reader: inout ByteReader) throws(WireError) -> MessageHeader {
        guard reader.remaining > 0 else { throw .emptyMessage }
        let version = try reader.read(UInt8.self, "version")
        guard version == WireFormat.version else { throw .unsupportedVersion(version) }
        let rawKind = try reader.read(UInt8.self, "kind")
        guard let kind = MessageKind(rawValue: rawKind) else { throw .unknownKind(rawKind) }
        let count = try reader.read(UInt16.self, "record count")
        let sender = try reader.read(UInt32.self, "sender")
        return MessageHeader(kind: kind, count: count, sender: sender)
    }

    /// Reads just the header of `bytes`.
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(WireError) -> MessageHeader {
        var reader = ByteReader(bytes)
        return try read(from: &reader)
    }
}

/// One unit of work: the registered task's name and its JSON arguments.
public struct TaskRecord: Sendable, Equatable {
    public var id: UInt64
    public var attempt: UInt16
    public var name: String
    public var payload: [UInt8]

    public init(id: UInt64, attempt: UInt16 = 1, name: String, payload: [UInt8]) {
        self.id = id
        self.attempt = attempt
        self.name = name
        self.payload = payload
    }

    /// Bytes of a task record before its name and payload.
    public static let fixedSize = 8 + 2 + 1 + 4
    var encodedSize: Int { Self.fixedSize + name.utf8.count + payload.count }
}

/// How a task ended.
public enum ResultStatus: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case ok = 0
    /// The handler threw.
    case failed = 1
    /// The arguments did not decode as the task's input.
    case badArguments = 2
    /// No handler is registered under the name on this worker.
    case unknownTask = 3
    /// The task record could not be decoded.
    case malformed = 4
    /// The task or its result exceeded the message size limit.
    case tooLarge = 5
    /// The producer could not turn the input line into a task.
    case badInput = 6
    /// The run was interrupted before the task ended.
    case cancelled = 7

    public var description: String {
        switch self {
        case .ok: "ok"
        case .failed: "failed"
        case .badArguments: "bad-arguments"
        case .unknownTask: "unknown-task"
        case .malformed: "malformed"
        case .tooLarge: "too-large"
        case .badInput: "bad-input"
        case .cancelled: "cancelled"
        }
    }
}

/// A task's outcome: the output's JSON on success, a UTF-8 error message otherwise.
public struct ResultRecord: Sendable, Equatable {
    public var id: UInt64
    public var attempt: UInt16
    public var status: ResultStatus
    public var runMicroseconds: UInt32
    public var payload: [UInt8]

    public init(id: UInt64, attempt: UInt16, status: ResultStatus, runMicroseconds: UInt32 = 0, payload: [UInt8]) {
        self.id = id
        self.attempt = attempt
        self.status = status
        self.runMicroseconds = runMicroseconds
        self.payload = payload
    }

    /// Bytes of a result record before its payload.
    public static let fixedSize = 8 + 2 + 1 + 4 + 4
    var encodedSize: Int { Self.fixedSize + payload.count }

    /// The payload read as an error message (for any status but `.ok`).
    public var message: String { String(decoding: payload, as: UTF8.self) }
}

/// A worker process introducing itself; re-sent periodically so a restarted producer learns it too.
public struct WorkerHello: Sendable, Equatable {
    public var pid: UInt32
    public var threads: UInt16
    public var name: String
    public var host: String

    public init(pid: UInt32, threads: UInt16, name: String, host: String) {
        self.pid = pid
        self.threads = threads
        self.name = name
        self.host = host
    }
}

/// A worker leaving: how many results it sent, so the producer can release it once all arrived.
public struct WorkerGoodbye: Sendable, Equatable {
    public var resultsSent: UInt64
    public init(resultsSent: UInt64) { self.resultsSent = resultsSent }
}

/// A worker asking the producer to set or clear an event for everyone.
public struct EventRequest: Sendable, Equatable {
    public enum Operation: UInt8, Sendable { case set = 1, clear = 2 }
    public var operation: Operation
    public var name: String
    public init(_ operation: Operation, _ name: String) {
        self.operation = operation
        self.name = name
    }
}

/// The producer's whole event state, broadcast on change, to each new subscriber, and periodically.
public struct EventSnapshot: Sendable, Equatable {
    /// Increases with every change, so a worker ignores anything older than what it has.
    public var sequence: UInt64
    public var shutdown: Bool
    public var setEvents: [String]

    public init(sequence: UInt64, shutdown: Bool, setEvents: [String]) {
        self.sequence = sequence
        self.shutdown = shutdown
        self.setEvents = setEvents
    }
}
