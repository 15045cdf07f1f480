import Testing

@testable import WorkerPool

@Suite("Wire format")
struct WireFormatTests {
    @Test("tasks round-trip, several per message")
    func tasksRoundTrip() throws {
        let tasks = [
            TaskRecord(id: 1, name: "multiply", payload: Array(#"{"a":3,"b":3}"#.utf8)),
            TaskRecord(id: 1 << 40, attempt: 3, timeLimitMilliseconds: 1_500, name: "ünïcode-task", payload: []),
            TaskRecord(id: 7, name: "x", payload: [UInt8](repeating: 0xFF, count: 70_000)),
        ]
        let bytes = WireFormat.encode(tasks)
        #expect(try MessageHeader.decode(bytes.withUnsafeBytes { UnsafeRawBufferPointer($0) }).count == 3)
        #expect(try WireFormat.decodeTasks(bytes) == tasks.map { .task($0) })
    }

    @Test("a single multiply task is 52 bytes: header, fixed fields, name, arguments")
    func smallTaskIsSmall() {
        let bytes = WireFormat.encode([TaskRecord(id: 1, name: "multiply", payload: Array(#"{"a":3,"b":3}"#.utf8))])
        #expect(bytes.count == 12 + 19 + 8 + 13)
    }

    @Test("acknowledgements, heartbeats, losses and ready messages round-trip, with the epoch")
    func reliabilityMessages() throws {
        let started = [TaskAttempt(id: 4, attempt: 2), TaskAttempt(id: 5, attempt: 1)]
        let bytes = WireFormat.encode(started: started, sender: 3, epoch: 99)
        let envelope = try bytes.withUnsafeBytes { raw in
            try Result { () throws(WireError) in try WireFormat.decodeWorkerEnvelope(raw) }.get()
        }
        #expect(envelope.header.epoch == 99)
        #expect(envelope.message == .started(sender: 3, started))
        let heartbeat = WorkerHeartbeat(
            tasksDone: 10, tasksFailed: 2, restarts: 1,
            held: [HeldTask(id: 7, running: true), HeldTask(id: 8, running: false)])
        #expect(
            try WireFormat.decodeWorkerMessage(WireFormat.encode(heartbeat, sender: 3))
                == .heartbeat(sender: 3, heartbeat))
        let loss = WorkerLoss(
            process: 12, reason: .timeLimit, detail: 9, signalled: true, culprit: 7,
            running: [TaskAttempt(id: 7, attempt: 1)])
        #expect(
            try WireFormat.decodeWorkerMessage(WireFormat.encode(loss, supervisor: 30))
                == .workerLost(supervisor: 30, loss))
        let hello = WorkerHello(pid: 5, threads: 2, supervisor: 30, name: "Worker-2", host: "h")
        #expect(
            try WireFormat.decodeTaskChannel(
                WireFormat.encode(
                    ready: TaskLinkInfo(link: 2, capacity: 3, resultDelayMicroseconds: 2_000), hello: hello, sender: 12)
            )
                == .ready(
                    sender: 12, link: TaskLinkInfo(link: 2, capacity: 3, resultDelayMicroseconds: 2_000), hello: hello))
        let snapshot = EventSnapshot(epoch: 77, sequence: 1, shutdown: false, setEvents: [])
        #expect(try WireFormat.decodeBroadcast(WireFormat.encode(snapshot)) == .eventState(snapshot))
    }

    @Test("every worker message kind round-trips")
    func workerMessages() throws {
        let results = [
            ResultRecord(id: 9, attempt: 1, status: .ok, runMicroseconds: 12, payload: Array("\"9\"".utf8)),
            ResultRecord(id: 10, attempt: 2, status: .unknownTask, payload: Array("unknown task".utf8)),
        ]
        #expect(
            try WireFormat.decodeWorkerMessage(WireFormat.encode(results, sender: 42)) == .results(sender: 42, results))
        let hello = WorkerHello(pid: 123, threads: 4, name: "Worker-1", host: "node-a")
        #expect(try WireFormat.decodeWorkerMessage(WireFormat.encode(hello, sender: 5)) == .hello(sender: 5, hello))
        let goodbye = WorkerGoodbye(resultsSent: 77)
        #expect(
            try WireFormat.decodeWorkerMessage(WireFormat.encode(goodbye, sender: 5)) == .goodbye(sender: 5, goodbye))
        let request = EventRequest(.clear, "go")
        #expect(
            try WireFormat.decodeWorkerMessage(WireFormat.encode(request, sender: 5))
                == .eventRequests(sender: 5, [request]))
    }

