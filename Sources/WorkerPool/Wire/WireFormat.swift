/// The bytes producer and workers exchange.
///
/// Every message is **one frame**: a 12-byte header followed by `count` records of the
/// header's kind, all integers little-endian.
///
/// ```
/// header    | version u8 | kind u8 | count u16 | sender u32 | epoch u32 |
/// task      | id u64 | attempt u16 | time limit ms u32 | name length u8 | payload length u32 | name | payload |
/// result    | id u64 | attempt u16 | status u8 | run time µs u32 | queued µs u32 | payload length u32 | payload |
/// hello     | pid u32 | threads u16 | supervisor u32 | name length u8 | name | host length u8 | host |
/// ready     | link u16 | capacity u16 | result delay µs u32 | hello |
/// started   | id u64 | attempt u16 |
/// heartbeat | done u64 | failed u64 | restarts u32 | held u16 | held × (id u64 | running u8) |
/// lost      | process u32 | reason u8 | detail i32 | culprit u64 | running u16 | running × (id u64 | attempt u16) |
/// state     | sequence u64 | flags u8 | max message size u32 | names u16 | names × (length u8 | name) |
/// ```
///
/// One frame rather than a header frame plus a payload frame: one libzmq message per send, and
/// several records per frame give batching on the same format. `sender` is the worker's random
/// 32-bit id on worker messages (0 from the producer). `epoch` is the producer's random run id:
/// the producer stamps it on everything it sends and workers echo it on what concerns its tasks,
/// so a restarted producer never mistakes an old run's result for one of its own.
///
/// Version 2: a task thread's `ready` carries its process's hello (so a thread is never known
/// before its process), a hello names the process's supervisor (the only sender whose loss report
/// for it counts: `lost` comes from the supervisor and names the process), and a result says how
/// long the task waited in the worker's queue, so a result doubles as the task's acknowledgement
/// and still measures the round trip.
///
/// Version 3: a `ready` comes from a process's task link (a DEALER and a PUSH feeding
/// `capacity` task threads), not from each thread: one message carries tasks for several
/// threads of a process, and one carries their results.
public enum WireFormat {
    public static let version: UInt8 = 3
    public static let headerSize = 12
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
    // worker → producer, tasks socket: a task thread is connected and takes work
    case ready = 8
    // worker → producer, results socket
    case started = 9
    case heartbeat = 10
    /// From a worker's supervisor: one of its processes died.
    case workerLost = 11

    public var description: String {
        switch self {
        case .tasks: "tasks"
        case .results: "results"
        case .hello: "hello"
        case .goodbye: "goodbye"
        case .eventRequest: "event-request"
        case .eventState: "event-state"
        case .released: "released"
        case .ready: "ready"
        case .started: "started"
        case .heartbeat: "heartbeat"
        case .workerLost: "worker-lost"
        }
    }
}

public struct MessageHeader: Sendable, Equatable {
    public var kind: MessageKind
    public var count: UInt16
    public var sender: UInt32
    public var epoch: UInt32

    public init(kind: MessageKind, count: UInt16, sender: UInt32, epoch: UInt32 = 0) {
        self.kind = kind
        self.count = count
        self.sender = sender
        self.epoch = epoch
    }

    static func read(from reader: inout ByteReader) throws(WireError) -> MessageHeader {
        guard reader.remaining > 0 else { throw .emptyMessage }
        let version = try reader.read(UInt8.self, "version")
        guard version == WireFormat.version else { throw .unsupportedVersion(version) }
        let rawKind = try reader.read(UInt8.self, "kind")
        guard let kind = MessageKind(rawValue: rawKind) else { throw .unknownKind(rawKind) }
        let count = try reader.read(UInt16.self, "record count")
        let sender = try reader.read(UInt32.self, "sender")
        let epoch = try reader.read(UInt32.self, "epoch")
        return MessageHeader(kind: kind, count: count, sender: sender, epoch: epoch)
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
    /// Run time allowed before the worker's supervisor kills the process; 0 is no limit.
    public var timeLimitMilliseconds: UInt32
    public var name: String
    public var payload: [UInt8]

    public init(id: UInt64, attempt: UInt16 = 1, timeLimitMilliseconds: UInt32 = 0, name: String, payload: [UInt8]) {
        self.id = id
        self.attempt = attempt
        self.timeLimitMilliseconds = timeLimitMilliseconds
        self.name = name
        self.payload = payload
    }

    /// Bytes of a task record before its name and payload.
    public static let fixedSize = 8 + 2 + 4 + 1 + 4
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
    /// The task ran past its time limit and its process was killed.
    case timeLimit = 8
    /// The task's process died while running it, `--max-attempts` times.
    case workerDied = 9

    public var description: String { jsonName.description }

    /// The name as a literal, for writers that copy bytes (JSON records).
    var jsonName: StaticString {
        switch self {
        case .ok: "ok"
        case .failed: "failed"
        case .badArguments: "bad-arguments"
        case .unknownTask: "unknown-task"
        case .malformed: "malformed"
        case .tooLarge: "too-large"
        case .badInput: "bad-input"
        case .cancelled: "cancelled"
        case .timeLimit: "time-limit"
        case .workerDied: "worker-died"
        }
    }
}

/// A task's outcome: the output's JSON on success, a UTF-8 error message otherwise.
public struct ResultRecord: Sendable, Equatable {
    public var id: UInt64
    public var attempt: UInt16
    public var status: ResultStatus
    public var runMicroseconds: UInt32
    /// How long the task waited in the worker's queue before it ran.
    public var queuedMicroseconds: UInt32
    public var payload: [UInt8]

