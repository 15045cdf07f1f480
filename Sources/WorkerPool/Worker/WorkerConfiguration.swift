/// How one worker process connects and runs tasks.
public struct WorkerConfiguration: Sendable {
    public var endpoints: PoolEndpoints
    /// The process's name in logs and results, e.g. `Worker-1`.
    public var name: String
    public var host: String
    /// This process's id on the wire; its supervisor chooses it so it can report the process's
    /// death. Random when nil.
    public var workerID: UInt32?
    /// The sender id of the supervisor that started this process (0: none). Named in the hello,
    /// so the producer believes a report of this process's death only from that supervisor.
    public var supervisorID: UInt32 = 0
    /// How often the supervisor restarted this process's slot (reported in heartbeats).
    public var restarts: UInt32 = 0
    /// Task threads in this process. One owns the task link itself; several share a link thread.
    public var threads: Int = 1
    /// Leave after this many tasks so the supervisor starts a fresh process (nil: never).
    public var maxTasks: Int?
    /// Results of fast tasks are sent together once this much run time has accumulated.
    public var resultFlushMicroseconds: UInt64 = 1_000
    /// With several threads: how long a result may wait for others to share its message while
    /// the process is busy (a thread out of work, or a full message, sends at once).
    public var resultDelayMicroseconds: UInt64 = 20_000
    public var maxMessageSize: Int = WireFormat.defaultMaxMessageSize
    /// How often the worker sends a heartbeat (and re-announces itself to a restarted producer).
    public var heartbeatIntervalMilliseconds: Int = 1_000
    /// How long a leaving worker waits for the producer to confirm it has every result.
    public var goodbyeTimeoutMilliseconds: Int = 5_000
    /// CURVE keys; nil for plaintext.
    public var curve: CurveClientSettings?
    /// With CURVE: leave (status 78) once every connection has been closed during the handshake
    /// for this long, which is what a wrong producer key looks like.
    public var handshakeGiveUpMilliseconds = 60_000
    /// Rewritten every second with `connected` or `waiting` (for container probes); nil: none.
    public var healthFile: String?

    public init(endpoints: PoolEndpoints, name: String, host: String) {
        self.endpoints = endpoints
        self.name = name
        self.host = host
    }
}

/// What a worker process did, reported when it leaves.
public struct WorkerReport: Sendable, Equatable {
    public var tasksDone: UInt64
    public var tasksFailed: UInt64
    public var malformedMessages: UInt64
    /// Whether the producer confirmed receiving every result before the worker left.
    public var released: Bool
    /// Whether it left because it reached ``WorkerConfiguration/maxTasks``.
    public var recycled: Bool
    /// Set when the producer and this worker disagree on security; the worker left at once.
    public var securityFailure: SecurityFailure?
}
