import CZeroMQ
import Foundation
import PoolSystem

/// A libzmq context: owns the I/O threads and every socket made from it.
///
/// `@unchecked Sendable`: libzmq documents contexts as thread-safe; the handle is never
/// mutated after `init`, and `deinit` runs once, after every socket holding a reference closed.
public final class Context: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer
    private let terminated = TerminationFlag()

    /// - Parameter ioThreads: libzmq background I/O threads (1 suits about 1 GB/s).
    public init(ioThreads: Int32 = 1) throws {
        guard let handle = zmq_ctx_new() else { throw ZeroMQError.last("zmq_ctx_new") }
        self.handle = handle
        if zmq_ctx_set(handle, ZMQ_IO_THREADS, ioThreads) != 0 {
            let error = ZeroMQError.last("zmq_ctx_set ZMQ_IO_THREADS")
            zmq_ctx_term(handle)
            throw error
        }
    }

    deinit { terminate() }

    /// Waits until every socket's queued messages are delivered or its linger expired, then
    /// frees the context. Call it once all sockets made from it are closed (they keep the
    /// context alive, so `deinit` does this too, but only if nothing else holds the context).
    public func terminate() {
        guard terminated.set() else { return }
        _ = Syscall.retryingOnInterrupt(errno: zmq_errno) { zmq_ctx_term(handle) }
    }
}

/// Set once, from any thread.
/// `@unchecked Sendable`: the flag is only read and written under `lock`.
private final class TerminationFlag: @unchecked Sendable {
    private var value = false
    private let lock = NSLock()

    /// Sets the flag; returns whether this call set it.
    func set() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if value { return false }
        value = true
        return true
    }

    /// libzmq's version as (major, minor, patch).
    public static var version: (major: Int32, minor: Int32, patch: Int32) {
        var major: Int32 = 0
        var minor: Int32 = 0
        var patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return (major, minor, patch)
    }
}
