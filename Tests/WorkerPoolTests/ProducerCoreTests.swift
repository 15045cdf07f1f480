import Testing

@testable import WorkerPool

/// The core's rules one at a time, each driven by hand (the simulation drives them all at once).
@Suite("Producer core")
struct ProducerCoreTests {
    struct Harness {
        var core: ProducerCore
        var writer = WireFormat.MessageWriter(kind: .tasks, epoch: 7)
        var now = PoolTime.milliseconds(1)

        init(configure: (inout ProducerConfiguration) -> Void = { _ in }) {
            var configuration = ProducerConfiguration()
            configure(&configuration)
            core = ProducerCore(configuration: configuration, epoch: 7, now: .zero)
        }

        static func hello(supervisor: UInt32 = 50, threads: UInt16 = 1) -> WorkerHello {
            WorkerHello(pid: 1, threads: threads, supervisor: supervisor, name: "W", host: "h")
        }

        /// A worker process of `threads` threads behind one link that said hello and `ready`, under `key`.
        mutating func join(_ worker: UInt32, supervisor: UInt32 = 50, key: UInt32 = 0, threads: UInt16 = 1) {
            let message = TaskChannelMessage.ready(
                sender: worker, link: TaskLinkInfo(capacity: threads),
                hello: Self.hello(supervisor: supervisor, threads: threads))
            PeerKey(worker: worker, link: 0).identity.withUnsafeBytes {
                core.ready(identity: $0, message, key: key, now: now)
            }
        }

        mutating func input(_ count: Int) {
            for id in 1...UInt64(count) {
                core.input(TaskFeed.Entry(id: id, item: .task(name: "multiply", payload: Array("{}".utf8))), now: now)
            }
            core.endInput()
        }

        /// Sends what the core wants sent; returns (worker, task ids) per message.
        mutating func dispatch() -> [(worker: UInt32, ids: [UInt64])] {
            var sent: [(UInt32, [UInt64])] = []
            while let identity = core.nextDispatch(now: now, into: &writer) {
                let bytes = writer.withFinishedBytes { Array($0) }
                let ids = ((try? WireFormat.decodeTasks(bytes)) ?? []).compactMap { item -> UInt64? in
                    if case .task(let record) = item { return record.id }
                    return nil
                }
                sent.append((identity.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }, ids))
            }
            return sent
        }

        mutating func result(_ id: UInt64, from worker: UInt32, key: UInt32 = 0) {
            let bytes = WireFormat.encode(
                [ResultRecord(id: id, attempt: 1, status: .ok, payload: Array("1".utf8))], sender: worker, epoch: 7)
            deliver(bytes, key: key)
        }

        mutating func deliver(_ bytes: [UInt8], key: UInt32 = 0) {
            bytes.withUnsafeBytes { core.receive($0, key: key, now: now) }
        }

