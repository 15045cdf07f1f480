import Testing

@testable import WorkerPool

/// Retries of failed attempts, one rule at a time, with time passed in by hand.
@Suite("Producer core: retries")
struct ProducerCoreRetryTests {
    typealias Harness = ProducerCoreTests.Harness

    /// One sent task, as a worker receives it.
    struct Sent: Equatable {
        var worker: UInt32
        var id: UInt64
        var attempt: UInt16
    }

    /// A pool of `workers` one-thread workers with one task (which may set its own retries).
    static func pool(
        workers: [UInt32] = [1, 2], retries: UInt16 = 2, taskRetries: UInt16? = nil, backoffMilliseconds: UInt32 = 100,
        configure: (inout ProducerConfiguration) -> Void = { _ in }
    ) -> Harness {
        var pool = Harness {
            $0.retries = retries
            $0.retryBackoffMilliseconds = backoffMilliseconds
            configure(&$0)
        }
        for worker in workers { pool.join(worker, supervisor: 50 + worker) }
        pool.core.input(
            TaskFeed.Entry(id: 1, item: .task(name: "job", payload: Array("{}".utf8), retries: taskRetries)),
            now: pool.now)
        pool.core.endInput()
        return pool
    }

    static func send(_ pool: inout Harness) -> [Sent] {
        var sent: [Sent] = []
        while let identity = pool.core.nextDispatch(now: pool.now, into: &pool.writer) {
            let worker = identity.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
            for case .task(let record) in (try? WireFormat.decodeTasks(pool.writer.withFinishedBytes { Array($0) }))
                ?? []
            {
                sent.append(Sent(worker: worker, id: record.id, attempt: record.attempt))
            }
        }
        return sent
    }

    static func report(
        _ pool: inout Harness, _ sent: Sent, _ status: ResultStatus, _ message: String = "it broke", from: UInt32? = nil
    ) {
        let record = ResultRecord(
            id: sent.id, attempt: sent.attempt, status: status,
            payload: Array((status == .ok ? "\"done\"" : message).utf8))
        pool.deliver(WireFormat.encode([record], sender: from ?? sent.worker, epoch: 7))
    }

    static func advance(_ pool: inout Harness, milliseconds: Int) { pool.now = pool.now + .milliseconds(milliseconds) }

    @Test("a failed attempt waits out its backoff, then runs on another worker; the outcome says 3 attempts")
    func failTwiceThenSucceed() throws {
        var pool = Self.pool()
        let first = try #require(Self.send(&pool).first)
        Self.report(&pool, first, .failed)
        #expect(pool.core.outcomes.isEmpty, "a failure with retries left does not end the task")
        #expect(Self.send(&pool).isEmpty, "not sent again before its backoff")
        Self.advance(&pool, milliseconds: 99)
        #expect(Self.send(&pool).isEmpty, "the backoff is at least the base, 100 ms")
        Self.advance(&pool, milliseconds: 52)
        let second = try #require(Self.send(&pool).first, "within the base and half again as jitter")
        #expect(second.worker != first.worker && second.attempt == 2, "another worker, told it is attempt 2")
        Self.report(&pool, second, .failed, "broke again")
        Self.advance(&pool, milliseconds: 199)
        #expect(Self.send(&pool).isEmpty, "the second backoff doubles to 200 ms")
        Self.advance(&pool, milliseconds: 102)
        let third = try #require(Self.send(&pool).first)
        #expect(third.worker != second.worker && third.attempt == 3)
        Self.report(&pool, third, .ok)
        let outcome = try #require(pool.core.outcomes.first)
        #expect(pool.core.outcomes.count == 1 && outcome.status == .ok)
        #expect(outcome.attempts == 3 && outcome.deliveries == 3)
        #expect(pool.core.summary(now: pool.now).retries == 2 && pool.core.summary(now: pool.now).redeliveries == 0)
        #expect(pool.core.isComplete)
    }

