import Logging
import Synchronization
import ZeroMQ

/// The producer's three bound sockets, the monitors that see failed handshakes, and (with CURVE)
/// the ZAP handler that admits only allowlisted worker keys.
final class ProducerSockets {
    let context: Context
    let tasks: Socket
    let results: Socket
    let publisher: Socket
    let securityMonitors: [SocketMonitor]
    private let authenticator: ZAPAuthenticator?
    /// Where a worker on this host connects (wildcards and port 0 resolved).
    let bound: PoolEndpoints
    let listening: PoolEndpoints

    init(configuration: ProducerConfiguration, logger: Logger) throws {
        let context = try Context()
        self.context = context
        // Bound before the sockets it guards, so no connection slips in unchecked.
        authenticator = try configuration.curve.map {
            try Self.startAuthenticator(context: context, curve: $0, logger: logger)
        }
        tasks = try Socket(context, .router)
        try configuration.curve?.apply(to: tasks)
        try tasks.setRouterMandatory(true)
        // Credit, not the high-water mark, bounds what each worker thread holds.
        try tasks.setSendHighWaterMark(0)
        try tasks.setMaxMessageSize(Int64(configuration.maxMessageSize))
        try tasks.bind(configuration.endpoints.tasks)
        results = try Socket(context, .pull)
        try configuration.curve?.apply(to: results)
        try results.setMaxMessageSize(Int64(configuration.maxMessageSize))
        // Bounded per connection: a sender faster than the producer waits (PUSH blocks, it does
        // not drop), so a flood queues at the flooder, not in this process's memory.
        try results.setReceiveHighWaterMark(1_000)
        try results.bind(configuration.endpoints.results)
        publisher = try Socket(context, .xpub)
        try configuration.curve?.apply(to: publisher)
        try publisher.setXPubVerbose(true)
        try publisher.setSendHighWaterMark(10_000)
        try publisher.bind(configuration.endpoints.events)
        // Clients that fail the handshake show up here: a plaintext worker against CURVE, or the
        // reverse. A worker connects to events and results first (tasks only after both work).
        securityMonitors = try [(results, "results"), (publisher, "events")].map { socket, name in
            let endpoint = "inproc://producer-\(name)-monitor"
            try socket.startMonitor(endpoint, events: .handshakeFailed)
            return try SocketMonitor(context, endpoint: endpoint)
        }
        listening = PoolEndpoints(
            tasks: try tasks.lastEndpoint, results: try results.lastEndpoint, events: try publisher.lastEndpoint)
        bound = PoolEndpoints(
            tasks: PoolEndpoints.localConnectAddress(forBound: listening.tasks),
            results: PoolEndpoints.localConnectAddress(forBound: listening.results),
            events: PoolEndpoints.localConnectAddress(forBound: listening.events))
    }

    deinit { authenticator?.stop() }

    /// Starts the ZAP handler that admits only allowlisted worker keys, logging each refusal.
    private static func startAuthenticator(
        context: Context, curve: CurveServerSettings, logger: Logger
    ) throws -> ZAPAuthenticator {
        let refusals = Mutex(Refusals())
        let allowed = curve.allowedClients
        if let allowed {
            logger.info("CURVE on; \(allowed.count) worker keys allowed")
        } else {
            logger.warning("CURVE on; any worker that knows this producer's public key is allowed (--curve-allow-any)")
        }
        return try ZAPAuthenticator(context: context) { request in
            if let key = request.clientKey, allowed?.contains(key) ?? true { return true }
            let what =
                request.clientKey.map {
                    "refused worker key \($0.z85) from \(request.address): not in --curve-allow; it gets no task and can send no result"
                } ?? "refused a \(request.mechanism) connection from \(request.address): not CURVE"
            refusals.withLock { $0.note(what, logger: logger) }
            return false
        }
    }

    /// Logs each distinct refusal once (a refused worker retries on every socket, every few
    /// seconds), and a count now and then.
    private struct Refusals {
        var seen = Set<String>()
        var count: UInt64 = 0

        mutating func note(_ what: String, logger: Logger) {
            count += 1
            if seen.count < 10_000, seen.insert(what).inserted {
                logger.warning("\(what)")
            } else if count % 1_000 == 0 {
                logger.warning("\(count) connections refused so far")
            }
        }
    }
}

/// Gives each CURVE key a worker authenticated with a small number, read from a message's
/// `User-Id` (the ZAP handler sets it to the key), so the core can bind a worker id to its key.
/// In plaintext every message has key 0.
struct KeyNumbers {
    private var numbers: [[UInt8]: UInt32] = [:]
    private var last: (bytes: [UInt8], number: UInt32)?

    mutating func number(of message: Message) -> UInt32 {
        message.withProperty("User-Id") { value -> UInt32 in
            guard let value, value.count > 0 else { return 0 }
            if let last, last.bytes.elementsEqual(value) { return last.number }
            let bytes = Array(value)
            let number = numbers[bytes] ?? UInt32(numbers.count + 1)
            numbers[bytes] = number
            last = (bytes, number)
            return number
        }
    }
}
