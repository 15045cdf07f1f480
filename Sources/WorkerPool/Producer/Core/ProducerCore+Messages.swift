/// Messages from workers. `key` is the CURVE key the message came under (an index into the
/// caller's key table; 0 in plaintext): a worker is bound to the key of its first hello.
extension ProducerCore {
    /// A task link's `ready` on the tasks socket (new, or reconnected: what it had not yet been
    /// seen holding was lost with the old connection). It carries the process's hello.
    mutating func ready(identity: UnsafeRawBufferPointer, _ message: TaskChannelMessage, key: UInt32, now: PoolTime) {
        guard case .ready(let sender, let link, let hello) = message else { return }
        let peer = PeerKey(worker: sender, link: link.link)
        guard peer.isIdentity(identity) else {
            rejected.note(.warning, "rejected a ready message whose routing id does not match its sender", into: &logs)
            return
        }
        guard admit(hello, from: sender, key: key, now: now) else { return }
        guard let worker = roster[sender], !worker.released, worker.goodbyeAfter == nil else { return }
        roster[sender]?.links[link.link] = link
        if worker.lost { revive(sender, now: now) }
        guard roster[sender]?.lost == false else { return }  // reported dead: cannot come back
        let known = leases.credit.contains(peer)
        leases.addPeer(peer, link, now: now)
        let lost = leases.requeueAll(
            where: { $0.holder == peer && $0.state == .dispatched }, lostSince: now, reason: .reconnected)
        if known { counters.threadsReconnected &+= 1 } else { counters.threadsJoined &+= 1 }
        counters.noteRequeued(.reconnected, lost)
        if lost > 0 {
            let what = known ? "reconnected" : "is back"
            logs.append(
                LogLine(level: .info, message: "\(roster.name(of: sender)) \(what); \(lost) tasks sent again"))
        }
    }

    /// Records a hello; false (logged) when it is refused.
    private mutating func admit(_ hello: WorkerHello, from sender: UInt32, key: UInt32, now: PoolTime) -> Bool {
        switch roster.hello(hello, from: sender, key: key, now: now) {
        case .known:
            return true
        case .joined:
            counters.workersJoined &+= 1
            // A flood of hellos must not flood the log: a few joins a tick by name, the rest counted.
            joinsThisTick += 1
            if joinsThisTick <= Self.joinsLoggedPerTick, let worker = roster[sender] {
                record(.workerJoined(worker.info), now: now)
            }
            return true
        case .wrongKey:
            strangers.note(
                .warning, "refused a hello for \(roster.name(of: sender)) under another worker's key", into: &logs)
            return false
        case .full:
            strangers.note(
                .warning, "refused a hello: \(roster.capacity) workers known and all at work (--max-workers)",
                into: &logs)
            return false
        }
    }

    /// The worker `sender` under `key`, or nil (counted as a stranger) when it never said hello
    /// or is bound to another key.
    private mutating func known(_ sender: UInt32, key: UInt32, _ what: @autoclosure () -> String) -> Bool {
        if let worker = roster[sender], worker.key == key { return true }
        strangers.note(
            .warning, "dropped \(what()) from a sender that never said hello, or not under its own key (\(sender))",
            into: &logs)
        return false
    }

    /// One message from the results socket, as received: results are read in place (the hot
    /// path, no copy of a payload nobody reads), everything else decoded. A message that does not
    /// decode is rejected, logged (rate-limited) and counted; it changes nothing.
    mutating func receive(_ bytes: UnsafeRawBufferPointer, key: UInt32, now: PoolTime) {
        do {
            let header = try MessageHeader.decode(bytes)
            if header.kind == .results {
                try WireFormat.readResults(bytes, header: header, into: &resultViews)
                results(resultViews, in: bytes, header: header, key: key, now: now)
            } else {
                let decoded = try WireFormat.decodeWorkerEnvelope(bytes)
                handle(decoded.message, header: decoded.header, key: key, now: now)
            }
        } catch {
            rejected.note(.warning, "rejected a message on the results socket: \(error)", into: &logs)
        }
    }

