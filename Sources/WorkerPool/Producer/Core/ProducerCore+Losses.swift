/// Workers and tasks lost, found by reports and by the passing of time.
extension ProducerCore {
    /// Time passes: workers whose heartbeats stopped are lost; tasks that never arrived, or that
    /// left their worker without a result, are sent again; after a cancel's grace, what is still
    /// out ends `cancelled`.
    mutating func tick(now: PoolTime) {
        if joinsThisTick > Self.joinsLoggedPerTick {
            logs.append(
                LogLine(
                    level: .warning,
                    message: "\(joinsThisTick - Self.joinsLoggedPerTick) more workers joined than are logged by name; "
                        + "\(roster.count) known, \(roster.forgotten) forgotten to make room"))
        }
        joinsThisTick = 0
        if let deadline = cancelDeadline, now >= deadline, !leases.isEmpty {
            logs.append(
                LogLine(level: .warning, message: "\(leases.count) tasks did not end in time; reporting them cancelled")
            )
            cancelInFlight(reason: "run cancelled before the task ended")
        }
        var holders = Set<UInt32>()
        var vanished: [UInt64] = []
        var overdueIDs: [(id: UInt64, since: PoolTime)] = []
        let ackLimit = PoolTime.milliseconds(configuration.ackTimeoutMilliseconds)
        // One pass over the leases. Tasks seen at the worker that three heartbeats since no longer
        // list, and whose result never came, were lost on the way (a dropped connection, a refused
        // message); tasks never seen there within the ack timeout were lost before they arrived.
        let known = roster
        leases.forEach { lease in
            guard let holder = lease.holder, lease.isOut else { return }
            holders.insert(holder.worker)
            switch lease.state {
            case .started:
                guard let worker = known[holder.worker], !worker.lost else { return }
                if worker.heartbeats >= UInt64(lease.heldSinceHeartbeat) + 3 && !worker.held.contains(lease.id) {
                    vanished.append(lease.id)
                }
            case .dispatched:
                if now.since(lease.dispatchedAt) > ackLimit { overdueIDs.append((lease.id, lease.dispatchedAt)) }
            case .queued, .awaitingRetry:
                return
            }
        }
        let silentLimit = PoolTime.milliseconds(configuration.workerTimeoutMilliseconds)
        // Every known worker (the roster is bounded): one that had threads, or holds tasks, is
        // lost; one that only ever said hello (a stranger's flood, say) is forgotten without a word.
        let silent = roster.live.filter { now.since($0.lastSeen) > silentLimit }
            .map { (id: $0.id, lastSeen: $0.lastSeen, neverReady: $0.links.isEmpty) }
        for worker in silent.sorted(by: { $0.id < $1.id }) {
            if worker.neverReady && !holders.contains(worker.id) {
                roster.forget(worker.id)
            } else {
                workerLost(
                    worker.id, cause: .silent(seconds: now.since(worker.lastSeen).seconds),
                    reason: "no heartbeat for \(silentLimit.seconds) s", loss: nil, lastSign: worker.lastSeen, now: now)
            }
        }
        for id in vanished.sorted() where leases.requeue(id, lostSince: now, reason: .vanished) {
            counters.noteRequeued(.lostInTransit, 1)
            overdue.note(
                .warning, "task \(id) left its worker without a result arriving; sending it again", into: &logs)
        }
        for (id, since) in overdueIDs.sorted(by: { $0.id < $1.id })
        where leases.requeue(id, lostSince: since, reason: .notAcknowledged) {
            counters.noteRequeued(.ackTimeout, 1)
            overdue.note(
                .warning, "task \(id) did not reach its worker within \(ackLimit.seconds) s; sending it again",
                into: &logs)
        }
        noteRejections(now: now)
    }

