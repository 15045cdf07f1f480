/// A task as the worker decoded it: whole, or broken but with an id to report the failure against.
public enum DecodedTask: Sendable, Equatable {
    case task(TaskRecord)
    case malformed(id: UInt64, attempt: UInt16, error: WireError)
}

/// Everything a worker may send on the results socket.
public enum WorkerMessage: Sendable, Equatable {
    case results(sender: UInt32, [ResultRecord])
    case hello(sender: UInt32, WorkerHello)
    case goodbye(sender: UInt32, WorkerGoodbye)
    case eventRequests(sender: UInt32, [EventRequest])
    case started(sender: UInt32, [TaskAttempt])
    case heartbeat(sender: UInt32, WorkerHeartbeat)
    /// From the supervisor `supervisor`; the loss names the process that died.
    case workerLost(supervisor: UInt32, WorkerLoss)
}

/// What a worker's task thread sends on the tasks socket.
public enum TaskChannelMessage: Sendable, Equatable {
    case ready(sender: UInt32, link: TaskLinkInfo, hello: WorkerHello)
}

/// Everything the producer may broadcast on the events socket.
public enum ProducerBroadcast: Sendable, Equatable {
    case eventState(EventSnapshot)
    case released([UInt32])
}

extension WireFormat {
    /// Decodes a tasks message. Throws when the message as a whole is unusable; a record
    /// whose id was readable but whose rest is not comes back as `.malformed`, and decoding
    /// stops there because the following offsets can no longer be trusted.
    public static func decodeTasks(_ bytes: UnsafeRawBufferPointer) throws(WireError) -> [DecodedTask] {
        try decodeTaskMessage(bytes).tasks
    }

    /// Decodes a tasks message with its header (whose `epoch` names the producer's run).
    public static func decodeTaskMessage(_ bytes: UnsafeRawBufferPointer) throws(WireError) -> (
        header: MessageHeader, tasks: [DecodedTask]
    ) {
        var reader = try TaskMessageReader(bytes)
        var decoded: [DecodedTask] = []
        decoded.reserveCapacity(Int(reader.header.count))
        while let record = try reader.next() {
            switch record {
            case .task(let task):
                decoded.append(
                    .task(
                        TaskRecord(
                            id: task.id, attempt: task.attempt, timeLimitMilliseconds: task.timeLimitMilliseconds,
                            name: String(decoding: task.name, as: UTF8.self), payload: Array(task.payload))))
            case .malformed(let id, let attempt, let error):
                decoded.append(.malformed(id: id, attempt: attempt, error: error))
            }
        }
        return (header: reader.header, tasks: decoded)
    }

    /// A task record read in place: `name` (valid UTF-8) and `payload` point into the message.
    struct TaskView {
        var id: UInt64
        var attempt: UInt16
        var timeLimitMilliseconds: UInt32
        var name: UnsafeRawBufferPointer
        var payload: UnsafeRawBufferPointer
    }

    /// Reads a tasks message record by record, in place (the worker's hot path makes no String or
    /// array per task). A record whose id was readable but whose rest is not comes back as
    /// `.malformed`, and reading stops there because the following offsets can no longer be
    /// trusted. Throws when the message as a whole is unusable, possibly after some records were
    /// read (the caller then drops them).
    struct TaskMessageReader {
        enum Record {
            case task(TaskView)
            case malformed(id: UInt64, attempt: UInt16, error: WireError)
        }

        let header: MessageHeader
        private var reader: ByteReader
        private var left: UInt16
        private var stopped = false

        init(_ bytes: UnsafeRawBufferPointer) throws(WireError) {
            reader = ByteReader(bytes)
            header = try MessageHeader.read(from: &reader)
            guard header.kind == .tasks else { throw .unexpectedKind(header.kind, socket: "tasks (worker side)") }
            left = header.count
        }