    /// A `results` message's records (read in place): each ends its task if the sender was sent it.
    /// With `message` (the bytes the records point into), kept payloads share one copy of it.
    mutating func results(
        _ records: [ResultView], in message: UnsafeRawBufferPointer? = nil, header: MessageHeader, key: UInt32,
        now: PoolTime
    ) {
        let sender = header.sender
        guard known(sender, key: key, "\(records.count) results") else { return }
        guard header.epoch == epoch else {
            duplicates += UInt64(records.count)
            return
        }
        var done: UInt64 = 0
        var failedHere: UInt64 = 0
        let info = roster[sender]?.info
        var shared: [UInt8]?
        for record in records {
            guard let (name, digest, attempts, deliveries) = accept(record, from: sender, now: now) else { continue }
            if record.status == .ok { done += 1 } else { failedHere += 1 }
            let (storage, offset, length) = keptPayload(of: record, in: message, shared: &shared)
            end(
                TaskOutcome(
                    id: record.id, name: name, status: record.status, payloadStorage: storage,
                    runMicroseconds: record.runMicroseconds, worker: info, digest: digest, attempts: attempts,
                    deliveries: deliveries, payloadOffset: offset, payloadLength: length))
        }
        roster[sender]?.lastSeen = now
        roster[sender]?.resultsReceived += UInt64(records.count)
        roster[sender]?.tasksDone += done
        roster[sender]?.tasksFailed += failedHere
        if roster[sender]?.goodbyeAfter != nil { releaseIfComplete(sender, now: now) }
    }

    /// What an outcome holds of `record`'s payload: nothing when none is kept; else, when
    /// outcomes share their message (``ProducerConfiguration/sharesResultMessages``), where it
    /// lies in one copy of `message`, made for the first (`shared`); else a copy of its own.
    @inline(__always)
    private func keptPayload(of record: ResultView, in message: UnsafeRawBufferPointer?, shared: inout [UInt8]?)
        -> (storage: [UInt8], offset: UInt32, length: UInt32)
    {
        guard configuration.keepsResultPayloads else { return ([], 0, .max) }
        guard configuration.sharesResultMessages, let message, message.count < Int(UInt32.max),
            let base = message.baseAddress, let start = record.payload.baseAddress
        else { return (Array(record.payload), 0, .max) }
        if shared == nil { shared = Array(message) }
        return (shared!, UInt32(start - base), UInt32(record.payload.count))
    }

    /// Ends the record's task if `sender` was sent it (and a failure is not retried); returns the
    /// task's name, digest, attempts and deliveries.
    private mutating func accept(_ record: ResultView, from sender: UInt32, now: PoolTime) -> (
        String, TaskDigest, UInt16, UInt16
    )? {
        guard let sent = leases.withLease(record.id, { $0.wasSent(to: sender) }) else {
            duplicates += 1
            return nil
        }
        guard sent else {
            forged.note(
                .warning,
                "refused a result for task \(record.id) from \(roster.name(of: sender)), which was never sent it",
                into: &logs)
            return nil
        }
        if record.status != .ok, retryInstead(of: record, from: sender, now: now) { return nil }
        guard let lease = leases.remove(record.id) else { return nil }
        counters.latency.record(nanoseconds: ProducerCounters.nanoseconds(since: lease.submittedTicks, now: now))
        counters.runTime.record(nanoseconds: UInt64(record.runMicroseconds) &* 1_000)
        if let holder = lease.holder, holder.worker == sender, lease.attempt == record.attempt {
            // The round trip: dispatch to result, less what the worker spent queueing and running.
            let elapsed = now.since(lease.dispatchedAt).microseconds
            let trip = elapsed - Double(record.queuedMicroseconds) - Double(record.runMicroseconds)
            leases.credit.observe(
                holder, runMicroseconds: record.runMicroseconds, tripMicroseconds: trip > 0 ? trip : nil, now: now)
        }
        return (lease.name, lease.digest, lease.failures + 1, lease.attempt)
    }