    /// A worker process is gone: its running tasks are charged an attempt (failing after the
    /// last), everything else it held is sent again.
    mutating func workerLost(
        _ id: UInt32, cause: PoolEvent.WorkerLossDetail.Cause, reason: String, loss: WorkerLoss?, lastSign: PoolTime,
        now: PoolTime
    ) {
        guard var worker = roster[id], !worker.isGone else { return }
        worker.lost = true
        worker.dead = loss != nil
        roster[id] = worker
        roster.becameIdle(id)
        leases.credit.removeAll(ofWorker: id)
        // The process's own report names attempts exactly; a silent death has only the last heartbeat.
        var running: [UInt64] = []
        if let loss {
            for task in loss.running where leases.withLease(task.id, { $0.attempt == task.attempt }) == true {
                running.append(task.id)
            }
        } else {
            running = worker.running
        }
        let culprit = loss?.reason == .timeLimit ? loss?.culprit : nil
        var charged = 0
        for taskID in Set(running).sorted() {
            // The other tasks running beside an overrun one are innocent.
            if let culprit, culprit != taskID { continue }
            guard
                let deaths = leases.withLease(
                    taskID,
                    { lease -> UInt16? in
                        guard lease.holder?.worker == id else { return nil }
                        lease.deaths += 1
                        return lease.deaths
                    }) ?? nil
            else { continue }
            charged += 1
            guard deaths >= configuration.maxAttempts else { continue }
            if culprit == taskID, retryAfterOverrun(taskID, on: id, error: reason, now: lastSign) { continue }
            guard let lease = leases.remove(taskID) else { continue }
            failAfterDeaths(lease, culprit: culprit == taskID, reason: reason, worker: worker, now: now)
        }
        let again = leases.requeueAll(where: { $0.holder?.worker == id }, lostSince: lastSign, reason: .workerLost)
        let lossReason: ProducerCounters.LossReason =
            loss == nil ? .silent : loss?.reason == .timeLimit ? .timeLimit : .died
        counters.workersLost[lossReason.rawValue] &+= 1
        counters.threadsLost &+= UInt64(worker.links.values.reduce(0) { $0 + Int($1.capacity) })
        counters.noteRequeued(loss == nil ? .workerSilent : .processDied, again)
        record(
            .workerLost(
                worker.info, PoolEvent.WorkerLossDetail(cause: cause, reason: reason, requeued: again, charged: charged)
            ),
            now: now)
    }

    private mutating func failAfterDeaths(
        _ lease: Lease, culprit: Bool, reason: String, worker: WorkerRoster.Worker, now: PoolTime
    ) {
        let message: String
        let status: ResultStatus
        if culprit {
            status = .timeLimit
            message =
                "time limit of \(Double(lease.timeLimitMilliseconds) / 1000) s exceeded "
                + "(its process killed \(lease.deaths) of \(configuration.maxAttempts) times, --max-attempts)"
        } else {
            status = .workerDied
            message =
                "the worker process died while running this task, \(lease.deaths) times "
                + "(last: \(reason)); giving up (--max-attempts \(configuration.maxAttempts))"
        }
        record(.taskFailed(id: lease.id, name: lease.name, status: status, reason: message), now: now)
        end(
            TaskOutcome(
                id: lease.id, name: lease.name, status: status, payloadStorage: Array(message.utf8), runMicroseconds: 0,
                worker: worker.info, digest: lease.digest, attempts: lease.failures + 1, deliveries: lease.attempt))
    }

    /// A worker presumed dead speaks again (a cut link came back before its connections timed
    /// out): its threads take work again. What it held was already sent elsewhere; whichever
    /// result arrives first counts.
    mutating func revive(_ id: UInt32, now: PoolTime) {
        guard var worker = roster[id], worker.lost, !worker.dead, !worker.released, worker.goodbyeAfter == nil
        else { return }
        worker.lost = false
        worker.lastSeen = now
        roster[id] = worker
        for link in worker.links.values { leases.addPeer(PeerKey(worker: id, link: link.link), link, now: now) }
        record(.workerBack(worker.info), now: now)
    }

    /// A leaving worker is released once every result it sent has arrived; what it still held
    /// (queued but never started) is sent to others.
    mutating func releaseIfComplete(_ id: UInt32, now: PoolTime) {
        guard var worker = roster[id], let expected = worker.goodbyeAfter, worker.resultsReceived >= expected
        else { return }
        if !worker.released {
            record(.workerLeft(worker.info, tasks: worker.tasksDone + worker.tasksFailed), now: now)
            worker.released = true
            roster[id] = worker
            roster.becameIdle(id)
            let again = leases.requeueAll(where: { $0.holder?.worker == id }, lostSince: now, reason: .workerLeft)
            counters.workersLeft &+= 1
            counters.threadsLeft &+= UInt64(worker.links.values.reduce(0) { $0 + Int($1.capacity) })
            counters.noteRequeued(.workerLeft, again)
            if again > 0 {
                logs.append(
                    LogLine(
                        level: .info, message: "\(again) tasks \(worker.name) had not started are sent to other workers"
                    ))
            }
        }
        releasable.append(id)
    }
}
