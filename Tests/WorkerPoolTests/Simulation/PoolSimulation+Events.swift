@testable import WorkerPool

extension PoolSimulation {
    func handle(_ event: Event) {
        if Self.trace { print("\(Double(now) / 1e6) ms event \(String(describing: event).prefix(160))") }
        switch event {
        case .toWorker(let id, let thread, let generation, let bytes):
            guard let worker = workers[id], worker.alive else { return }
            if worker.frozen {
                // A stopped process: the bytes wait in the kernel until it runs again.
                events.push(event, at: now + ms(50))
                return
            }
            guard worker.threads[Int(thread)].generation == generation else { return }  // lost with its connection
            receive(bytes, worker: worker, thread: Int(thread))
        case .toProducerTasks(let identity, let bytes, let key, let sentTo):
            guard sentTo == incarnation, let message = try? WireFormat.decodeTaskChannel(bytes) else { return }
            identity.withUnsafeBytes { core.ready(identity: $0, message, key: key, now: poolNow) }
        case .toProducerResults(let bytes, let key, let sentTo):
            guard sentTo == incarnation else { return }
            deliverToProducer(bytes, key: key)
        case .finished(let id, let thread, let token):
            guard let worker = workers[id], worker.alive else { return }
            if worker.frozen {
                events.push(event, at: now + ms(50))
                return
            }
            finish(worker: worker, thread: Int(thread), token: token)
        case .killForTimeLimit(let id, let thread, let token):
            guard let worker = workers[id], worker.alive,
                let running = worker.threads[Int(thread)].running.first(where: { $0.token == token })
            else { return }
            kill(worker, reported: true, culprit: running.record.id)
        case .heartbeat(let id):
            guard let worker = workers[id], worker.alive else { return }
            events.push(.heartbeat(worker: id), at: now + ms(1_000))
            guard !worker.frozen else { return }
            let heartbeat = WorkerHeartbeat(tasksDone: worker.done, tasksFailed: 0, restarts: 0, held: worker.held)
            sendToProducer(WireFormat.encode(heartbeat, sender: id, epoch: core.epoch), key: worker.key)
            sendToProducer(WireFormat.encode(worker.hello, sender: id), key: worker.key)
        case .reconnect(let id, let thread):
            guard let worker = workers[id], worker.alive else { return }
            worker.threads[Int(thread)].connected = true
            worker.threads[Int(thread)].generation += 1
            let ready = WireFormat.encode(
                ready: TaskLinkInfo(link: thread, capacity: UInt16(worker.threads[Int(thread)].capacity)),
                hello: worker.hello,
                sender: id)
            send(
                .toProducerTasks(
                    identity: PeerKey(worker: id, link: thread).identity, bytes: ready, key: worker.key,
                    incarnation: incarnation))
        case .thaw(let id):
            workers[id]?.frozen = false
        case .spawn(let supervisor, let key):
            spawn(supervisor: supervisor, key: key)
        case .producerTick:
            events.push(.producerTick, at: now + 250_000_000)
            core.tick(now: poolNow)
        case .fault:
            events.push(.fault, at: now + ms(random.int(1...faultEveryMilliseconds * 2)))
            injectFault()
        case .cancel:
            var unread: [TaskFeed.Entry] = []
            while nextInput <= taskCount {
                let id = UInt64(nextInput)
                nextInput += 1
                if journal[id] == nil { unread.append(TaskFeed.Entry(id: id, item: .task(name: "sim", payload: []))) }
            }
            core.cancelInput(unread: unread, now: poolNow)
        case .restartProducer:
            restartProducer()
        case .commitJournal:
            events.push(.commitJournal, at: now + ms(20))
            commit()
        }
    }

    func sendToProducer(_ bytes: [UInt8], key: UInt32) {
        send(.toProducerResults(bytes: bytes, key: key, incarnation: incarnation))
    }

    /// What `ProducerRunLoop.receiveWorkerMessages` does with one message.
    func deliverToProducer(_ bytes: [UInt8], key: UInt32) {
        bytes.withUnsafeBytes { core.receive($0, key: key, now: poolNow) }
    }