    @Test("a task that always fails ends after retries + 1 attempts, with the last error")
    func retriesExhausted() throws {
        var pool = Self.pool(retries: 3, backoffMilliseconds: 10)
        for attempt in 1...4 {
            let sent = try #require(Self.send(&pool).first, "attempt \(attempt) is sent")
            #expect(sent.attempt == UInt16(attempt))
            Self.report(&pool, sent, .failed, "failure \(attempt)")
            Self.advance(&pool, milliseconds: 1_000)
        }
        #expect(Self.send(&pool).isEmpty, "no fifth attempt")
        let outcome = try #require(pool.core.outcomes.first)
        #expect(pool.core.outcomes.count == 1)
        #expect(outcome.status == .failed && outcome.message == "failure 4" && outcome.attempts == 4)
    }

    @Test(
        "failures that would fail the same way again end at once, retries or not",
        arguments: [ResultStatus.unknownTask, .badArguments, .malformed, .tooLarge, .workerDied])
    func permanentFailures(status: ResultStatus) throws {
        var pool = Self.pool(retries: 5)
        let sent = try #require(Self.send(&pool).first)
        Self.report(&pool, sent, status)
        #expect(pool.core.outcomes.map(\.status) == [status])
        #expect(pool.core.outcomes.first?.attempts == 1)
        #expect(pool.core.summary(now: pool.now).retries == 0)
    }

    @Test("with one worker the retry runs there: another worker is preferred, not required")
    func oneWorkerStillRetries() throws {
        var pool = Self.pool(workers: [1], retries: 1)
        let first = try #require(Self.send(&pool).first)
        Self.report(&pool, first, .failed)
        Self.advance(&pool, milliseconds: 200)
        let second = try #require(Self.send(&pool).first)
        #expect(second.worker == 1 && second.attempt == 2)
    }

