import CPoolSystem
import Glibc
import PoolSystem
import Testing

@Suite("Syscall")
struct SyscallTests {
    @Test("a call interrupted by a signal is made again, until it answers")
    func retriesInterruptedCalls() {
        var calls = 0
        let result = Syscall.retryingOnInterrupt(errno: { EINTR }) { () -> Int32 in
            calls += 1
            return calls < 3 ? -1 : 7
        }
        #expect(result == .success(7))
        #expect(calls == 3)
    }

    @Test("any other failure comes back at once with its errno")
    func reportsOtherFailures() {
        var calls = 0
        let result = Syscall.retryingOnInterrupt(errno: { EBADF }) { () -> Int32 in
            calls += 1
            return -1
        }
        #expect(result == .failure(Errno(rawValue: EBADF)))
        #expect(calls == 1)
        #expect(Syscall.retryingOnInterrupt { close(-1) } == .failure(Errno(rawValue: EBADF)))
    }

    @Test("writeAll writes every byte")
    func writesEverything() throws {
        let fd = cpool_memfd_create("syscall-tests")
        try #require(fd >= 0)
        defer { close(fd) }
        let bytes = (0..<200_000).map { UInt8(truncatingIfNeeded: $0) }
        let written = bytes.withUnsafeBytes { Syscall.writeAll(fd, $0) }
        #expect(throws: Never.self) { try written.get() }
        #expect(lseek(fd, 0, SEEK_SET) == 0)
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let got = chunk.withUnsafeMutableBytes { raw in
                Syscall.retryingOnInterrupt { read(fd, raw.baseAddress, raw.count) }
            }
            guard case .success(let count) = got, count > 0 else { break }
            received += chunk[0..<count]
        }
        #expect(received == bytes)
    }

    @Test("writeAll reports a closed reader's EPIPE, with strerror's text")
    func reportsWriteFailures() throws {
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        defer { close(fds[1]) }
        close(fds[0])
        let previous = signal(SIGPIPE, SIG_IGN)
        defer { signal(SIGPIPE, previous) }
        let result = [UInt8](repeating: 1, count: 10).withUnsafeBytes { Syscall.writeAll(fds[1], $0) }
        #expect(throws: Errno(rawValue: EPIPE)) { try result.get() }
        #expect("\(Errno(rawValue: EPIPE))" == String(cString: strerror(EPIPE)))
    }

    @Test("the monotonic clock does not go back")
    func monotonicClock() {
        let first = cpool_monotonic_nanoseconds()
        #expect(cpool_monotonic_nanoseconds() >= first)
    }
}
