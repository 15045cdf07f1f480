import Foundation
import Testing

@testable import WorkerPool

/// The pool log's events: recorded by the core where it decides them, and written as JSON lines.
@Suite("Pool events")
struct PoolEventTests {
    typealias Harness = ProducerCoreTests.Harness

    /// Each event as the JSON object its pool-log line holds.
    static func objects(_ events: [PoolEvent], start: PoolTime = .zero) throws -> [[String: Any]] {
        let clock = WallClock(monotonic: .zero, realtimeNanoseconds: 1_764_633_600_000_000_000)  // 2025-12-02
        var bytes: [UInt8] = []
        for event in events { event.appendJSONLine(to: &bytes, wallClock: clock, runStart: start) }
        return try String(decoding: bytes, as: UTF8.self).split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
    }

    @Test(
        "a process reported dead: one worker-lost event with its pid and signal, and one redelivery per task it held, from it to the survivor"
    )
    func deathAndRedelivery() throws {
        var pool = Harness()
        pool.join(1)
        pool.join(2)
        pool.input(6)
        let sent = pool.dispatch()
        let held = sent.filter { $0.worker == 1 }.flatMap(\.ids)
        #expect(!held.isEmpty)
        pool.core.poolEvents.removeAll()
        pool.now = .milliseconds(500)
        let loss = WorkerLoss(process: 1, reason: .died, detail: 9, signalled: true, running: [])
        pool.deliver(WireFormat.encode(loss, supervisor: 50))
        pool.now = .milliseconds(520)
        // The survivor has room again once its own tasks end.
        for id in sent.filter({ $0.worker == 2 }).flatMap(\.ids) { pool.result(id, from: 2) }
        _ = pool.dispatch()

        let lost = pool.core.poolEvents.compactMap { event -> PoolEvent.WorkerLossDetail? in
            if case .workerLost(_, let detail) = event.kind { return detail }
            return nil
        }
        #expect(lost.count == 1)
        #expect(lost.first?.requeued == held.count)
        let redelivered = pool.core.poolEvents.compactMap { event -> PoolEvent.TaskRedelivery? in
            if case .taskRedelivered(let redelivery) = event.kind { return redelivery }
            return nil
        }
        #expect(redelivered.map(\.id).sorted() == held.sorted())
        #expect(redelivered.allSatisfy { $0.fromID == 1 && $0.toID == 2 && $0.reason == .workerLost })
        #expect(redelivered.allSatisfy { abs($0.delaySeconds - 0.02) < 1e-9 }, "from the report to the send")
        #expect(pool.core.logs.contains { $0.message.hasPrefix("W lost: it died with signal 9;") })

        let lines = try Self.objects(pool.core.poolEvents)
        let death = try #require(lines.first { $0["event"] as? String == "worker-lost" })
        #expect(death["cause"] as? String == "died")
        #expect(death["signal"] as? Int == 9)
        #expect((death["worker"] as? [String: Any])?["pid"] as? Int == 1)
        #expect(death["t"] as? Double == 0.5)
        #expect(death["ts"] as? String == "2025-12-02T00:00:00.500Z")
        let again = try #require(lines.first { $0["event"] as? String == "task-redelivered" })
        #expect((again["from"] as? [String: Any])?["id"] as? Int == 1)
        #expect((again["to"] as? [String: Any])?["id"] as? Int == 2)
        #expect(again["reason"] as? String == "worker-lost")
    }

    @Test("rejected messages become at most one pool-log line per reason per tick, with the exact count")
    func rejectionsPerTick() throws {
        var pool = Harness()
        for _ in 0..<2_500 { pool.deliver([0xFF, 0x00, 0x01]) }
        pool.result(1, from: 99)  // a stranger
        pool.core.poolEvents.removeAll()
        pool.core.tick(now: .milliseconds(250))
        pool.core.tick(now: .milliseconds(500))  // nothing new: nothing recorded
        let rejections = pool.core.poolEvents.compactMap { event -> PoolEvent.MessageRejection? in
            if case .messagesRejected(let rejection) = event.kind { return rejection }
            return nil
        }
        #expect(rejections.map(\.reason) == [.malformed, .stranger])
        #expect(rejections.map(\.count) == [2_500, 1])
        #expect(rejections.first?.example?.hasPrefix("rejected a message on the results socket") == true)
        let lines = try Self.objects(pool.core.poolEvents)
        #expect(lines.map { $0["reason"] as? String } == ["malformed", "stranger"])
        #expect(lines.first?["total"] as? Int == 2_500)
    }