    /// Everything else a worker says on the results socket.
    mutating func handle(_ message: WorkerMessage, header: MessageHeader, key: UInt32, now: PoolTime) {
        let sender = header.sender
        switch message {
        case .results(_, let records):
            // The hot path reads results in place (``results(_:header:key:now:)``); this one is
            // for callers holding decoded records.
            for record in records {
                record.payload.withUnsafeBytes { payload in
                    let view = ResultView(
                        id: record.id, attempt: record.attempt, status: record.status,
                        runMicroseconds: record.runMicroseconds, queuedMicroseconds: record.queuedMicroseconds,
                        payload: payload)
                    results([view], header: header, key: key, now: now)
                }
            }
        case .hello(_, let hello):
            guard admit(hello, from: sender, key: key, now: now) else { return }
            if roster[sender]?.lost == true { revive(sender, now: now) }
        case .heartbeat(_, let heartbeat):
            guard known(sender, key: key, "a heartbeat") else { return }
            heard(heartbeat, from: sender, epochMatches: header.epoch == epoch, now: now)
        case .started(_, let tasks):
            guard known(sender, key: key, "acknowledgements") else { return }
            roster[sender]?.lastSeen = now
            guard header.epoch == epoch, let heartbeats = roster[sender]?.heartbeats else { return }
            for task in tasks { leases.markHeld(task.id, attempt: task.attempt, by: sender, heartbeats: heartbeats) }
        case .goodbye(_, var goodbye):
            guard known(sender, key: key, "a goodbye") else { return }
            // A goodbye to another run (or from a worker that never saw ours) owes us nothing.
            if header.epoch != epoch { goodbye.resultsSent = 0 }
            if roster[sender]?.goodbyeAfter == nil {
                logs.append(
                    LogLine(
                        level: .debug,
                        message: "\(roster.name(of: sender)) is leaving after \(goodbye.resultsSent) results"))
            }
            roster[sender]?.goodbyeAfter = goodbye.resultsSent
            roster[sender]?.lastSeen = now
            // It takes no more work; what it still holds is sent elsewhere once it is released.
            leases.credit.removeAll(ofWorker: sender)
            releaseIfComplete(sender, now: now)
        case .eventRequests(_, let requests):
            guard known(sender, key: key, "event requests") else { return }
            let name = roster.name(of: sender)
            for request in requests { eventRequests.append((request, name)) }
        case .workerLost(let supervisor, let loss):
            reportedLost(loss, by: supervisor, key: key, now: now)
        }
    }

    private mutating func heard(_ heartbeat: WorkerHeartbeat, from sender: UInt32, epochMatches: Bool, now: PoolTime) {
        if roster[sender]?.lost == true { revive(sender, now: now) }
        guard var worker = roster[sender] else { return }
        worker.lastSeen = now
        if heartbeat.restarts > worker.restarts {
            record(.processRestarted(worker.info, restarts: heartbeat.restarts), now: now)
        }
        worker.restarts = heartbeat.restarts
        worker.heartbeats += 1
        worker.held = Set(heartbeat.held.map(\.id))
        worker.running = heartbeat.held.filter(\.running).map(\.id)
        let heartbeats = worker.heartbeats
        roster[sender] = worker
        // A task the worker lists has arrived: the heartbeat is its acknowledgement.
        guard epochMatches else { return }
        for task in heartbeat.held { leases.markHeld(task.id, attempt: nil, by: sender, heartbeats: heartbeats) }
    }

    /// A supervisor's report that one of its processes died: believed only from the supervisor
    /// the process named in its hello, under the process's own key.
    private mutating func reportedLost(_ loss: WorkerLoss, by supervisor: UInt32, key: UInt32, now: PoolTime) {
        guard let worker = roster[loss.process], worker.supervisor != 0, worker.supervisor == supervisor,
            worker.key == key
        else {
            refusedLossReports.note(
                .warning,
                "refused a report that \(roster.name(of: loss.process)) died: it does not come from that process's supervisor",
                into: &logs)
            return
        }
        let how = loss.signalled ? "signal \(loss.detail)" : "exit code \(loss.detail)"
        let reason =
            loss.reason == .timeLimit ? "its task \(loss.culprit) exceeded the time limit" : "it died with \(how)"
        let cause: PoolEvent.WorkerLossDetail.Cause =
            loss.reason == .timeLimit
            ? .timeLimit(task: loss.culprit)
            : .died(signal: loss.signalled ? loss.detail : nil, exitCode: loss.signalled ? nil : loss.detail)
        workerLost(loss.process, cause: cause, reason: reason, loss: loss, lastSign: now, now: now)
    }
}
