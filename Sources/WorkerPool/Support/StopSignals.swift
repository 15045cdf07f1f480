import CPoolSystem

/// SIGTERM and SIGINT turned into a flag, installed with `sigaction` as early as a process
/// likes: a signal that arrives before anyone looks is remembered, not lost.
public enum StopSignals {
    /// From now on SIGTERM and SIGINT set ``requested`` (and wake `wakeup`, if given) instead of
    /// ending the process.
    public static func install(wakeup: Wakeup? = nil) {
        _ = cpool_install_stop_handler(wakeup?.fileDescriptor ?? -1)
    }

    /// Whether SIGTERM or SIGINT arrived since ``install(wakeup:)``.
    public static var requested: Bool { cpool_stop_requested() != 0 }
}