        var ended: [UInt64] { core.outcomes.map(\.id) }
    }

    @Test("only the worker a task was sent to may end it; a queued task can be ended by nobody")
    func onlyTheRecipientEnds() {
        var pool = Harness()
        pool.join(1)
        pool.join(2)
        pool.input(4)
        pool.result(1, from: 1)  // before anything was sent
        #expect(pool.ended.isEmpty)
        let sent = pool.dispatch()
        let toFirst = sent.filter { $0.worker == 1 }.flatMap(\.ids)
        let toSecond = sent.filter { $0.worker == 2 }.flatMap(\.ids)
        #expect(!toFirst.isEmpty && !toSecond.isEmpty, "two idle threads share the work")
        pool.result(toFirst[0], from: 2)
        #expect(pool.ended.isEmpty, "another known worker cannot end it")
        #expect(pool.core.forged.count == 2, "both refusals are counted")
        pool.result(toFirst[0], from: 1)
        pool.result(toFirst[0], from: 1)
        #expect(pool.ended == [toFirst[0]], "the recipient ends it, once")
        #expect(pool.core.duplicates == 1)
    }

    @Test(
        "outcomes that share their results message each read their own payload, and keep it after the message is gone",
        arguments: [false, true])
    func sharedResultMessages(shared: Bool) {
        var harness = Harness { $0.sharesResultMessages = shared }
        harness.join(1)
        harness.input(4)
        #expect(harness.dispatch().flatMap(\.ids) == [1, 2, 3, 4])
        // Payloads of different lengths, one empty, in one message.
        let payloads = [#""first""#, "", "[1,2,3]", #"{"k":"v"}"#]
        var bytes = WireFormat.encode(
            (1...4).map {
                ResultRecord(id: UInt64($0), attempt: 1, status: .ok, payload: Array(payloads[$0 - 1].utf8))
            },
            sender: 1, epoch: 7)
        harness.deliver(bytes)
        // The received bytes scribbled over in place: the outcomes must not read them.
        bytes.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: 0xFF) }
        let outcomes = harness.core.outcomes
        #expect(outcomes.map(\.id) == [1, 2, 3, 4])
        for (outcome, payload) in zip(outcomes, payloads) {
            #expect(outcome.payload == Array(payload.utf8))
            #expect(outcome.payloadCount == payload.utf8.count)
            #expect(outcome.withPayload { Array($0) } == Array(payload.utf8))
            var line: [UInt8] = []
            outcome.appendJSONLine(to: &line)
            let text = String(decoding: line, as: UTF8.self)
            if !payload.isEmpty { #expect(text.contains(#""result":\#(payload),"#), "\(text)") }
        }
        var replaced = outcomes[0]
        replaced.payload = Array("42".utf8)
        #expect(replaced.payload == Array("42".utf8) && replaced.payloadCount == 2)
    }

    @Test("a link feeding many threads gets their share of the work in one message, and credit for each")
    func linkCapacity() {
        var pool = Harness()
        pool.join(1, threads: 25)
        pool.join(2, threads: 1)
        pool.input(26)
        let sent = pool.dispatch()
        let toMany = sent.filter { $0.worker == 1 }
        let toOne = sent.filter { $0.worker == 2 }
        #expect(toMany.count == 1, "one message for the 25 threads")
        #expect(toMany.first?.ids.count == 25, "a share by threads: \(sent.map(\.ids.count))")
        #expect(toOne.flatMap(\.ids).count == 1)
    }

    @Test("a link's window is a task or more for each thread, and more for results it holds back")
    func linkWindow() {
        let now = PoolTime.zero
        var slow = Peer(key: PeerKey(worker: 1, link: 0), TaskLinkInfo(capacity: 25), now: now)
        for _ in 0..<50 { slow.observe(runMicroseconds: 10_000, tripMicroseconds: 2_000, now: now) }
        let window = slow.window(prefetchMicroseconds: 5_000, maximum: 1_000)
        #expect(window == 25, "10 ms tasks, 5 ms ahead: one a thread (\(window))")
        var batching = Peer(
            key: PeerKey(worker: 3, link: 0), TaskLinkInfo(capacity: 25, resultDelayMicroseconds: 10_000), now: now)
        for _ in 0..<50 { batching.observe(runMicroseconds: 10_000, tripMicroseconds: 2_000, now: now) }
        let batchingWindow = batching.window(prefetchMicroseconds: 5_000, maximum: 1_000)
        #expect(batchingWindow >= window + 25, "a link that holds results 10 ms is sent 10 ms more: \(batchingWindow)")
        var fast = Peer(key: PeerKey(worker: 2, link: 0), TaskLinkInfo(capacity: 2), now: now)
        for _ in 0..<50 { fast.observe(runMicroseconds: 1, tripMicroseconds: 100, now: now) }
        #expect(fast.window(prefetchMicroseconds: 5_000, maximum: 1_000) == 2_000, "capped per thread")
    }

    @Test("a sender that never said hello creates no state, ends nothing and earns no credit")
    func strangersCostNothing() {
        var pool = Harness()
        pool.input(3)
        for stranger in UInt32(100)..<200 {
            pool.result(1, from: stranger)
            pool.deliver(
                WireFormat.encode(
                    WorkerHeartbeat(tasksDone: 0, tasksFailed: 0, restarts: 0, held: []), sender: stranger, epoch: 7))
        }
        #expect(pool.core.roster.count == 0)
        #expect(pool.core.strangers.count == 200)
        #expect(pool.dispatch().isEmpty, "nobody to send to")
        #expect(pool.ended.isEmpty)
    }

    @Test("a full roster forgets the longest idle worker for a new hello, never one at work")
    func boundedRoster() {
        var pool = Harness { $0.maxWorkers = 3 }
        pool.join(1)
        pool.join(2)
        pool.deliver(WireFormat.encode(Harness.hello(), sender: 3))  // said hello, no thread: idle
        pool.deliver(WireFormat.encode(Harness.hello(), sender: 4))
        #expect(pool.core.roster[3] == nil && pool.core.roster[4] != nil, "the idle one made room")
        pool.join(5)
        #expect(pool.core.roster[4] == nil && pool.core.roster[5] != nil)
        pool.deliver(WireFormat.encode(Harness.hello(), sender: 6))
        #expect(pool.core.roster[6] == nil, "every known worker is at work: refused")
        #expect(pool.core.roster.count == 3)
    }

    @Test("a death counts only when the process's own supervisor reports it, under its key")
    func lossReportsFromTheSupervisorOnly() {
        var pool = Harness()
        pool.join(1, supervisor: 50, key: 1)
        pool.join(2, supervisor: 60, key: 2)
        pool.input(2)
        let sent = pool.dispatch()
        #expect(sent.count == 2)
        let loss = WorkerLoss(process: 1, reason: .died, detail: 9, signalled: true, running: [])
        pool.deliver(WireFormat.encode(loss, supervisor: 60), key: 2)  // another supervisor
        pool.deliver(WireFormat.encode(loss, supervisor: 50), key: 2)  // its supervisor's id, another key
        #expect(pool.core.roster[1]?.lost == false)
        #expect(pool.core.refusedLossReports.count == 2)
        pool.deliver(WireFormat.encode(loss, supervisor: 50), key: 1)
        #expect(pool.core.roster[1]?.lost == true)
        #expect(pool.dispatch().flatMap(\.ids) == sent.first { $0.worker == 1 }?.ids, "its task goes to the other")
    }

    @Test("a sender id bound to one key is refused under another")
    func senderBoundToKey() {
        var pool = Harness()
        pool.join(1, key: 1)
        pool.input(1)
        let sent = pool.dispatch()
        pool.result(sent[0].ids[0], from: 1, key: 2)
        #expect(pool.ended.isEmpty)
        pool.result(sent[0].ids[0], from: 1, key: 1)
        #expect(pool.ended == sent[0].ids)
    }
}
