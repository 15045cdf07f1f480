import Glibc

/// The errno of a failed POSIX (or libzmq) call, kept from the moment it failed.
/// `public` for the reason ``Syscall`` is: its `@inlinable` code makes these.
public struct Errno: Error, Sendable, Equatable, RawRepresentable, CustomStringConvertible {
    public let rawValue: Int32

    @inlinable
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// `strerror`'s text, e.g. `Broken pipe`.
    public var description: String { String(cString: strerror(rawValue)) }
}