        /// The next record; nil after the last (the message then has no bytes left over).
        mutating func next() throws(WireError) -> Record? {
            guard !stopped else { return nil }
            guard left > 0 else {
                try reader.expectEnd()
                return nil
            }
            left -= 1
            let id = try reader.read(UInt64.self, "task id")
            var attempt: UInt16 = 0
            do {
                attempt = try reader.read(UInt16.self, "attempt")
                let timeLimit = try reader.read(UInt32.self, "time limit")
                let nameLength = try reader.read(UInt8.self, "task name length")
                let payloadLength = try reader.read(UInt32.self, "payload length")
                let name = try reader.readBytes(Int(nameLength), "task name")
                let payload = try reader.readBytes(Int(payloadLength), "task payload")
                // The record's extent is known, so a bad name spoils only this record.
                guard ByteReader.isValidUTF8(name) else {
                    return .malformed(id: id, attempt: attempt, error: .invalidUTF8(what: "task name"))
                }
                return .task(
                    TaskView(id: id, attempt: attempt, timeLimitMilliseconds: timeLimit, name: name, payload: payload))
            } catch {
                stopped = true
                return .malformed(id: id, attempt: attempt, error: error)
            }
        }
    }

    /// Decodes what a worker's task thread sends on the tasks socket.
    public static func decodeTaskChannel(_ bytes: UnsafeRawBufferPointer) throws(WireError) -> TaskChannelMessage {
        var reader = ByteReader(bytes)
        let header = try MessageHeader.read(from: &reader)
        guard header.kind == .ready, header.count == 1 else {
            throw .unexpectedKind(header.kind, socket: "tasks (producer side)")
        }
        let link = try reader.read(UInt16.self, "link")
        let capacity = try reader.read(UInt16.self, "capacity")
        guard capacity > 0 else { throw .invalidValue(what: "capacity", value: 0) }
        let delay = try reader.read(UInt32.self, "result delay")
        let hello = try readHello(&reader)
        try reader.expectEnd()
        return .ready(
            sender: header.sender, link: TaskLinkInfo(link: link, capacity: capacity, resultDelayMicroseconds: delay),
            hello: hello)
    }

    private static func readHello(_ reader: inout ByteReader) throws(WireError) -> WorkerHello {
        let pid = try reader.read(UInt32.self, "pid")
        let threads = try reader.read(UInt16.self, "threads")
        let supervisor = try reader.read(UInt32.self, "supervisor")
        let name = try reader.readShortString("worker name")
        let host = try reader.readShortString("host name")
        return WorkerHello(pid: pid, threads: threads, supervisor: supervisor, name: name, host: host)
    }

    /// Decodes anything a worker sends on the results socket.
    public static func decodeWorkerMessage(_ bytes: UnsafeRawBufferPointer) throws(WireError) -> WorkerMessage {
        try decodeWorkerEnvelope(bytes).message
    }

