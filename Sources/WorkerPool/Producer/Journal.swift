import Foundation
import Glibc

/// An append-only record of finished tasks, one ``TaskOutcome/jsonLine`` per line, made durable
/// with `fsync` before the results are reported. A producer restarted with the same input and
/// journal skips the tasks it holds; a line torn by a crash is cut off.
final class Journal {
    let path: String
    private let fileDescriptor: Int32
    private var buffer: [UInt8] = []
    /// Task ids the journal held when opened.
    let finished: Set<UInt64>

    init(path: String) throws {
        self.path = path
        var finished: Set<UInt64> = []
        var validLength = 0
        if let data = FileManager.default.contents(atPath: path) {
            // Only newline-terminated lines count: a crash may have left the last one half written.
            validLength = data.lastIndex(of: UInt8(ascii: "\n")).map { $0 - data.startIndex + 1 } ?? 0
            for line in data.prefix(validLength).split(separator: UInt8(ascii: "\n")) {
                if let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
                    let id = (object["id"] as? NSNumber)?.uint64Value
                {
                    finished.insert(id)
                }
            }
        }
        self.finished = finished
        fileDescriptor = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard fileDescriptor >= 0 else {
            throw JournalError("cannot open journal \(path): \(String(cString: strerror(errno)))")
        }
        guard ftruncate(fileDescriptor, off_t(validLength)) == 0, lseek(fileDescriptor, 0, SEEK_END) >= 0 else {
            close(fileDescriptor)
            throw JournalError("cannot prepare journal \(path): \(String(cString: strerror(errno)))")
        }
    }

    deinit { close(fileDescriptor) }

    func append(_ outcome: TaskOutcome) {
        buffer.append(contentsOf: outcome.jsonLine.utf8)
        buffer.append(UInt8(ascii: "\n"))
    }

    var hasPending: Bool { !buffer.isEmpty }

    /// Writes and syncs what was appended since the last commit.
    func commit() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = write(fileDescriptor, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw JournalError("writing journal \(path) failed: \(String(cString: strerror(errno)))")
                }
                offset += written
            }
        }
        guard fsync(fileDescriptor) == 0 else {
            throw JournalError("syncing journal \(path) failed: \(String(cString: strerror(errno)))")
        }
        buffer.removeAll(keepingCapacity: true)
    }
}

struct JournalError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
