import Foundation
import Testing
import WorkerPool
import ZeroMQ

/// Issue 12: only the worker a task was sent to may end it, a process's death counts only when
/// its own supervisor reports it, and a stranger costs nothing.
@Suite("Forgery and strangers", .serialized, .timeLimit(.minutes(3)))
struct ForgeryTests {
    /// The producer's run id, read from its events socket the way an eavesdropper would.
    static func epoch(
        of endpoints: PoolEndpoints, context: Context, curve: (keys: CurveKeyPair, server: CurveKey)? = nil
    ) throws -> UInt32 {
        let events = try Socket(context, .sub)
        if let curve { try events.makeCurveClient(curve.keys, serverKey: curve.server) }
        try events.setReceiveTimeout(milliseconds: 20_000)
        try events.subscribe()
        try events.connect(endpoints.events)
        while let frames = try events.receiveMultipart() {
            if case .eventState(let snapshot) = try WireFormat.decodeBroadcast(frames[0]) { return snapshot.epoch }
        }
        throw CancellationError()
    }

    /// Results claiming every id, as an attacker who never received a task would send them.
    static func forgedResults(ids: ClosedRange<UInt64>, sender: UInt32, epoch: UInt32) -> [[UInt8]] {
        stride(from: ids.lowerBound, through: ids.upperBound, by: 50).map { first in
            let records = (first...min(first + 49, ids.upperBound)).map {
                ResultRecord(id: $0, attempt: 1, status: .ok, payload: Array("\"forged\"".utf8))
            }
            return WireFormat.encode(records, sender: sender, epoch: epoch)
        }
    }

    /// Sends `bytes` as soon as `socket` can take it, or gives up (false) once the producer has
    /// exited: a blocking send to a producer that is gone would wait for ever.
    static func send(_ bytes: [UInt8], on socket: Socket, while producer: TestProcess) throws -> Bool {
        var poller = Poller()
        _ = poller.add(socket, .writable)
        while try !socket.send(bytes, dontWait: true) {
            guard producer.process.isRunning else { return false }
            try poller.poll(timeoutMilliseconds: 100)
        }
        return true
    }

    /// A plaintext producer over ipc with `count` sleep tasks, waiting for one worker, once bound.
    static func producer(sleeping count: Int, milliseconds: Int, in directory: URL) throws -> TestProcess {
        let input = try writeTaskFile(
            (1...count).map { _ in #"{"task": "sleep", "args": {"ms": \#(milliseconds)}}"# }, in: directory)
        let producer = try TestProcess(
            "producer", ["--ipc", directory.path, "--input", input.path, "--output", "jsonl", "--wait-workers", "1"],
            in: directory)
        #expect(producer.waitForStderr(containing: "producer bound"))
        return producer
    }

    /// A worker process started directly (as its supervisor would), so the test knows its ids.
    static func worker(id: UInt32, supervisor: UInt32, in directory: URL, extra: [String] = []) throws -> TestProcess {
        try TestProcess(
            "worker",
            [
                "--ipc", directory.path, "--child-index", "1", "--worker-id", "\(id)", "--supervisor-id",
                "\(supervisor)",
            ] + extra, in: directory)
    }

    @Test(
        "results pushed for every id by a raw socket that read the epoch: no forged outcome, every real one delivered")
    func forgedResultsInPlaintext() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let producer = try Self.producer(sleeping: 400, milliseconds: 20, in: directory)
        defer { producer.stop() }
        let endpoints = PoolEndpoints.ipc(directory: directory.path)
        let context = try Context()
        let epoch = try Self.epoch(of: endpoints, context: context)
        let worker = try Self.worker(id: 4_242, supervisor: 77, in: directory, extra: ["--threads", "4"])
        defer { worker.stop() }

        let forger = try Socket(context, .push)
        try forger.connect(endpoints.results)
        // A stranger that never said hello, and one that did but was never sent a task.
        let stranger = Self.forgedResults(ids: 1...400, sender: 0xDEAD_BEEF, epoch: epoch)
        let introduced = Self.forgedResults(ids: 1...400, sender: 0xFEED_F00D, epoch: epoch)
        let hello = WireFormat.encode(
            WorkerHello(pid: 1, threads: 1, name: "Forger", host: "evil"), sender: 0xFEED_F00D)
        // A report that the real worker died, from a sender that is not its supervisor.
        let loss = WireFormat.encode(
            WorkerLoss(process: 4_242, reason: .died, detail: 9, signalled: true, running: []), supervisor: 78)
        var rounds = 0
        while producer.process.isRunning && rounds < 2_000 {
            rounds += 1
            for message in [hello] + stranger + introduced + [loss] {
                guard try Self.send(message, on: forger, while: producer) else { break }
            }
            usleep(5_000)
        }
        #expect(producer.waitForExit() == 0, "\(producer.stderr.suffix(3_000))")
        let outcomes = try parseOutcomes(producer.stdout)
        #expect(outcomes.count == 400)
        #expect(Set(outcomes.map(\.id)) == Set(1...400))
        #expect(!outcomes.contains { $0.result == .string("forged") }, "no forged outcome")
        #expect(
            outcomes.allSatisfy { $0.status == "ok" && $0.pid == worker.pid }, "every task ended by the real worker")
        #expect(rounds > 1, "the forger kept sending while the run went on")
        #expect(producer.stderr.contains("from a sender that never said hello"), "strangers are counted and logged")
        #expect(producer.stderr.contains("which was never sent it"), "forged results are counted and logged")
        #expect(producer.stderr.contains("does not come from that process's supervisor"))
        #expect(!producer.stderr.contains(" lost: "), "the forged loss report changed nothing")
        #expect(producer.stderr.contains("results from workers never sent the task refused"))
    }