    @Test("broadcasts round-trip")
    func broadcasts() throws {
        let snapshot = EventSnapshot(sequence: 3, shutdown: true, setEvents: ["a", "go"])
        #expect(try WireFormat.decodeBroadcast(WireFormat.encode(snapshot)) == .eventState(snapshot))
        #expect(try WireFormat.decodeBroadcast(WireFormat.encode(releasedWorkers: [1, 2])) == .released([1, 2]))
    }

    @Test(
        "hostile input is a typed error, never a crash",
        arguments: [
            ([], WireError.emptyMessage),
            ([1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], .unsupportedVersion(1)),
            ([2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], .unsupportedVersion(2)),
            ([WireFormat.version, 99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], .unknownKind(99)),
            ([WireFormat.version, 1, 0], .truncated(what: "record count", needed: 2, available: 1)),
            ([WireFormat.version, 2, 0, 0, 0, 0, 0, 0, 0], .truncated(what: "epoch", needed: 4, available: 1)),
            (
                [WireFormat.version, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3],
                .truncated(what: "task id", needed: 8, available: 3)
            ),
            ([WireFormat.version, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9], .trailingBytes(1)),
            ([WireFormat.version, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], .unexpectedKind(.tasks, socket: "results")),
        ] as [([UInt8], WireError)])
    func hostileWorkerMessages(bytes: [UInt8], expected: WireError) {
        #expect(throws: expected) { try WireFormat.decodeWorkerMessage(bytes) }
    }

    @Test("a result with an unknown status is rejected")
    func unknownStatus() {
        var bytes = WireFormat.encode([ResultRecord(id: 1, attempt: 1, status: .ok, payload: [])], sender: 1)
        bytes[WireFormat.headerSize + 10] = 200
        #expect(throws: WireError.unknownStatus(200)) { try WireFormat.decodeWorkerMessage(bytes) }
    }

    @Test("a task whose name is not UTF-8 is reported against its id, and the next task still decodes")
    func badUTF8TaskName() throws {
        var bytes = WireFormat.encode([
            TaskRecord(id: 5, name: "ab", payload: Array("{}".utf8)),
            TaskRecord(id: 6, name: "ok", payload: Array("{}".utf8)),
        ])
        bytes[WireFormat.headerSize + TaskRecord.fixedSize] = 0xC3  // a lone UTF-8 lead byte
        let decoded = try WireFormat.decodeTasks(bytes)
        #expect(decoded.count == 2)
        #expect(decoded[0] == .malformed(id: 5, attempt: 1, error: .invalidUTF8(what: "task name")))
        #expect(decoded[1] == .task(TaskRecord(id: 6, name: "ok", payload: Array("{}".utf8))))
    }

    @Test("a truncated task payload is reported against its id")
    func truncatedTask() throws {
        let bytes = WireFormat.encode([TaskRecord(id: 8, name: "multiply", payload: Array("{\"a\":1}".utf8))])
        let decoded = try WireFormat.decodeTasks(Array(bytes.dropLast(3)))
        #expect(
            decoded == [.malformed(id: 8, attempt: 1, error: .truncated(what: "task payload", needed: 7, available: 4))]
        )
    }

    @Test("random bytes never crash the decoders")
    func randomBytes() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let count = Int.random(in: 0..<64, using: &generator)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if count > 1, Bool.random(using: &generator) {
                bytes[0] = WireFormat.version
                bytes[1] = UInt8.random(in: 1...7, using: &generator)
            }
            _ = try? WireFormat.decodeTasks(bytes)
            _ = try? WireFormat.decodeWorkerMessage(bytes)
            _ = try? WireFormat.decodeBroadcast(bytes)
        }
    }
}