    /// Decodes anything a worker sends on the results socket, with the header.
    public static func decodeWorkerEnvelope(_ bytes: UnsafeRawBufferPointer) throws(WireError) -> (
        header: MessageHeader, message: WorkerMessage
    ) {
        var reader = ByteReader(bytes)
        let header = try MessageHeader.read(from: &reader)
        let message: WorkerMessage
        switch header.kind {
        case .results:
            var results: [ResultRecord] = []
            results.reserveCapacity(Int(header.count))
            for _ in 0..<header.count {
                let id = try reader.read(UInt64.self, "task id")
                let attempt = try reader.read(UInt16.self, "attempt")
                let rawStatus = try reader.read(UInt8.self, "status")
                guard let status = ResultStatus(rawValue: rawStatus) else { throw .unknownStatus(rawStatus) }
                let runMicroseconds = try reader.read(UInt32.self, "run time")
                let queuedMicroseconds = try reader.read(UInt32.self, "queued time")
                let length = try reader.read(UInt32.self, "payload length")
                let payload = try reader.readBytes(Int(length), "result payload")
                results.append(
                    ResultRecord(
                        id: id, attempt: attempt, status: status, runMicroseconds: runMicroseconds,
                        queuedMicroseconds: queuedMicroseconds, payload: Array(payload)))
            }
            message = .results(sender: header.sender, results)
        case .hello:
            guard header.count == 1 else { throw .truncated(what: "hello record", needed: 1, available: 0) }
            message = .hello(sender: header.sender, try readHello(&reader))
        case .goodbye:
            guard header.count == 1 else { throw .truncated(what: "goodbye record", needed: 1, available: 0) }
            let sent = try reader.read(UInt64.self, "results sent")
            message = .goodbye(sender: header.sender, WorkerGoodbye(resultsSent: sent))
        case .eventRequest:
            var requests: [EventRequest] = []
            for _ in 0..<header.count {
                let rawOperation = try reader.read(UInt8.self, "event operation")
                guard let operation = EventRequest.Operation(rawValue: rawOperation) else {
                    throw .unknownKind(rawOperation)
                }
                requests.append(EventRequest(operation, try reader.readShortString("event name")))
            }
            message = .eventRequests(sender: header.sender, requests)
        case .started:
            var tasks: [TaskAttempt] = []
            tasks.reserveCapacity(Int(header.count))
            for _ in 0..<header.count {
                let id = try reader.read(UInt64.self, "task id")
                tasks.append(TaskAttempt(id: id, attempt: try reader.read(UInt16.self, "attempt")))
            }
            message = .started(sender: header.sender, tasks)
        case .heartbeat:
            guard header.count == 1 else { throw .truncated(what: "heartbeat record", needed: 1, available: 0) }
            let done = try reader.read(UInt64.self, "tasks done")
            let failed = try reader.read(UInt64.self, "tasks failed")
            let restarts = try reader.read(UInt32.self, "restarts")
            let count = try reader.read(UInt16.self, "held count")
            var held: [HeldTask] = []
            held.reserveCapacity(Int(count))
            for _ in 0..<count {
                let id = try reader.read(UInt64.self, "held task id")
                held.append(HeldTask(id: id, running: try reader.read(UInt8.self, "running flag") != 0))
            }
            message = .heartbeat(
                sender: header.sender,
                WorkerHeartbeat(tasksDone: done, tasksFailed: failed, restarts: restarts, held: held))
        case .workerLost:
            guard header.count == 1 else { throw .truncated(what: "worker-lost record", needed: 1, available: 0) }
            let process = try reader.read(UInt32.self, "process")
            let rawReason = try reader.read(UInt8.self, "reason")
            guard let reason = WorkerLoss.Reason(rawValue: rawReason & 0x7F) else { throw .unknownKind(rawReason) }
            let detail = try reader.read(Int32.self, "detail")
            let culprit = try reader.read(UInt64.self, "culprit")
            let count = try reader.read(UInt16.self, "running count")
            var running: [TaskAttempt] = []
            for _ in 0..<count {
                let id = try reader.read(UInt64.self, "task id")
                running.append(TaskAttempt(id: id, attempt: try reader.read(UInt16.self, "attempt")))
            }
            message = .workerLost(
                supervisor: header.sender,
                WorkerLoss(
                    process: process, reason: reason, detail: detail, signalled: rawReason & 0x80 != 0,
                    culprit: culprit,
                    running: running))
        case .tasks, .eventState, .released, .ready:
            throw .unexpectedKind(header.kind, socket: "results")
        }
        try reader.expectEnd()
        return (header, message)
    }

