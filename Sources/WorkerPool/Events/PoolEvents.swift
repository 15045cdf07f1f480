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

    /// Sets `name`: every `wait(name)` in the pool returns true.
    public func set(_ name: String) {
        precondition(name.utf8.count <= WireFormat.maxNameLength, "event names are at most 255 bytes")
        table.change { names, _ in names.insert(name) }
        forward(EventRequest(.set, name))
    }

    /// Clears `name`: later `wait(name)` calls block again.
    public func clear(_ name: String) {
        precondition(name.utf8.count <= WireFormat.maxNameLength, "event names are at most 255 bytes")
        table.change { names, _ in names.remove(name) }
        forward(EventRequest(.clear, name))
    }

    public func isSet(_ name: String) -> Bool { table.isSet(name) }

    /// Blocks the calling thread until `name` is set or `timeout` seconds pass (`nil`: no limit).
    /// Returns whether the event is set, like `Event.wait(timeout)`. Call it from a task or a
    /// thread of your own, never from Swift's cooperative pool.
    public func wait(_ name: String, timeout: Double? = nil) -> Bool { table.wait(name, timeout: timeout) }

    /// Whether the producer broadcast shutdown.
    public var isShutdown: Bool { table.isShutdown }
}
