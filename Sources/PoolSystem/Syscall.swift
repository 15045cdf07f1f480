import Glibc

/// How this package makes a C call that can be interrupted by a signal: retry `EINTR` here, in
/// one place, as swift-nio's `syscall(blocking:where:_:)` does, instead of in a loop per caller.
///
/// `public` rather than `package` so the `@inlinable` bodies reach `Socket.send` and `receive`:
/// built as `package`, Swift 6.3 called the generic, unspecialized function from release code.
/// No product names this target; it is not API.
public enum Syscall {
    /// Calls `call` again for as long as it fails with `EINTR`, and returns what it returned
    /// first that was not that failure.
    ///
    /// `call` reports failure the C way: a negative result, the reason in errno.
    /// - Parameter errno: reads the reason; libzmq calls pass `zmq_errno`.
    @inlinable
    public static func retryingOnInterrupt<Value: SignedInteger>(
        errno readErrno: () -> Int32, _ call: () -> Value
    ) -> Result<Value, Errno> {
        while true {
            let value = call()
            if value >= 0 { return .success(value) }
            let errno = readErrno()
            if errno != EINTR { return .failure(Errno(rawValue: errno)) }
        }
    }

    /// ``retryingOnInterrupt(errno:_:)`` for POSIX calls, which report in the thread's errno.
    @inlinable
    public static func retryingOnInterrupt<Value: SignedInteger>(_ call: () -> Value) -> Result<Value, Errno> {
        retryingOnInterrupt(errno: { Glibc.errno }, call)
    }

    /// Writes all of `bytes` to `fileDescriptor`, going on after short writes and `EINTR`.
    /// On failure some bytes may have been written already.
    public static func writeAll(_ fileDescriptor: Int32, _ bytes: UnsafeRawBufferPointer) -> Result<Void, Errno> {
        guard let base = bytes.baseAddress else { return .success(()) }
        var offset = 0
        while offset < bytes.count {
            switch retryingOnInterrupt({ Glibc.write(fileDescriptor, base + offset, bytes.count - offset) }) {
            case .success(let written): offset += written
            case .failure(let error): return .failure(error)
            }
        }
        return .success(())
    }
}