    public init(
        id: UInt64, attempt: UInt16, status: ResultStatus, runMicroseconds: UInt32 = 0, queuedMicroseconds: UInt32 = 0,
        payload: [UInt8]
    ) {
        self.id = id
        self.attempt = attempt
        self.status = status
        self.runMicroseconds = runMicroseconds
        self.queuedMicroseconds = queuedMicroseconds
        self.payload = payload
    }

    /// Bytes of a result record before its payload.
    public static let fixedSize = 8 + 2 + 1 + 4 + 4 + 4
    var encodedSize: Int { Self.fixedSize + payload.count }

    /// The payload read as an error message (for any status but `.ok`).
    public var message: String { String(decoding: payload, as: UTF8.self) }
}

/// A worker process introducing itself; re-sent periodically so a restarted producer learns it too.
public struct WorkerHello: Sendable, Equatable {
    public var pid: UInt32
    public var threads: UInt16
    /// The sender id of the supervisor that started this process (0: none): the one sender
    /// whose report of this process's death the producer believes.
    public var supervisor: UInt32
    public var name: String
    public var host: String

    public init(pid: UInt32, threads: UInt16, supervisor: UInt32 = 0, name: String, host: String) {
        self.pid = pid
        self.threads = threads
        self.supervisor = supervisor
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
    /// The producer's run id: a worker adopts any snapshot from a new producer.
    public var epoch: UInt32
    /// Increases with every change, so a worker ignores anything older than what it has.
    public var sequence: UInt64
    public var shutdown: Bool
    public var setEvents: [String]
    /// The largest message the producer accepts (0: not said), so workers size result batches to fit.
    public var maxMessageSize: UInt32

    public init(
        epoch: UInt32 = 0, sequence: UInt64, shutdown: Bool, setEvents: [String], maxMessageSize: UInt32 = 0
    ) {
        self.epoch = epoch
        self.sequence = sequence
        self.shutdown = shutdown
        self.setEvents = setEvents
        self.maxMessageSize = maxMessageSize
    }
}

/// A task a worker holds: queued in its process or running on one of its threads.
public struct HeldTask: Sendable, Equatable {
    public var id: UInt64
    public var running: Bool
    public init(id: UInt64, running: Bool) {
        self.id = id
        self.running = running
    }
}

/// A worker process's periodic sign of life, with what it holds and what it has done.
public struct WorkerHeartbeat: Sendable, Equatable {
    public var tasksDone: UInt64
    public var tasksFailed: UInt64
    /// How often the supervisor restarted this process's slot.
    public var restarts: UInt32
    public var held: [HeldTask]

    public init(tasksDone: UInt64, tasksFailed: UInt64, restarts: UInt32, held: [HeldTask]) {
        self.tasksDone = tasksDone
        self.tasksFailed = tasksFailed
        self.restarts = restarts
        self.held = held
    }
}

/// A supervisor's report that one of its worker processes died, and what it was running.
public struct WorkerLoss: Sendable, Equatable {
    public enum Reason: UInt8, Sendable {
        /// Exited or was killed by a signal while it should have been working.
        case died = 1
        /// Killed by its supervisor because a task overran its time limit.
        case timeLimit = 2
    }

    /// The sender id of the process that died.
    public var process: UInt32
    public var reason: Reason
    /// The signal number, or the exit code when `signalled` is false.
    public var detail: Int32
    public var signalled: Bool
    /// The task that overran its time limit (0 when none did).
    public var culprit: UInt64
    /// Tasks running on the process's threads when it died, with their attempts.
    public var running: [TaskAttempt]

    public init(
        process: UInt32, reason: Reason, detail: Int32, signalled: Bool, culprit: UInt64 = 0, running: [TaskAttempt]
    ) {
        self.process = process
        self.reason = reason
        self.detail = detail
        self.signalled = signalled
        self.culprit = culprit
        self.running = running
    }
}

/// A task id with the attempt it belongs to.
public struct TaskAttempt: Sendable, Equatable, Hashable {
    public var id: UInt64
    public var attempt: UInt16
    public init(id: UInt64, attempt: UInt16) {
        self.id = id
        self.attempt = attempt
    }
}

/// A process's task link as its `ready` describes it: which link of the process (its routing id
/// is `sender | link`), how many task threads it feeds, and how long it may hold a result to
/// send it with others (the producer keeps it that much further ahead).
public struct TaskLinkInfo: Sendable, Equatable {
    public var link: UInt16
    public var capacity: UInt16
    public var resultDelayMicroseconds: UInt32

    public init(link: UInt16 = 0, capacity: UInt16, resultDelayMicroseconds: UInt32 = 0) {
        self.link = link
        self.capacity = capacity
        self.resultDelayMicroseconds = resultDelayMicroseconds
    }
}