    @Test("every kind of event encodes as one JSON object with ts, t and event first, and strings escaped")
    func everyKindEncodes() throws {
        let worker = WorkerInfo(id: 5, name: "Worker-\"1\"", host: "höst\n", pid: 42, threads: 2)
        var summary = RunSummary(
            tasks: 3, succeeded: 2, failed: 1, wallSeconds: 1.5, rejectedMessages: 0, duplicateResults: 0,
            perWorker: [:], workersNotReleased: ["W@h"], workers: [], redeliveries: 1, resumed: 0,
            worstRedeliverySeconds: .infinity)
        summary.workers = [
            WorkerSummary(name: "W", host: "h", pid: 1, tasksDone: 2, tasksFailed: 1, restarts: 0, state: "left")
        ]
        let kinds: [PoolEvent.Kind] = [
            .runStarted(PoolEvent.RunStart(epoch: 9, pid: 7, host: "vm", endpoints: .defaultBind)),
            .workerJoined(worker), .workerLeft(worker, tasks: 3), .workerBack(worker),
            .workerLost(
                worker, .init(cause: .timeLimit(task: 3), reason: "its task 3 exceeded", requeued: 1, charged: 1)),
            .workerLost(worker, .init(cause: .silent(seconds: 3.2), reason: "no heartbeat", requeued: 0, charged: 0)),
            .workerLost(
                worker, .init(cause: .died(signal: nil, exitCode: 3), reason: "exit code 3", requeued: 0, charged: 0)),
            .processRestarted(worker, restarts: 2),
            .taskRedelivered(
                .init(
                    id: 3, name: "t", attempt: 2, reason: .vanished, from: nil, fromID: 8, to: worker, toID: 5,
                    delaySeconds: 0.25)),
            .taskFailed(id: 3, name: "t", status: .timeLimit, reason: "too long"),
            .eventChanged(name: "go", isSet: true, by: "Worker-1"), .eventChanged(name: "go", isSet: false, by: nil),
            .messagesRejected(.init(reason: .forged, count: 2, total: 12, example: nil)),
            .runEnded(summary, cancelled: false),
        ]
        let events = kinds.enumerated().map { PoolEvent(time: .milliseconds(1_000 + $0.offset), kind: $0.element) }
        let lines = try Self.objects(events, start: .milliseconds(1_000))
        #expect(lines.count == kinds.count)
        #expect(
            lines.map { $0["event"] as? String } == [
                "run-started", "worker-joined", "worker-left", "worker-back", "worker-lost", "worker-lost",
                "worker-lost", "process-restarted", "task-redelivered", "task-failed", "event-set", "event-cleared",
                "messages-rejected", "run-ended",
            ])
        for line in lines {
            #expect(line["ts"] is String && line["t"] is Double)
        }
        #expect((lines[1]["worker"] as? [String: Any])?["name"] as? String == "Worker-\"1\"")
        #expect((lines[1]["worker"] as? [String: Any])?["host"] as? String == "höst\n")
        #expect(lines[4]["cause"] as? String == "time-limit" && lines[4]["task"] as? Int == 3)
        #expect(lines[5]["silent_s"] as? Double == 3.2)
        #expect(lines[6]["exit_code"] as? Int == 3 && lines[6]["signal"] == nil)
        #expect((lines[8]["from"] as? [String: Any])?.keys.sorted() == ["id"], "a worker the roster forgot: its id")
        #expect(lines[11]["by"] as? String == "producer")
        let ended = try #require(lines[13]["summary"] as? [String: Any])
        #expect(ended["worst_redelivery_s"] is NSNull)
        #expect((ended["workers"] as? [[String: Any]])?.first?["done"] as? Int == 2)
        // The raw text: the common fields come first, in this order.
        var bytes: [UInt8] = []
        events[0].appendJSONLine(to: &bytes, wallClock: WallClock(), runStart: .milliseconds(1_000))
        #expect(String(decoding: bytes, as: UTF8.self).hasPrefix(#"{"ts":""#))
        #expect(String(decoding: bytes, as: UTF8.self).contains(#"Z","t":0.000,"event":"run-started","#))
    }

    @Test("the wall clock maps pool time to UTC with milliseconds")
    func wallClock() {
        let clock = WallClock(monotonic: .milliseconds(10_000), realtimeNanoseconds: 951_782_400_123_000_000)
        #expect(clock.iso8601(.milliseconds(10_000)) == "2000-02-29T00:00:00.123Z")
        #expect(clock.iso8601(.milliseconds(13_500)) == "2000-02-29T00:00:03.623Z")
        #expect(clock.iso8601(.milliseconds(9_000)) == "2000-02-28T23:59:59.123Z")
    }
}
