import Foundation
import Testing
import WorkerPool
import ZeroMQ

/// Garbage from a raw socket must be counted and logged, and must not stop the pool.
@Suite("Hostile input", .serialized, .timeLimit(.minutes(2)))
struct HostileInputTests {
    /// Messages no worker would send: random bytes, wrong version, wrong kind, several frames,
    /// truncated records, an unknown status, results for tasks never sent.
    static func garbage() -> [[[UInt8]]] {
        var generator = SystemRandomNumberGenerator()
        var messages: [[[UInt8]]] = (0..<200).map { _ in
            [(0..<Int.random(in: 0..<40, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }]
        }
        let result = WireFormat.encode(
            [ResultRecord(id: 1, attempt: 1, status: .ok, payload: Array("\"x\"".utf8))], sender: 9)
        messages += [
            [[]],
            [[9, 2, 0, 0, 0, 0, 0, 0]],
            [[WireFormat.version, 250, 0, 0, 0, 0, 0, 0]],
            [[WireFormat.version, MessageKind.tasks.rawValue, 0, 0, 0, 0, 0, 0]],
            [result, result],
            [Array(result.dropLast(2))],
            [WireFormat.encode(releasedWorkers: [1])],
            [Array("{\"task\": \"multiply\"}".utf8)],
        ]
        var badStatus = result
        badStatus[WireFormat.headerSize + 10] = 77
        messages.append([badStatus])
        // A well-formed result for a task id the producer never sent.
        messages.append([
            WireFormat.encode(
                [ResultRecord(id: 999_999, attempt: 1, status: .ok, payload: Array("\"x\"".utf8))], sender: 9)
        ])
        return messages
    }

    @Test("garbage sent to the producer's results socket is rejected and the run still succeeds")
    func garbageAtProducer() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = try writeTaskFile(
            (1...200).map { #"{"task": "multiply", "args": {"a": \#($0), "b": 2}}"# }, in: directory)
        let producer = try TestProcess(
            "producer",
            [
                "--ipc", directory.path, "--input", input.path, "--output", "jsonl", "--wait-workers", "1",
                "--max-message-size", "4096",
            ], in: directory)
        defer { producer.stop() }

        let context = try Context()
        let raw = try Socket(context, .push)
        try raw.setLinger(milliseconds: 2_000)
        try raw.connect(PoolEndpoints.ipc(directory: directory.path).results)
        for message in Self.garbage() { try raw.send(multipart: message) }
        #expect(producer.waitForStderr(containing: "rejected a message"), "\(producer.stderr)")
        // An oversized message makes libzmq drop that connection; others are unaffected.
        let oversized = try Socket(context, .push)
        try oversized.connect(PoolEndpoints.ipc(directory: directory.path).results)
        try oversized.send([UInt8](repeating: 1, count: 100_000))

        let worker = try TestProcess("worker", ["--ipc", directory.path, "--max-message-size", "4096"], in: directory)
        defer { worker.stop() }
        #expect(producer.waitForExit() == 0, "\(producer.stderr)")
        let outcomes = try parseOutcomes(producer.stdout)
        #expect(outcomes.count == 200)
        #expect(Set(outcomes.map(\.id)) == Set(1...200))
        #expect(outcomes.allSatisfy { $0.status == "ok" })
        #expect(producer.stderr.contains("malformed messages rejected"))
        #expect(worker.waitForExit(timeout: 30) == 0)
    }

    @Test("garbage sent to a worker is rejected; a broken task fails by id; the worker keeps working")
    func garbageAtWorker() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // The test plays the producer with raw sockets.
        let fake = try FakeProducer(endpoints: PoolEndpoints.ipc(directory: directory.path))
        let (tasks, results, publisher) = (fake.tasks, fake.results, fake.publisher)

        let worker = try TestProcess("worker", ["--ipc", directory.path], in: directory)
        defer { worker.stop() }
        // Two subscribers: the supervisor (it follows shutdown) and the worker process.
        #expect(try publisher.receiveMultipart() == [[1]], "a subscription")
        #expect(try publisher.receiveMultipart() == [[1]], "a second subscription")
        for message in Self.garbage() { try publisher.send(multipart: message) }
        try publisher.send(WireFormat.encode(EventSnapshot(sequence: 1, shutdown: false, setEvents: [])))

        func nextWorkerMessage() throws -> WorkerMessage? {
            guard let frames = try results.receiveMultipart() else { return nil }
            return try WireFormat.decodeWorkerMessage(frames[0])
        }
        // The worker's task thread announces itself on the tasks socket with its routing id.
        let ready = try #require(try tasks.receiveMultipart())
        #expect(ready.count == 2)
        let identity = ready[0]
        guard case .ready(let threadOwner, let link, let readyHello) = try WireFormat.decodeTaskChannel(ready[1]),
            link == TaskLinkInfo(link: 0, capacity: 1)
        else {
            Issue.record("expected ready from link 0, feeding 1 thread")
            return
        }
        guard case .hello(let workerID, let hello) = try nextWorkerMessage() else {
            Issue.record("expected a hello: \(worker.stderr)")
            return
        }
        #expect(hello.name == "Worker-1")
        #expect(readyHello == hello, "a link's ready carries its process's hello")
        #expect(threadOwner == workerID)

        func sendToWorker(_ frames: [[UInt8]]) throws { try tasks.send(multipart: [identity] + frames) }
        for message in Self.garbage() { try sendToWorker(message) }
        var broken = WireFormat.encode([TaskRecord(id: 100, name: "xx", payload: Array("{}".utf8))])
        broken[WireFormat.headerSize + TaskRecord.fixedSize] = 0xFF
        try sendToWorker([broken])
        try sendToWorker([
            WireFormat.encode([
                TaskRecord(id: 101, name: "multiply", payload: Array(#"{"a": 6, "b": 7}"#.utf8)),
                TaskRecord(id: 102, name: "nope", payload: Array("{}".utf8)),
            ])
        ])

        var ended: [UInt64: ResultRecord] = [:]
        var acknowledgements = 0
        while ended.count < 3, let message = try nextWorkerMessage() {
            if case .results(_, let records) = message { for record in records { ended[record.id] = record } }
            if case .started = message { acknowledgements += 1 }
        }
        #expect(acknowledgements == 0, "a result is the task's acknowledgement: no separate message")
        #expect(ended[100]?.status == .malformed)
        #expect(ended[100]?.message.contains("not valid UTF-8") == true)
        #expect(ended[101]?.status == .ok)
        #expect(ended[101]?.payload == Array(#""6 * 7 = 42""#.utf8))
        #expect(ended[102]?.status == .unknownTask)

        // Shutdown: the worker says goodbye with its result count, is released, and exits 0.
        try publisher.send(WireFormat.encode(EventSnapshot(sequence: 2, shutdown: true, setEvents: [])))
        var goodbye: WorkerGoodbye?
        while goodbye == nil, let message = try nextWorkerMessage() {
            if case .goodbye(let sender, let value) = message, sender == workerID { goodbye = value }
        }
        #expect(goodbye?.resultsSent == 3, "results counted, not acknowledgements")
        try publisher.send(WireFormat.encode(releasedWorkers: [workerID]))
        #expect(worker.waitForExit(timeout: 30) == 0)
        #expect(worker.stderr.contains("Worker-1: Exiting"))
        #expect(worker.stderr.contains("dropped a bad task message"))
        #expect(worker.stderr.contains("dropped a bad event message"))
    }
}

@Suite("Message limits", .timeLimit(.minutes(2)))
struct MessageLimitTests {
    @Test("a worker with a larger message limit than its producer sizes result batches to the producer's")
    func workerFollowsProducerLimit() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("tasks.jsonl")
        let name = String(repeating: "x", count: 30_000)
        try writeLines((1...30).map { _ in #"{"task": "greet", "args": "\#(name)"}"# }, to: input)
        let worker = try TestProcess("custom-worker", ["--ipc", directory.path], in: directory)
        defer { worker.stop() }
        let producer = try TestProcess(
            "producer",
            [
                "--ipc", directory.path, "--input", input.path, "--output", "jsonl", "--wait-workers", "1",
                "--max-message-size", "100000",
            ], in: directory)
        defer { producer.stop() }
        #expect(producer.waitForExit() == 0, "\(producer.stderr.suffix(2_000))")
        let outcomes = try parseOutcomes(producer.stdout)
        #expect(outcomes.count == 30)
        #expect(outcomes.allSatisfy { $0.result == .string("hello, \(name)") })
        #expect(worker.waitForExit(timeout: 30) == 0)
    }
}