    @Test("under CURVE an allowlisted worker posing as another is refused; the other's tasks end with its own results")
    func impostorUnderCurve() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        for name in ["producer", "victim", "impostor"] { _ = try SecurityTests.keygen(name, in: directory) }
        let path = { (name: String) in directory.appendingPathComponent(name).path }
        let input = try writeTaskFile((1...300).map { _ in #"{"task": "sleep", "args": {"ms": 20}}"# }, in: directory)
        let producer = try TestProcess(
            "producer",
            [
                "--ipc", directory.path, "--input", input.path, "--output", "jsonl", "--wait-workers", "1",
                "--curve-key", path("producer.key"), "--curve-allow", path("victim.pub"), "--curve-allow",
                path("impostor.pub"),
            ], in: directory)
        defer { producer.stop() }
        #expect(producer.waitForStderr(containing: "producer bound"))
        let victim = try Self.worker(
            id: 5_151, supervisor: 88, in: directory,
            extra: ["--threads", "4", "--curve-key", path("victim.key"), "--curve-server-key", path("producer.pub")])
        defer { victim.stop() }

        let endpoints = PoolEndpoints.ipc(directory: directory.path)
        let context = try Context()
        let curve = (
            keys: try CurveKeyFile.loadKeyPair(path: path("impostor.key")),
            server: try CurveKeyFile.loadPublicKey(path("producer.pub"))
        )
        let epoch = try Self.epoch(of: endpoints, context: context, curve: curve)
        let impostor = try Socket(context, .push)
        try impostor.makeCurveClient(curve.keys, serverKey: curve.server)
        try impostor.connect(endpoints.results)
        #expect(producer.waitForStderr(containing: "Worker-1 joined"), "\(producer.stderr)")
        // The victim's own sender id and its supervisor's: all an insider could know.
        let forged = Self.forgedResults(ids: 1...300, sender: 5_151, epoch: epoch)
        let loss = WireFormat.encode(
            WorkerLoss(process: 5_151, reason: .died, detail: 9, signalled: true, running: []), supervisor: 88)
        var rounds = 0
        while producer.process.isRunning && rounds < 2_000 {
            rounds += 1
            for message in forged + [loss] {
                guard try Self.send(message, on: impostor, while: producer) else { break }
            }
            usleep(5_000)
        }
        #expect(producer.waitForExit() == 0, "\(producer.stderr.suffix(3_000))")
        let outcomes = try parseOutcomes(producer.stdout)
        #expect(outcomes.count == 300)
        #expect(!outcomes.contains { $0.result == .string("forged") }, "no forged outcome")
        #expect(outcomes.allSatisfy { $0.status == "ok" && $0.pid == victim.pid })
        #expect(producer.stderr.contains("does not come from that process's supervisor"), "\(producer.stderr)")
        #expect(producer.stderr.contains("not under its own key (5151)"), "the impostor's results were refused")
        #expect(!producer.stderr.contains(" lost: "), "the victim was not declared dead")
    }

    /// Resident memory of a process, in kB.
    static func residentKilobytes(_ pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return nil }
        return Int(line.split(separator: " ").dropFirst().first ?? "")
    }

