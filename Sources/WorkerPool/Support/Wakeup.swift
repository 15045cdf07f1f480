import CPoolSystem
import Glibc

/// An eventfd that one thread polls (with ``ZeroMQ/Poller``) and any thread signals.
///
/// `@unchecked Sendable`: the descriptor is fixed at init and eventfd reads and writes are
/// atomic in the kernel, so concurrent `signal()` calls from any thread are safe.
public final class Wakeup: @unchecked Sendable {
    public let fileDescriptor: Int32

    public init() {
        fileDescriptor = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        precondition(fileDescriptor >= 0, "eventfd failed: errno \(errno)")
    }

    deinit {
        // A signal handler may hold this descriptor (StopSignals); it must not write to a reused one.
        cpool_forget_stop_fd(fileDescriptor)
        close(fileDescriptor)
    }

    /// Makes the descriptor readable until the owner calls ``drain()``.
    public func signal() {
        var one: UInt64 = 1
        _ = write(fileDescriptor, &one, MemoryLayout<UInt64>.size)
    }

    /// Clears the readable state; call after waking, before looking at the shared state.
    public func drain() {
        var value: UInt64 = 0
        _ = read(fileDescriptor, &value, MemoryLayout<UInt64>.size)
    }
}
