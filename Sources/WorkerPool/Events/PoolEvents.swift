/// The distributed `multiprocessing.Event`: named flags every process of the pool shares.
///
/// The producer holds the truth and broadcasts it over PUB/SUB; a worker's copy follows it
/// (including a worker that connects after an event was set). Setting or clearing on a worker
/// applies locally at once and asks the producer to broadcast the change to everyone.
public final class PoolEvents: Sendable {
    let table = EventTable()
    private let forward: @Sendable (EventRequest) -> Void

    /// - Parameter forward: how a change made here reaches the producer's I/O thread.
    init(forward: @escaping @Sendable (EventRequest) -> Void) {
        self.forward = forward
    }

    /// Events of this process alone, shared by nothing else: for running tasks outside a pool.
    public convenience init() { self.init(forward: { _ in }) }

    /// Sets `name`: every `wait(name)` in the pool returns true. Returns false, changing
    /// nothing, for a name that is empty or longer than 255 bytes, or when 4,096 events are set.
    @discardableResult
    public func set(_ name: String) -> Bool { request(EventRequest(.set, name)) }

    /// Clears `name`: later `wait(name)` calls block again. Returns false for an invalid name.
    @discardableResult
    public func clear(_ name: String) -> Bool { request(EventRequest(.clear, name)) }

    private func request(_ request: EventRequest) -> Bool {
        guard Self.isValidName(request.name), table.apply(request) else { return false }
        forward(request)
        return true
    }

    /// Event names are 1-255 bytes of UTF-8.
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= WireFormat.maxNameLength
    }

    public func isSet(_ name: String) -> Bool { table.isSet(name) }

    /// Blocks the calling thread until `name` is set or `timeout` seconds pass (`nil`: no limit).
    /// Returns whether the event is set, like `Event.wait(timeout)`. Call it from a task or a
    /// thread of your own, never from Swift's cooperative pool. On a worker that is leaving
    /// (shutdown or a signal), every wait returns at once, so no task can hold the worker.
    public func wait(_ name: String, timeout: Double? = nil) -> Bool { table.wait(name, timeout: timeout) }

    /// Whether the producer broadcast shutdown.
    public var isShutdown: Bool { table.isShutdown }
}
