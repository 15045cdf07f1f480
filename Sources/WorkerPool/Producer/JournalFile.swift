import CPoolSystem
import Glibc
import PoolSystem

/// The journal's file, appended to in commits, each on disk (`fsync`) before it returns.
///
/// Whole 4 KiB blocks go out with `O_DIRECT`, from an aligned buffer to the device: the kernel
/// neither copies them nor takes new page-cache pages for them. A new page is the journal's
/// cost here: measured on a VM that hands freed memory back to its host, writing 420 MB of
/// records through the page cache spent 1.0 s in the kernel, as much as the producer's whole
/// dispatch. The last, partial block goes through the page cache, and the next commit writes it
/// again as part of a whole one. Where `O_DIRECT` is refused (tmpfs, some overlays), every byte
/// goes through the page cache, as any file does.
final class JournalFile {
    /// Bytes of a block, and the alignment of the buffer, offsets and lengths of direct writes:
    /// the page size, a multiple of every logical block size in use.
    static let blockSize = 4_096

    private let fileDescriptor: Int32
    /// The same file opened with `O_DIRECT`; nil where refused.
    private var directDescriptor: Int32?
    private var buffer: UnsafeMutableRawPointer
    private var capacity: Int
    /// Bytes in `buffer`: the file's last partial block, written already, then what waits.
    private var count = 0
    /// How many of those are on disk already (the partial block, when writing direct).
    private var written = 0
    /// The file offset of `buffer`'s first byte: a multiple of ``blockSize`` when writing direct.
    private var offset: off_t

    /// Opens (or creates) `path`, cut to its first `length` bytes: what follows is appended.
    /// `direct` false writes through the page cache only.
    init(path: String, length: Int, direct allowDirect: Bool = true) throws(JournalError) {
        fileDescriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fileDescriptor >= 0 else { throw .system("cannot open journal \(path)") }
        capacity = 1 << 16
        buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: Self.blockSize)
        offset = off_t(length)
        guard ftruncate(fileDescriptor, off_t(length)) == 0 else {
            let error = JournalError.system("cannot prepare journal \(path)")
            close(fileDescriptor)
            buffer.deallocate()
            throw error
        }
        let direct = allowDirect ? cpool_open_direct(path) : -1
        guard direct >= 0 else { return }
        // The partial block at the end comes into the buffer: the first direct write covers it.
        let carried = length % Self.blockSize
        let start = off_t(length - carried)
        if carried > 0, pread(fileDescriptor, buffer, carried, start) != carried {
            close(direct)
            return
        }
        directDescriptor = direct
        count = carried
        written = carried
        offset = start
    }

    deinit {
        if let directDescriptor { close(directDescriptor) }
        close(fileDescriptor)
        buffer.deallocate()
    }

    /// Whether whole blocks are written with `O_DIRECT`.
    var writesDirect: Bool { directDescriptor != nil }

    /// Whether anything was appended since the last commit.
    var hasPending: Bool { count > written }

    /// Appends what `body` writes through a cursor, at most `capacity` bytes, in place: no copy
    /// between the record and the write.
    @inline(__always)
    func append(capacity: Int, _ body: (inout ByteCursor) -> Void) {
        reserve(count + capacity)
        let start = (buffer + count).assumingMemoryBound(to: UInt8.self)
        var cursor = ByteCursor(start)
        body(&cursor)
        count += cursor.position - start
    }

    func append(_ bytes: UnsafeRawBufferPointer) {
        append(capacity: bytes.count) { cursor in cursor.write(bytes.bindMemory(to: UInt8.self)) }
    }

    /// Writes what was appended and makes it durable.
    func commit() throws(Errno) {
        guard hasPending else { return }
        guard let direct = directDescriptor else { return try commitBuffered() }
        let whole = count - count % Self.blockSize
        do throws(Errno) {
            try Self.write(direct, buffer, whole, at: offset)
            try Self.write(fileDescriptor, buffer + whole, count - whole, at: offset + off_t(whole))
            try sync()
        } catch  where error.rawValue == EINVAL {
            // Direct writes refused after all: the same bytes again, through the page cache.
            close(direct)
            directDescriptor = nil
            return try commitBuffered()
        }
        // The partial block moves to the front (memmove: the two may overlap).
        buffer.copyMemory(from: buffer + whole, byteCount: count - whole)
        offset += off_t(whole)
        count -= whole
        written = count
    }

    private func commitBuffered() throws(Errno) {
        try Self.write(fileDescriptor, buffer, count, at: offset)
        try sync()
        offset += off_t(count)
        count = 0
        written = 0
    }

    private func sync() throws(Errno) {
        if case .failure(let error) = Syscall.retryingOnInterrupt({ fsync(fileDescriptor) }) { throw error }
    }

    private func reserve(_ needed: Int) {
        guard needed > capacity else { return }
        var grown = capacity
        while grown < needed { grown *= 2 }
        let larger = UnsafeMutableRawPointer.allocate(byteCount: grown, alignment: Self.blockSize)
        larger.copyMemory(from: buffer, byteCount: count)
        buffer.deallocate()
        buffer = larger
        capacity = grown
    }

    /// `pwrite`s all of `count` bytes, going on after short writes and `EINTR`.
    private static func write(
        _ fileDescriptor: Int32, _ bytes: UnsafeRawPointer, _ count: Int, at start: off_t
    ) throws(Errno) {
        var done = 0
        while done < count {
            switch Syscall.retryingOnInterrupt({
                pwrite(fileDescriptor, bytes + done, count - done, start + off_t(done))
            }) {
            case .success(let written): done += written
            case .failure(let error): throw error
            }
        }
    }
}
