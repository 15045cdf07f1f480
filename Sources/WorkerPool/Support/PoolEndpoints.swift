import Foundation

/// The producer's three addresses: tasks (ROUTER↔DEALER), results (PUSH→PULL), events (XPUB→SUB).
public struct PoolEndpoints: Sendable, Equatable, CustomStringConvertible {
    public var tasks: String
    public var results: String
    public var events: String

    public init(tasks: String, results: String, events: String) {
        self.tasks = tasks
        self.results = results
        self.events = events
    }

    public static let defaultPorts = (tasks: 5557, results: 5558, events: 5559)

    /// The producer's default bind addresses: every interface, ports 5557-5559.
    public static let defaultBind = PoolEndpoints(
        tasks: "tcp://*:\(defaultPorts.tasks)", results: "tcp://*:\(defaultPorts.results)",
        events: "tcp://*:\(defaultPorts.events)")

    /// Where a worker connects to reach a producer on `host` with the default ports.
    public static func connecting(to host: String) -> PoolEndpoints {
        let host = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        return PoolEndpoints(
            tasks: "tcp://\(host):\(defaultPorts.tasks)", results: "tcp://\(host):\(defaultPorts.results)",
            events: "tcp://\(host):\(defaultPorts.events)")
    }

    /// Endpoints in the directory `path` for workers on the same host: `ipc://path/tasks` and so on.
    public static func ipc(directory path: String) -> PoolEndpoints {
        PoolEndpoints(tasks: "ipc://\(path)/tasks", results: "ipc://\(path)/results", events: "ipc://\(path)/events")
    }

    /// The address a local process connects to for a bound endpoint: wildcard hosts become loopback.
    public static func localConnectAddress(forBound endpoint: String) -> String {
        endpoint.replacingOccurrences(of: "tcp://0.0.0.0:", with: "tcp://127.0.0.1:")
            .replacingOccurrences(of: "tcp://*:", with: "tcp://127.0.0.1:")
            .replacingOccurrences(of: "tcp://[::]:", with: "tcp://[::1]:")
    }

    public var description: String { "tasks \(tasks), results \(results), events \(events)" }
}
