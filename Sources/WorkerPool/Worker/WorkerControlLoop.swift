import Foundation
import Logging
import ZeroMQ

/// A worker process's control thread: follows the producer's events, introduces the process,
/// sends heartbeats and event requests, watches the handshake for security failures, starts the
/// task threads, and says goodbye until the producer confirms it has every result. Each step is
/// one method; ``run()`` calls them in turn.
struct WorkerControlLoop {
    let node: WorkerNode
    private let subscriber: Socket
    private let control: Socket
    private let monitor: SocketMonitor
    private var poller = Poller()
    private let indices: (subscriber: Int, wake: Int, monitor: Int)
    private let message = Message()
    private let hello: [UInt8]
    private var handshakes: WorkerNode.HandshakeWatch
    private var health: HealthFile?
    private var rejected = RateLimitedLog()
    private var securityFailure: SecurityFailure?
    private var taskThreadsStarted = false
    private var helloSent = false
    private var released = false
    private var epoch: UInt32 = 0
    private var lastHeartbeat = ContinuousClock.now
    private var goodbyeSentAt: ContinuousClock.Instant?

    private var configuration: WorkerConfiguration { node.configuration }
    private var logger: Logger { node.logger }
    private var heartbeatInterval: Duration { .milliseconds(configuration.heartbeatIntervalMilliseconds) }

    init(node: WorkerNode) throws {
        self.node = node
        let configuration = node.configuration
        subscriber = try Socket(node.context, .sub)
        try configuration.curve.apply(to: subscriber)
        // Every socket reaches the same producer with the same keys: the events socket, the
        // first to connect, tells whether the handshake works.
        let monitorEndpoint = "inproc://events-socket-monitor"
        try subscriber.startMonitor(
            monitorEndpoint, events: [.handshakeFailed, .handshakeSucceeded, .connected, .disconnected])
        monitor = try SocketMonitor(node.context, endpoint: monitorEndpoint)
        handshakes = WorkerNode.HandshakeWatch(
            usesCurve: configuration.curve != nil, giveUp: .milliseconds(configuration.handshakeGiveUpMilliseconds))
        try subscriber.setMaxMessageSize(Int64(configuration.maxMessageSize))
        try subscriber.setReconnect(intervalMilliseconds: 100, maximumMilliseconds: 2_000)
        try subscriber.setHeartbeat(intervalMilliseconds: 1_000, timeoutMilliseconds: 5_000)
        try subscriber.subscribe()
        try subscriber.connect(configuration.endpoints.events)

        control = try Socket(node.context, .push)
        try configuration.curve.apply(to: control)
        try control.setLinger(milliseconds: Int32(configuration.goodbyeTimeoutMilliseconds))
        try control.setReconnect(intervalMilliseconds: 100, maximumMilliseconds: 2_000)
        try control.setHeartbeat(intervalMilliseconds: 1_000, timeoutMilliseconds: 5_000)
        try control.connect(configuration.endpoints.results)

        hello = WireFormat.encode(node.hello, sender: node.workerID)
        indices = (
            poller.add(subscriber, .readable), poller.add(fileDescriptor: node.controlWakeup.fileDescriptor, .readable),
            poller.add(monitor.socket, .readable)
        )
        health = configuration.healthFile.map { HealthFile(path: $0) }
    }

    /// Runs until the process leaves; returns what it did.
    mutating func run() throws -> WorkerReport {
        logger.debug("connecting to \(configuration.endpoints) as worker id \(node.workerID)")
        while true {
            try poller.poll(timeoutMilliseconds: configuration.heartbeatIntervalMilliseconds / 4)
            if poller.events(at: indices.wake).contains(.readable) { node.controlWakeup.drain() }
            if node.followsStopSignals.load(ordering: .relaxed) && StopSignals.requested && !node.isStopping {
                node.stop(reason: "SIGTERM or SIGINT")
            }
            try watchHandshakes()
            if securityFailure != nil && liveTaskThreads == 0 { break }
            try followBroadcasts()
            try forwardEventRequests()
            let now = ContinuousClock.now
            let logger = node.logger
            health?.update(now: now, logger: logger)
            startTaskThreadsOnceSynchronized()
            try introduceAndBeat(now: now)
            node.publishStats()
            guard node.isStopping && liveTaskThreads == 0 else { continue }
            if try leave(now: now) { break }
        }
        // Released: everything arrived, nothing is left to deliver. Otherwise the producer may be
        // gone; give the goodbye a moment to leave rather than the full linger.
        try control.setLinger(milliseconds: released ? 0 : 200)
        node.publishStats()
        return WorkerReport(
            tasksDone: node.counters.done.load(ordering: .relaxed),
            tasksFailed: node.counters.failed.load(ordering: .relaxed),
            malformedMessages: node.counters.malformed.load(ordering: .relaxed), released: released,
            recycled: node.state.withLock { $0.recycled }, securityFailure: securityFailure)
    }