    /// One run of 600 tasks of 40 ms on a worker with 4 threads; with `flood`, a million
    /// messages under random sender ids arrive meanwhile. Returns the wall time and the
    /// producer's memory growth.
    static func run(
        flood: Int, in directory: URL
    ) throws -> (seconds: Double, afterFlood: Double, growthKilobytes: Int, stderr: String) {
        let producer = try Self.producer(sleeping: 600, milliseconds: 40, in: directory)
        defer { producer.stop() }
        let endpoints = PoolEndpoints.ipc(directory: directory.path)
        let context = try Context()
        let epoch = try Self.epoch(of: endpoints, context: context)
        let before = try #require(Self.residentKilobytes(producer.pid))
        let started = Date()
        let worker = try Self.worker(id: 6_161, supervisor: 99, in: directory, extra: ["--threads", "4"])
        defer { worker.stop() }
        var generator = SystemRandomNumberGenerator()
        var peak = before
        var sent = 0
        if flood > 0 {
            let flooder = try Socket(context, .push)
            try flooder.connect(endpoints.results)
            for index in 0..<flood {
                let sender = UInt32.random(in: 1...UInt32.max, using: &generator)
                let message: [UInt8]
                switch index % 3 {
                case 0:
                    message = WireFormat.encode(
                        [ResultRecord(id: UInt64(index % 300 + 1), attempt: 1, status: .ok, payload: [0x31])],
                        sender: sender, epoch: epoch)
                case 1:
                    message = WireFormat.encode(
                        WorkerHeartbeat(tasksDone: 0, tasksFailed: 0, restarts: 0, held: []), sender: sender,
                        epoch: epoch)
                default:
                    message = WireFormat.encode(WorkerHello(pid: 1, threads: 1, name: "x", host: "y"), sender: sender)
                }
                guard try Self.send(message, on: flooder, while: producer) else { break }
                sent += 1
                if index % 50_000 == 0 { peak = max(peak, Self.residentKilobytes(producer.pid) ?? 0) }
            }
        }
        let floodEnded = Date()
        #expect(sent == flood, "the whole flood reached a running producer (\(sent) of \(flood) sent)")
        #expect(producer.waitForExit(timeout: 120) == 0, "\(producer.stderr.suffix(2_000))")
        let seconds = Date().timeIntervalSince(started)
        let outcomes = try parseOutcomes(producer.stdout)
        #expect(outcomes.count == 600 && Set(outcomes.map(\.id)).count == 600, "each task exactly once")
        #expect(outcomes.allSatisfy { $0.status == "ok" && $0.pid == worker.pid })
        return (seconds, Date().timeIntervalSince(floodEnded), peak - before, producer.stderr)
    }

    @Test("a million messages under random sender ids: memory stays flat and the run takes about as long")
    func strangerFlood() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let quiet = try Self.run(flood: 0, in: directory)
        let flooded = try Self.run(flood: 1_000_000, in: directory)
        print(
            "stranger flood: \(quiet.seconds) s without, \(flooded.seconds) s with (\(flooded.afterFlood) s after "
                + "the last flood message); memory +\(flooded.growthKilobytes) kB")
        #expect(flooded.growthKilobytes < 20_000, "resident memory grew by \(flooded.growthKilobytes) kB")
        // What the flood leaves behind must not slow the rest of the run (a known-worker table
        // that grew with it would): once it stops, the run ends as fast as a quiet one. Generous,
        // for a shared machine and debug builds.
        #expect(
            flooded.afterFlood < quiet.seconds + 5,
            "\(quiet.seconds) s for a quiet run, \(flooded.afterFlood) s to finish after the flood")
        #expect(
            flooded.stderr.contains("more workers joined than are logged by name"), "the flood is counted and logged")
        #expect(flooded.stderr.contains("from a sender that never said hello"))
    }
}
