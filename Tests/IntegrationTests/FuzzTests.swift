import Foundation
import Testing
import WorkerPool
import ZeroMQ

/// Random and mutated frames at every socket a stranger can reach. CI sends a few thousand;
/// `FUZZ_FRAMES=500000 swift test --filter Fuzz` runs the long version.
@Suite("Fuzz", .serialized, .timeLimit(.minutes(10)))
struct FuzzTests {
    static let frames = ProcessInfo.processInfo.environment["FUZZ_FRAMES"].flatMap(Int.init) ?? 6_000

    /// Valid messages of every kind, to mutate.
    static let seeds: [[UInt8]] = [
        WireFormat.encode([TaskRecord(id: 1, name: "multiply", payload: Array(#"{"a":1,"b":2}"#.utf8))]),
        WireFormat.encode(
            [ResultRecord(id: 1, attempt: 1, status: .ok, runMicroseconds: 3, payload: [34, 120, 34])], sender: 7),
        WireFormat.encode(WorkerHello(pid: 1, threads: 1, name: "Worker-9", host: "h"), sender: 7),
        WireFormat.encode(WorkerGoodbye(resultsSent: 0), sender: 7),
        WireFormat.encode(EventRequest(.set, "fuzz"), sender: 7),
        WireFormat.encode(started: [TaskAttempt(id: 1, attempt: 1)], sender: 7),
        WireFormat.encode(WorkerHeartbeat(tasksDone: 1, tasksFailed: 0, restarts: 0, held: []), sender: 7),
        WireFormat.encode(
            WorkerLoss(process: 7, reason: .died, detail: 9, signalled: true, running: []), supervisor: 8),
        WireFormat.encode(
            ready: TaskLinkInfo(capacity: 1),
            hello: WorkerHello(pid: 1, threads: 1, supervisor: 8, name: "Worker-9", host: "h"),
            sender: 7),
        WireFormat.encode(EventSnapshot(sequence: 1, shutdown: false, setEvents: ["x"])),
        WireFormat.encode(releasedWorkers: [7]),
    ]

    /// A frame: random bytes, or a seed with a few bytes flipped, cut short, or extended.
    static func frame(_ generator: inout some RandomNumberGenerator) -> [UInt8] {
        if Int.random(in: 0..<4, using: &generator) == 0 {
            return (0..<Int.random(in: 0..<48, using: &generator)).map { _ in
                UInt8.random(in: 0...255, using: &generator)
            }
        }
        var bytes = seeds.randomElement(using: &generator) ?? []
        for _ in 0..<Int.random(in: 1...3, using: &generator) where !bytes.isEmpty {
            bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
        }
        switch Int.random(in: 0..<4, using: &generator) {
        case 0: bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &generator)))
        case 1:
            bytes += (0..<Int.random(in: 1..<16, using: &generator)).map { _ in
                UInt8.random(in: 0...255, using: &generator)
            }
        default: break
        }
        return bytes
    }

    @Test("fuzzed frames at the producer's results and tasks sockets and at a worker: no crash, a normal run after")
    func fuzzEverySocket() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let endpoints = PoolEndpoints.ipc(directory: directory.path)
        let input = try writeTaskFile(
            (1...300).map { #"{"task": "multiply", "args": {"a": \#($0), "b": 4}}"# }, in: directory)
        let producer = try TestProcess(
            "producer",
            [
                "--ipc", directory.path, "--input", input.path, "--output", "jsonl", "--wait-workers", "1",
                "--log-level", "error",
            ],
            in: directory)
        defer { producer.stop() }

        let context = try Context()
        let toResults = try Socket(context, .push)
        try toResults.setSendTimeout(milliseconds: 2_000)
        try toResults.connect(endpoints.results)
        // A DEALER posing as a task thread: fuzz on the producer's tasks socket.
        let toTasks = try Socket(context, .dealer)
        try toTasks.setSendTimeout(milliseconds: 2_000)
        try toTasks.connect(endpoints.tasks)
        var generator = SystemRandomNumberGenerator()
        var sent = 0
        for index in 0..<Self.frames {
            let frames = (0..<(index % 50 == 0 ? 2 : 1)).map { _ in Self.frame(&generator) }
            // An oversized frame makes the producer drop this connection; a send waits (up to the
            // send timeout) for the reconnection instead of blocking for ever.
            do {
                try (index.isMultiple(of: 2) ? toResults : toTasks).send(multipart: frames)
                sent += 1
            } catch let error as ZeroMQError where error.code == .wouldBlock {
                continue  // not reconnected within the send timeout
            }
        }
        #expect(sent > Self.frames / 2)
        #expect(processExists(producer.pid), "the producer survived the fuzz")

        // Only now a real worker: the run must go through as if nothing happened.
        let worker = try TestProcess("worker", ["--ipc", directory.path, "--log-level", "error"], in: directory)
        defer { worker.stop() }

        #expect(producer.waitForExit(timeout: 120) == 0, "\(producer.stderr.suffix(2_000))")
        let outcomes = try parseOutcomes(producer.stdout)
        #expect(Set(outcomes.map(\.id)) == Set(1...300))
        #expect(outcomes.count == 300)
        #expect(outcomes.allSatisfy { $0.status == "ok" })
        #expect(worker.waitForExit(timeout: 30) == 0)
    }

    @Test("fuzzed frames at a worker's tasks and events sockets: it keeps running tasks")
    func fuzzWorker() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // The test plays the producer with raw sockets.
        let fake = try FakeProducer(endpoints: PoolEndpoints.ipc(directory: directory.path))
        let (tasks, results, publisher) = (fake.tasks, fake.results, fake.publisher)
        let worker = try TestProcess("worker", ["--ipc", directory.path, "--log-level", "error"], in: directory)
        defer { worker.stop() }
        _ = try publisher.receiveMultipart()
        _ = try publisher.receiveMultipart()
        try publisher.send(WireFormat.encode(EventSnapshot(epoch: 5, sequence: 1, shutdown: false, setEvents: [])))
        let identity = try #require(try tasks.receiveMultipart()?.first)

        var generator = SystemRandomNumberGenerator()
        for index in 0..<Self.frames {
            let frame = Self.frame(&generator)
            // Never a shutdown: a fuzzed snapshot may say so, which would be a fair reason to leave.
            if index.isMultiple(of: 2) {
                if case .eventState(let snapshot) = try? WireFormat.decodeBroadcast(frame), snapshot.shutdown {
                    continue
                }
                try publisher.send(frame)
            } else {
                try tasks.send(multipart: [identity, frame])
            }
        }
        try publisher.send(
            WireFormat.encode(EventSnapshot(epoch: 5, sequence: 1 << 40, shutdown: false, setEvents: [])))
        try tasks.send(
            multipart: [
                identity,
                WireFormat.encode(
                    [TaskRecord(id: 424_242, name: "multiply", payload: Array(#"{"a":6,"b":7}"#.utf8))], epoch: 5),
            ])
        var answer: ResultRecord?
        while answer == nil, let frames = try results.receiveMultipart() {
            if case .results(_, let records)? = try? WireFormat.decodeWorkerMessage(frames[0]) {
                answer = records.first { $0.id == 424_242 }
            }
        }
        #expect(answer?.payload == Array(#""6 * 7 = 42""#.utf8), "\(worker.stderr.suffix(2_000))")
        #expect(processExists(worker.pid))
    }
}