    /// Decodes anything the producer broadcasts on the events socket.
    public static func decodeBroadcast(_ bytes: UnsafeRawBufferPointer) throws(WireError) -> ProducerBroadcast {
        var reader = ByteReader(bytes)
        let header = try MessageHeader.read(from: &reader)
        let broadcast: ProducerBroadcast
        switch header.kind {
        case .eventState:
            guard header.count == 1 else { throw .truncated(what: "event state record", needed: 1, available: 0) }
            let sequence = try reader.read(UInt64.self, "sequence")
            let flags = try reader.read(UInt8.self, "flags")
            let limit = try reader.read(UInt32.self, "max message size")
            let count = try reader.read(UInt16.self, "event count")
            var names: [String] = []
            for _ in 0..<count { names.append(try reader.readShortString("event name")) }
            broadcast = .eventState(
                EventSnapshot(
                    epoch: header.epoch, sequence: sequence, shutdown: flags & 1 != 0, setEvents: names,
                    maxMessageSize: limit))
        case .released:
            var ids: [UInt32] = []
            for _ in 0..<header.count { ids.append(try reader.read(UInt32.self, "worker id")) }
            broadcast = .released(ids)
        case .tasks, .results, .hello, .goodbye, .eventRequest, .ready, .started, .heartbeat, .workerLost:
            throw .unexpectedKind(header.kind, socket: "events")
        }
        try reader.expectEnd()
        return broadcast
    }
}

/// A result record read in place from a received message: its payload points into the
/// message and is valid only while the message is.
public struct ResultView {
    public var id: UInt64
    public var attempt: UInt16
    public var status: ResultStatus
    public var runMicroseconds: UInt32
    public var queuedMicroseconds: UInt32
    public var payload: UnsafeRawBufferPointer
}

extension WireFormat {
    /// Reads the records of a `results` message into `views` (emptied first, capacity kept), without
    /// copying a payload: the producer's hot path. Throws, leaving `views` empty, if any record is bad.
    public static func readResults(
        _ bytes: UnsafeRawBufferPointer, header: MessageHeader, into views: inout [ResultView]
    ) throws(WireError) {
        views.removeAll(keepingCapacity: true)
        var reader = ByteReader(bytes)
        _ = try MessageHeader.read(from: &reader)
        do throws(WireError) {
            for _ in 0..<header.count {
                let id = try reader.read(UInt64.self, "task id")
                let attempt = try reader.read(UInt16.self, "attempt")
                let rawStatus = try reader.read(UInt8.self, "status")
                guard let status = ResultStatus(rawValue: rawStatus) else { throw WireError.unknownStatus(rawStatus) }
                let run = try reader.read(UInt32.self, "run time")
                let queued = try reader.read(UInt32.self, "queued time")
                let length = try reader.read(UInt32.self, "payload length")
                let payload = try reader.readBytes(Int(length), "result payload")
                views.append(
                    ResultView(
                        id: id, attempt: attempt, status: status, runMicroseconds: run, queuedMicroseconds: queued,
                        payload: payload))
            }
            try reader.expectEnd()
        } catch {
            views.removeAll(keepingCapacity: true)
            throw error
        }
    }
}

extension WireFormat {
    public static func decodeTasks(_ bytes: [UInt8]) throws(WireError) -> [DecodedTask] {
        try bytes.withUnsafeBytes { raw in Result { () throws(WireError) in try decodeTasks(raw) } }.get()
    }
    public static func decodeWorkerMessage(_ bytes: [UInt8]) throws(WireError) -> WorkerMessage {
        try bytes.withUnsafeBytes { raw in Result { () throws(WireError) in try decodeWorkerMessage(raw) } }.get()
    }
    public static func decodeTaskChannel(_ bytes: [UInt8]) throws(WireError) -> TaskChannelMessage {
        try bytes.withUnsafeBytes { raw in Result { () throws(WireError) in try decodeTaskChannel(raw) } }.get()
    }
    public static func decodeBroadcast(_ bytes: [UInt8]) throws(WireError) -> ProducerBroadcast {
        try bytes.withUnsafeBytes { raw in Result { () throws(WireError) in try decodeBroadcast(raw) } }.get()
    }
}
