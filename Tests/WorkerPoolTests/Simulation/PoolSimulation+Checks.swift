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
        var failures = 0
        var overcharged: UInt64?
        core.leases.forEach { lease in
            live += 1
            if lease.attempt == 0 { fresh += 1 }
            if lease.isOut, let holder = lease.holder { holding[holder, default: 0] += 1 }
            failures += Int(lease.failures)
            if lease.failures > lease.retries { overcharged = lease.id }
        }
        try checkRetriesCharged(failures: failures, overcharged: overcharged)
        guard live == core.leases.count, fresh == core.leases.freshCount else {
            throw failure(
                "lease counts drifted: \(live) live vs \(core.leases.count), \(fresh) fresh vs \(core.leases.freshCount)"
            )
        }
        for peer in core.leases.credit.peers {
            guard peer.outstanding >= 0 else { throw failure("thread \(peer.key) has negative credit use") }
            guard peer.outstanding == holding[peer.key, default: 0] else {
                throw failure(
                    "thread \(peer.key) is charged \(peer.outstanding) tasks but holds \(holding[peer.key, default: 0])"
                )
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
        // A new attempt went through the queue since the last look: its clock starts again.
        core.leases.forEach { lease in
            if !lease.isOut || accounted.contains(lease.id) {
                lastAccounted[lease.id] = (now, lease.attempt)
            } else if let (since, attempt) = lastAccounted[lease.id], attempt == lease.attempt {
                if now - since > unaccountedLimit { overdue = lease.id }
            } else {
                lastAccounted[lease.id] = (now, lease.attempt)
            }
        }
        if let overdue, let lease = core.leases.lease(overdue) {
            let holder = lease.holder.flatMap { core.roster[$0.worker] }
            let truth = lease.holder.flatMap { workers[$0.worker] }
            throw failure(
                "task \(overdue) has been held by nobody for longer than the timeouts allow: state \(lease.state), "
                    + "attempt \(lease.attempt), holder \(String(describing: lease.holder)) "
                    + "(roster: lost \(String(describing: holder?.lost)), last seen \(String(describing: holder?.lastSeen.seconds)), "
                    + "heartbeats \(String(describing: holder?.heartbeats)), held since \(lease.heldSinceHeartbeat), lists it "
                    + "\(String(describing: holder?.held.contains(overdue)))); sim worker alive \(String(describing: truth?.alive)) "
                    + "frozen \(String(describing: truth?.frozen)), dispatched at \(lease.dispatchedAt.seconds)")
        }
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
            // A task that kills its process every time, or always overruns its limit, fails for
            // that reason after the allowed attempts, not by looping until it is given up.
            guard let status = journal[id]?.status, let nature = natures[id] else { continue }
            if nature.poison && status != .workerDied {
                throw failure("poison task \(id) ended \(status), not worker-died")
            }
            // (Its last attempt may have died with its process for another reason: worker-died.)
            if !nature.poison, let limit = nature.timeLimitMilliseconds, nature.runMilliseconds > limit,
                status != .timeLimit && status != .workerDied
            {
                throw failure("task \(id) always overruns its limit but ended \(status), not time-limit")
            }
            try checkRetriedEnough(id, nature: nature)
        }
    }
}