    @Test("a task line's retries overrides --retries, both ways")
    func perTaskRetries() throws {
        var none = Self.pool(retries: 3, taskRetries: 0)
        Self.report(&none, try #require(Self.send(&none).first), .failed)
        #expect(none.core.outcomes.map(\.status) == [.failed], "\"retries\": 0 ends at the first failure")

        var some = Self.pool(retries: 0, taskRetries: 1)
        Self.report(&some, try #require(Self.send(&some).first), .failed)
        #expect(some.core.outcomes.isEmpty, "\"retries\": 1 without --retries is retried")
        Self.advance(&some, milliseconds: 200)
        Self.report(&some, try #require(Self.send(&some).first), .failed)
        #expect(some.core.outcomes.map(\.attempts) == [2])
    }

    @Test("lost work sent again is not charged a retry; the outcome counts the deliveries apart")
    func redeliveryIsNotARetry() throws {
        var pool = Self.pool(workers: [1], retries: 1)
        let first = try #require(Self.send(&pool).first)
        pool.join(1, supervisor: 51)  // the thread reconnected: what it was sent is lost
        let again = try #require(Self.send(&pool).first, "sent again at once, no backoff")
        #expect(again.attempt == 2)
        #expect(pool.core.leases.lease(1)?.failures == 0)
        Self.report(&pool, first, .failed, "the lost attempt ran after all")
        #expect(
            pool.core.outcomes.isEmpty && pool.core.leases.lease(1)?.failures == 0,
            "an earlier attempt's failure is dropped")
        Self.report(&pool, again, .ok)
        let outcome = try #require(pool.core.outcomes.first)
        #expect(outcome.attempts == 1 && outcome.deliveries == 2)
        #expect(outcome.jsonLine.contains(#""deliveries":2"#) && !outcome.jsonLine.contains("attempts"))
    }

    @Test("without retries any failure from a worker it was sent to ends the task, as before")
    func noRetriesIsUnchanged() throws {
        var pool = Self.pool(workers: [1], retries: 0)
        let first = try #require(Self.send(&pool).first)
        pool.join(1, supervisor: 51)
        _ = Self.send(&pool)
        Self.report(&pool, first, .failed, "the first attempt's failure")
        #expect(pool.core.outcomes.map(\.message) == ["the first attempt's failure"])
        #expect(!pool.core.outcomes[0].jsonLine.contains("attempts"))
    }

    @Test("a duplicate of a failure already charged changes nothing; a success while waiting ends the task")
    func duplicatesAndLateSuccess() throws {
        var pool = Self.pool(retries: 1)
        let first = try #require(Self.send(&pool).first)
        Self.report(&pool, first, .failed)
        Self.report(&pool, first, .failed)
        #expect(pool.core.outcomes.isEmpty && pool.core.leases.lease(1)?.failures == 1)
        Self.report(&pool, first, .ok)
        #expect(pool.core.outcomes.map(\.status) == [.ok], "a success ends it, whichever attempt it belongs to")
        Self.advance(&pool, milliseconds: 1_000)
        #expect(Self.send(&pool).isEmpty, "its retry timer is dropped")
        #expect(pool.core.isComplete)
    }

    @Test("Ctrl-C while a task waits for its retry ends it cancelled at once, once; a failure after it too")
    func cancelWhileWaiting() throws {
        var pool = Harness {
            $0.retries = 2
            $0.retryBackoffMilliseconds = 100
        }
        pool.join(1)
        pool.join(2, supervisor: 52)
        pool.input(2)
        let sent = Self.send(&pool)
        #expect(sent.count == 2)
        Self.report(&pool, sent[0], .failed)
        pool.core.cancelInput(unread: [], now: pool.now)
        #expect(pool.core.outcomes.map(\.status) == [.cancelled])
        #expect(pool.core.outcomes.first?.attempts == 1, "one attempt came to an end")
        Self.report(&pool, sent[1], .failed, "failed in the grace")
        #expect(pool.core.outcomes.map(\.status) == [.cancelled, .cancelled])
        #expect(pool.core.outcomes.last?.message.contains("failed in the grace") == true, "the last error is kept")
        Self.advance(&pool, milliseconds: 10_000)
        pool.core.tick(now: pool.now)
        #expect(Self.send(&pool).isEmpty && pool.core.outcomes.count == 2 && pool.core.isComplete)
    }

    @Test("a time limit's verdict is charged a retry; the retry's deaths count from zero")
    func timeLimitRetried() throws {
        var pool = Self.pool(workers: [1, 2], retries: 1) { $0.maxAttempts = 1 }
        let first = try #require(Self.send(&pool).first)
        let loss = WorkerLoss(
            process: first.worker, reason: .timeLimit, detail: 9, signalled: true, culprit: 1,
            running: [TaskAttempt(id: 1, attempt: first.attempt)])
        pool.deliver(WireFormat.encode(loss, supervisor: 50 + first.worker))
        #expect(pool.core.outcomes.isEmpty && pool.core.leases.lease(1)?.deaths == 0)
        #expect(Self.send(&pool).isEmpty, "it waits out its backoff")
        Self.advance(&pool, milliseconds: 200)
        let second = try #require(Self.send(&pool).first)
        #expect(second.worker != first.worker)
        let again = WorkerLoss(
            process: second.worker, reason: .timeLimit, detail: 9, signalled: true, culprit: 1,
            running: [TaskAttempt(id: 1, attempt: second.attempt)])
        pool.deliver(WireFormat.encode(again, supervisor: 50 + second.worker))
        let outcome = try #require(pool.core.outcomes.first)
        #expect(outcome.status == .timeLimit && outcome.attempts == 2)
    }

    @Test("retries cost the hot path no copying: a lease stays 128 bytes, an input entry 80")
    func sizes() {
        // Above these sizes Swift copies and swaps them with memcpy: +270 instructions per task.
        #expect(MemoryLayout<Lease>.size <= 128)
        #expect(MemoryLayout<TaskFeed.Entry>.size <= 80)
    }

    @Test("the backoff doubles up to its cap, plus at most half again, the same for the same task and run")
    func backoffSchedule() {
        let pool = Self.pool { $0.retryBackoffCapMilliseconds = 500 }
        let core = pool.core
        for failures: UInt16 in 1...6 {
            let nominal = min(100 << (Int(failures) - 1), 500)
            for id: UInt64 in 1...50 {
                let wait = core.retryDelay(afterFailure: failures, id: id).nanoseconds
                #expect(wait >= UInt64(nominal) * 1_000_000 && wait <= UInt64(nominal) * 1_500_000)
                #expect(wait == core.retryDelay(afterFailure: failures, id: id).nanoseconds)
            }
        }
        let spread = Set((1...50).map { core.retryDelay(afterFailure: 1, id: UInt64($0)).nanoseconds })
        #expect(spread.count > 40, "jitter spreads tasks that failed together")
        let immediate = Self.pool(backoffMilliseconds: 0).core
        #expect(immediate.retryDelay(afterFailure: 3, id: 1) == .zero)
    }
}
