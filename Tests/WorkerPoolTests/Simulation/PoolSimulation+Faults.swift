@testable import WorkerPool

extension PoolSimulation {
    var liveWorkers: [Worker] { workers.values.filter(\.alive).sorted { $0.id < $1.id } }

    func injectFault() {
        let live = liveWorkers
        guard let victim = live.isEmpty ? nil : live[random.int(0...live.count - 1)] else { return }
        switch random.int(0...9) {
        case 0, 1:
            kill(victim, reported: true, culprit: nil)
        case 2:
            // A machine dies with its supervisor: nobody reports it; another machine joins later.
            kill(victim, reported: false, culprit: nil)
            let supervisor = UInt32(truncatingIfNeeded: random.next()) | 1
            events.push(.spawn(supervisor: supervisor, key: victim.key), at: now + ms(random.int(100...4_000)))
        case 3:
            victim.frozen = true
            faultsInjected["freezes", default: 0] += 1
            events.push(.thaw(worker: victim.id), at: now + ms(random.int(500...6_000)))
        case 4, 5:
            let thread = random.int(0...victim.threads.count - 1)
            victim.threads[thread].connected = false
            victim.threads[thread].generation += 1
            faultsInjected["dropped connections", default: 0] += 1
            events.push(.reconnect(worker: victim.id, thread: UInt16(thread)), at: now + ms(random.int(5...800)))
        case 6:
            forgeResults(posingAs: victim)
        case 7:
            forgeLossReport(of: victim)
        case 8:
            floodHellos()
        default:
            break
        }
    }

    /// Results for open tasks from senders that were never sent them: a made-up id, and a real
    /// worker's id under another key (what an allowlisted but hostile worker would try).
    func forgeResults(posingAs victim: Worker) {
        faultsInjected["forged results", default: 0] += 1
        let open = core.leases.ids(where: { _ in true })
        guard !open.isEmpty else { return }
        let records = (0..<min(8, open.count)).map { _ in
            ResultRecord(id: open[random.int(0...open.count - 1)], attempt: 1, status: .ok, payload: Self.forgedPayload)
        }
        let stranger = UInt32(truncatingIfNeeded: random.next()) | 1
        forgedSent += 2 * records.count
        deliverToProducer(WireFormat.encode(records, sender: stranger, epoch: core.epoch), key: victim.key)
        deliverToProducer(WireFormat.encode(records, sender: victim.id, epoch: core.epoch), key: 999)
        // A real worker, under its own id and key, claiming tasks it was never sent.
        let notSent = open.filter { !sent.contains([$0, UInt64(victim.id)]) }
        if !notSent.isEmpty {
            let claims = notSent.prefix(8).map {
                ResultRecord(id: $0, attempt: 1, status: .ok, payload: Self.forgedPayload)
            }
            forgedSent += claims.count
            deliverToProducer(WireFormat.encode(Array(claims), sender: victim.id, epoch: core.epoch), key: victim.key)
        }
        // Everything else a stranger might send: none of it may change anything.
        let request = EventRequest(.set, "stranger")
        deliverToProducer(WireFormat.encode(request, sender: stranger), key: victim.key)
        deliverToProducer(
            WireFormat.encode(
                WorkerHeartbeat(
                    tasksDone: 9, tasksFailed: 0, restarts: 0,
                    held: open.prefix(4).map { HeldTask(id: $0, running: true) }),
                sender: stranger, epoch: core.epoch), key: victim.key)
        deliverToProducer(WireFormat.encode(WorkerGoodbye(resultsSent: 0), sender: stranger, epoch: core.epoch), key: 0)
        deliverToProducer(
            WireFormat.encode(
                started: open.prefix(4).map { TaskAttempt(id: $0, attempt: 1) }, sender: stranger, epoch: core.epoch),
            key: 0)
        if !core.eventRequests.isEmpty { outcomeFailureOverride = "a stranger's event request was taken" }
        if core.roster[stranger] != nil { outcomeFailureOverride = "a stranger got a place in the roster" }
    }

    /// A report that `victim` died, from a sender that is not its supervisor: it must change nothing.
    func forgeLossReport(of victim: Worker) {
        faultsInjected["forged loss reports", default: 0] += 1
        let wasLost = core.roster[victim.id]?.lost
        let loss = WorkerLoss(process: victim.id, reason: .died, detail: 9, signalled: true, running: [])
        deliverToProducer(WireFormat.encode(loss, supervisor: victim.supervisor &+ 1), key: victim.key)
        deliverToProducer(WireFormat.encode(loss, supervisor: victim.supervisor), key: 999)
        if core.roster[victim.id]?.lost != wasLost {
            outcomeFailureOverride = "a forged loss report marked \(victim.id) lost"
        }
    }

    /// Hellos under made-up ids: the roster stays within its bound and keeps the workers at work.
    func floodHellos() {
        faultsInjected["hello floods", default: 0] += 1
        for _ in 0..<random.int(1...40) {
            let id = UInt32(truncatingIfNeeded: random.next()) | 1
            let hello = WorkerHello(pid: 1, threads: 1, name: "stranger", host: "x")
            deliverToProducer(WireFormat.encode(hello, sender: id), key: 0)
        }
    }

    /// The producer crashes and starts again with the same input and journal; what it had not
    /// yet made durable is lost, and the workers reconnect to the new run.
    func restartProducer() {
        guard !core.inputCancelled else { return }
        faultsInjected["producer restarts", default: 0] += 1
        if random.chance(0.5) { commit() }
        uncommitted.removeAll()
        incarnation += 1
        let epoch = UInt32(incarnation + 1)
        core = ProducerCore(configuration: configuration, epoch: epoch, now: poolNow)
        writer = WireFormat.MessageWriter(kind: .tasks, epoch: epoch)
        nextInput = 1
        lastAccounted.removeAll()
        retryLedger = RetryLedger()
        for worker in liveWorkers {
            sendToProducer(WireFormat.encode(worker.hello, sender: worker.id), key: worker.key)
            for thread in worker.threads.indices {
                worker.threads[thread].connected = false
                worker.threads[thread].generation += 1
                events.push(.reconnect(worker: worker.id, thread: UInt16(thread)), at: now + ms(random.int(1...300)))
            }
        }
    }
}