    private var liveTaskThreads: Int { node.state.withLock { $0.liveTaskThreads } }

    /// A handshake failure that will not go away (a refused key, a CURVE mismatch) stops the process.
    private mutating func watchHandshakes() throws {
        guard poller.events(at: indices.monitor).contains(.readable) else { return }
        while let event = try monitor.next(dontWait: true) {
            guard securityFailure == nil, let failure = handshakes.observe(event, logger: logger) else { continue }
            logger.critical("\(failure)")
            securityFailure = failure
            node.stop(reason: "security failure")
        }
    }

    /// The producer's event state (a new run, shutdown) and its releases.
    private mutating func followBroadcasts() throws {
        guard poller.events(at: indices.subscriber).contains(.readable) else { return }
        while try subscriber.receive(into: message, dontWait: true) {
            guard let broadcast = node.decodeBroadcast(message, from: subscriber, rejected: &rejected) else {
                continue
            }
            switch broadcast {
            case .eventState(let snapshot):
                health?.heard()
                guard node.events.table.adopt(snapshot) else { continue }
                node.producerLimit.store(Int(snapshot.maxMessageSize), ordering: .relaxed)
                if snapshot.epoch != epoch {
                    if epoch != 0 { logger.info("a new producer run (\(snapshot.epoch)) took over") }
                    epoch = snapshot.epoch
                    // Introduce ourselves to a producer that has never heard of us.
                    if helloSent { try control.send(hello, dontWait: true) }
                }
                if snapshot.shutdown { node.stop(reason: "shutdown event received") }
            case .released(let ids):
                if ids.contains(node.workerID) { released = true }
            }
        }
    }

    /// Event changes asked for by this process's tasks go to the producer, which tells everyone.
    private func forwardEventRequests() throws {
        let pending = node.state.withLock { state -> [EventRequest] in
            defer { state.pendingEventRequests.removeAll() }
            return state.pendingEventRequests
        }
        for request in pending {
            try control.send(WireFormat.encode(request, sender: node.workerID), dontWait: true)
        }
    }

    /// Take tasks only once the producer's event state has arrived, so a task that checks an
    /// event set before this worker connected sees it set.
    private mutating func startTaskThreadsOnceSynchronized() {
        guard !taskThreadsStarted && node.events.table.isSynchronized && !node.isStopping else { return }
        node.startTaskThreads()
        taskThreadsStarted = true
    }

    /// The hello once every task socket has completed its handshake (so a producer waiting for N
    /// workers spreads the first tasks over all of them), then hello and heartbeat every interval.
    private mutating func introduceAndBeat(now: ContinuousClock.Instant) throws {
        if !helloSent && node.state.withLock({ $0.taskLinkReady }) {
            try control.send(hello, dontWait: true)
            helloSent = true
            lastHeartbeat = now
        }
        guard helloSent && now - lastHeartbeat >= heartbeatInterval else { return }
        try control.send(hello, dontWait: true)
        try control.send(
            WireFormat.encode(node.heartbeat(), sender: node.workerID, epoch: epoch), dontWait: true)
        lastHeartbeat = now
    }

    /// Every task thread has ended: say goodbye until the producer confirms it has all results.
    /// Returns true when the process may go.
    private mutating func leave(now: ContinuousClock.Instant) throws -> Bool {
        if released { return true }
        let goodbyeTimeout = Duration.milliseconds(configuration.goodbyeTimeoutMilliseconds)
        let resultsSent = node.counters.resultsSentByEpoch.withLock { $0[epoch] ?? 0 }
        if let sentAt = goodbyeSentAt {
            if now - sentAt >= goodbyeTimeout {
                logger.warning("producer did not confirm the last results within \(goodbyeTimeout); leaving anyway")
                return true
            }
            if now - lastHeartbeat < heartbeatInterval / 2 { return false }
        } else {
            logger.info("\(configuration.name): Exiting")
            goodbyeSentAt = now
        }
        let goodbye = WorkerGoodbye(resultsSent: resultsSent)
        try control.send(WireFormat.encode(goodbye, sender: node.workerID, epoch: epoch), dontWait: true)
        lastHeartbeat = now
        // With no results in transit there is nothing to confirm.
        return resultsSent == 0 && !helloSent
    }
}