    // MARK: Workers

    func spawn(supervisor: UInt32, key: UInt32) {
        var id = UInt32(truncatingIfNeeded: random.next())
        while id == 0 || workers[id] != nil { id = UInt32(truncatingIfNeeded: random.next()) }
        // Processes of one-thread links (each thread its own connection) and of shared links.
        let links = random.int(1...3)
        let worker = Worker(
            id: id, supervisor: supervisor, key: key, capacities: (0..<links).map { _ in random.int(1...3) })
        workers[id] = worker
        sendToProducer(WireFormat.encode(worker.hello, sender: id), key: key)
        for thread in 0..<worker.threads.count {
            events.push(.reconnect(worker: id, thread: UInt16(thread)), at: now + delay())
        }
        events.push(.heartbeat(worker: id), at: now + ms(1_000))
    }

    func receive(_ bytes: [UInt8], worker: Worker, thread: Int) {
        guard
            let (header, tasks) = try? bytes.withUnsafeBytes({ raw in
                try Result { () throws(WireError) in try WireFormat.decodeTaskMessage(raw) }.get()
            })
        else { return }
        for case .task(let record) in tasks {
            received.insert([record.id, UInt64(worker.id)])
            worker.threads[thread].queue.append((record, header.epoch))
        }
        startNext(worker: worker, thread: thread)
    }

    func startNext(worker: Worker, thread: Int) {
        while worker.alive && worker.threads[thread].running.count < worker.threads[thread].capacity
            && !worker.threads[thread].queue.isEmpty
        {
            start(worker: worker, thread: thread)
        }
    }

    private func start(worker: Worker, thread: Int) {
        let (record, epoch) = worker.threads[thread].queue.removeFirst()
        tokens += 1
        worker.threads[thread].running.append((record, epoch, tokens))
        let nature = natures[record.id] ?? Nature(runMilliseconds: 0)
        if nature.poison {
            kill(worker, reported: true, culprit: nil)
            return
        }
        let run = UInt64(nature.runMilliseconds) * 1_000_000 + UInt64(random.int(0...300)) * 1_000
        if record.timeLimitMilliseconds > 0 && run > UInt64(record.timeLimitMilliseconds) * 1_000_000 {
            events.push(
                .killForTimeLimit(worker: worker.id, thread: UInt16(thread), token: tokens),
                at: now + UInt64(record.timeLimitMilliseconds) * 1_000_000)
        }
        events.push(.finished(worker: worker.id, thread: UInt16(thread), token: tokens), at: now + run)
    }

    func finish(worker: Worker, thread: Int, token: Int) {
        guard let position = worker.threads[thread].running.firstIndex(where: { $0.token == token }) else { return }
        let running = worker.threads[thread].running.remove(at: position)
        worker.done += 1
        let result = ResultRecord(
            id: running.record.id, attempt: running.record.attempt, status: .ok,
            runMicroseconds: UInt32(natures[running.record.id]?.runMilliseconds ?? 0) * 1_000,
            payload: Array("\"\(running.record.id)\"".utf8))
        sendToProducer(WireFormat.encode([result], sender: worker.id, epoch: running.epoch), key: worker.key)
        startNext(worker: worker, thread: thread)
    }

    /// A process ends: with its supervisor's report (which names what it ran), or silently
    /// (its machine went down with the supervisor).
    func kill(_ worker: Worker, reported: Bool, culprit: UInt64?) {
        worker.alive = false
        faultsInjected[reported ? "reported deaths" : "silent deaths", default: 0] += 1
        guard reported else { return }
        let running = worker.threads.flatMap(\.running).map {
            TaskAttempt(id: $0.record.id, attempt: $0.record.attempt)
        }
        let loss = WorkerLoss(
            process: worker.id, reason: culprit == nil ? .died : .timeLimit, detail: 9, signalled: true,
            culprit: culprit ?? 0, running: running)
        sendToProducer(WireFormat.encode(loss, supervisor: worker.supervisor), key: worker.key)
        events.push(.spawn(supervisor: worker.supervisor, key: worker.key), at: now + ms(random.int(10...300)))
    }
}
