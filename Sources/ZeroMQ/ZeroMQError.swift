import CZeroMQ

/// An error from libzmq, keeping its errno and libzmq's own text.
public struct ZeroMQError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The few errno values callers branch on; everything else is `.other`.
    public enum Code: Sendable, Equatable {
        /// `EAGAIN`: a non-blocking call would block, or a timeout expired.
        case wouldBlock
        /// `ETERM`: the context was terminated.
        case terminated
        /// `EINTR`: a signal interrupted the call.
        case interrupted
        /// `EADDRINUSE`: bind found the address taken.
        case addressInUse
        /// `EINVAL`, `EPROTONOSUPPORT`, `ENOCOMPATPROTO`...: a bad endpoint or option.
        case invalidArgument
        /// `EHOSTUNREACH`: a ROUTER with mandatory routing has no such peer.
        case hostUnreachable
        case other
    }

    public let errno: Int32
    public let message: String
    /// What was being done, e.g. `bind tcp://*:5557`.
    public let operation: String

    public var code: Code {
        switch errno {
        case EAGAIN: .wouldBlock
        case ETERM: .terminated
        case EINTR: .interrupted
        case EADDRINUSE: .addressInUse
        case EINVAL, EPROTONOSUPPORT, ENOCOMPATPROTO: .invalidArgument
        case EHOSTUNREACH: .hostUnreachable
        default: .other
        }
    }

    public init(errno: Int32, operation: String) {
        self.errno = errno
        self.operation = operation
        self.message = String(cString: zmq_strerror(errno))
    }

    /// The error libzmq reports for the calling thread's last failed call.
    static func last(_ operation: @autoclosure () -> String) -> ZeroMQError {
        ZeroMQError(errno: zmq_errno(), operation: operation())
    }

    public var description: String { "\(operation): \(message) (errno \(errno))" }
}
