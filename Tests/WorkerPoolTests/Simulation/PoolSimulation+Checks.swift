@testable import WorkerPool

extension PoolSimulation {
    /// How long a live task may be held by nobody (lost with a message, a connection, a frozen or
    /// dead process) before the core must have noticed: the ack timeout, the silence timeout, a
    /// tick, the network's delay and some slack.
    var unaccountedLimit: UInt64 {
        ms(configuration.ackTimeoutMilliseconds + configuration.workerTimeoutMilliseconds + 2_000)
    }

    func check() throws {
        if let rule = outcomeFailureOverride ?? outcomeFailure { throw failure(rule) }
        try checkCredit()
        if now >= lastLivenessCheck + ms(100) {
            lastLivenessCheck = now
            try checkNobodyHoldsForLong()
        }
    }

    /// A thread's credit equals the leases it holds, and never goes negative.
    func checkCredit() throws {
        var holding: [PeerKey: Int] = [:]
        var fresh = 0
        var live = 0
        core.leases.forEach { lease in
            live += 1
            if lease.attempt == 0 { fresh += 1 }
            if lease.state != .queued, let holder = lease.holder { holding[holder, default: 0] += 1 }
        }
        guard live == core.leases.count, fresh == core.leases.freshCount else {
            throw failure("lease counts drifted: \(live) live vs \(core.leases.count), \(fresh) fresh vs \(core.leases.freshCount)")
        }
        for peer in core.leases.credit.peers {
            guard peer.outstanding >= 0 else { throw failure("thread \(peer.key) has negative credit use") }
            guard peer.outstanding == holding[peer.key, default: 0] else {
                throw failure(
                    "thread \(peer.key) is charged \(peer.outstanding) tasks but holds \(holding[peer.key, default: 0])")
            }
        }
        guard core.roster.count <= configuration.maxWorkers else {
            throw failure("the roster holds \(core.roster.count) workers, above its bound")
        }
    }

    /// No live task stays with nobody for longer than the timeouts allow.
    func checkNobodyHoldsForLong() throws {
        var accounted = Set<UInt64>()
        for worker in workers.values where worker.alive && !worker.frozen {
            for task in worker.held { accounted.insert(task.id) }
        }
        for event in events.events {
            switch event {
            case .toWorker(let id, let thread, let generation, let bytes):
                guard let worker = workers[id], worker.alive, worker.threads[Int(thread)].generation == generation,
                    let tasks = try? WireFormat.decodeTasks(bytes)
                else { continue }
                for case .task(let record) in tasks { accounted.insert(record.id) }
            case .toProducerResults(let bytes, _, let sentTo) where sentTo == incarnation:
                if case .results(_, let records)? = try? WireFormat.decodeWorkerMessage(bytes) {
                    for record in records { accounted.insert(record.id) }
                }
            default:
                continue
            }
        }
        var overdue: UInt64?
        core.leases.forEach { lease in
            if lease.state == .queued || accounted.contains(lease.id) {
                lastAccounted[lease.id] = now
            } else if let since = lastAccounted[lease.id] {
                if now - since > unaccountedLimit { overdue = lease.id }
            } else {
                lastAccounted[lease.id] = now
            }
        }
        if let overdue { throw failure("task \(overdue) has been held by nobody for longer than the timeouts allow") }
    }

    /// At the end: every task read ended exactly once, across producer restarts.
    func checkEnd() throws {
        guard core.leases.isEmpty else { throw failure("complete with \(core.leases.count) leases open") }
        for id in 1...UInt64(taskCount) {
            let inJournal = journal[id] != nil
            let cancelled = unjournaled[id] != nil
            guard inJournal != cancelled else {
                throw failure("task \(id) ended \(inJournal && cancelled ? "twice" : "never")")
            }
        }
    }
}
