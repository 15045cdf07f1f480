import Foundation
import Glibc
import PoolSystem

/// An append-only record of finished tasks, made durable with `fsync` before their results are
/// reported, that knows the input it was written for.
///
/// The file is JSON lines: a header, then one record per outcome (``TaskOutcome/jsonLine`` plus
/// the SHA-256 of its input task), input checkpoints (how many input items were read so far and
/// the digest of them all), and a marker where a run resumed by content:
///
///     {"journal":"zmq-worker-pool","format":2}
///     {"id":1,"task":"multiply","status":"ok","result":"1 * 2 = 2",...,"sha256":"9f86…"}
///     {"input":{"tasks":4096,"sha256":"2c26…"}}
///     {"resume":"by-content"}
///
/// A line torn by a crash (the last, without its newline) is cut off when the journal is opened.
final class Journal {
    let path: String
    /// What the journal held when opened.
    let index: JournalIndex
    private let file: JournalFile
    private var records = OutcomeRecordWriter()

    static let header = #"{"journal":"zmq-worker-pool","format":2}"#
    static let contentResumeMarker = #"{"resume":"by-content"}"#

    /// Opens (or creates) the journal at `path` and reads what it holds.
    ///
    /// - Throws: ``JournalError`` when the file cannot be opened, is not a journal of this
    ///   format, or holds damaged lines and `ignoreDamage` is false.
    init(path: String, mode: JournalResumeMode, ignoreDamage: Bool) throws(JournalError) {
        self.path = path
        let bytes = FileManager.default.contents(atPath: path).map { [UInt8]($0) } ?? []
        let index = try JournalIndex.parse(bytes, mode: mode, path: path)
        if let first = index.damagedLines.first, !ignoreDamage {
            let more = index.damagedLines.count > 1 ? " (\(index.damagedLines.count) damaged lines in all)" : ""
            throw JournalError(
                .damaged,
                "journal \(path) line \(first) is damaged: it is not a record this producer writes\(more); "
                    + "repair or delete the line, or pass --journal-ignore-damage to run the tasks it may have "
                    + "recorded again")
        }
        self.index = index
        file = try JournalFile(path: path, length: index.validLength)
        if index.validLength == 0 { appendLine(Self.header) }
        // Later runs must know the ids no longer follow one input.
        if mode == .byContent && index.recordCount > 0 { appendLine(Self.contentResumeMarker) }
        try commit()
    }

    /// Whether whole blocks go to the disk without the page cache (``JournalFile``).
    var writesDirect: Bool { file.writesDirect }

    /// Adds `outcome`'s record (none for a cancelled one); durable after the next ``commit()``.
    func append(_ outcome: TaskOutcome) { append(contentsOf: [outcome]) }

    /// Adds the record of each outcome in `outcomes` but the cancelled (a resumed run does those),
    /// written in place into the file's buffer.
    func append(contentsOf outcomes: [TaskOutcome]) {
        // The writer as a local: written through `self`, each outcome would be copied first (the
        // compiler cannot tell the array's storage from `self`'s).
        var writer = records
        records = OutcomeRecordWriter()
        outcomes.withUnsafeBufferPointer { outcomes in
            guard var outcome = outcomes.baseAddress else { return }
            for _ in 0..<outcomes.count {
                if outcome.pointee.status != .cancelled {
                    let digest = outcome.pointee.digest ?? .zero
                    file.append(capacity: writer.room(for: outcome)) { cursor in
                        writer.write(outcome, digest: digest, newline: true, to: &cursor)
                    }
                }
                outcome += 1
            }
        }
        records = writer
    }

    /// Records that the input's first `checkpoint.tasks` items have digest `checkpoint.digest`.
    func append(_ checkpoint: InputCheckpoint) {
        appendLine("{\"input\":{\"tasks\":\(checkpoint.tasks),\"sha256\":\"\(checkpoint.digest.hex)\"}}")
    }

    private func appendLine(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        bytes.withUnsafeBytes { file.append($0) }
    }

    var hasPending: Bool { file.hasPending }

    /// Writes and syncs what was appended since the last commit.
    func commit() throws(JournalError) {
        do throws(Errno) {
            try file.commit()
        } catch {
            throw JournalError(.io, "writing journal \(path) failed: \(error)", errno: error.rawValue)
        }
    }
}

/// How a run resumes from a journal that already holds outcomes.
public struct JournalResumeMode: Sendable, Hashable, CustomStringConvertible {
    private let name: String

    /// Input item N must be the task the journal recorded as N; any difference stops the run
    /// before a task is sent.
    public static let byPosition = JournalResumeMode(name: "by position")
    /// Input tasks the journal holds (by content, as a multiset) are skipped wherever they now
    /// stand; everything else runs and is recorded with its new id.
    public static let byContent = JournalResumeMode(name: "by content")

    public var description: String { name }
}

/// The input progress a journal records: the first `tasks` items, and the digest of them all.
struct InputCheckpoint: Equatable, Sendable {
    var tasks: UInt64
    var digest: TaskDigest
}

/// Why a journal cannot be used, or failed; ``code`` tells the kinds apart.
public struct JournalError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable {
        private let value: Int
        /// An input item differs from the task the journal recorded for its position.
        public static let inputChanged = Code(value: 1)
        /// The journal recorded more input items than the input now has.
        public static let inputShrank = Code(value: 2)
        /// A line in the middle of the journal is not one of its records.
        public static let damaged = Code(value: 3)
        /// The file is not a journal of this format (an older producer's, or another file).
        public static let unsupportedFormat = Code(value: 4)
        /// The journal was resumed by content; its ids do not follow one input any more.
        public static let resumedByContent = Code(value: 5)
        /// Reading, writing or syncing the file failed.
        public static let io = Code(value: 6)
    }

    public let code: Code
    public let description: String
    /// The `errno` of an ``Code/io`` error.
    public let errno: Int32?

    init(_ code: Code, _ description: String, errno: Int32? = nil) {
        self.code = code
        self.description = description
        self.errno = errno
    }

    static func system(_ what: String) -> JournalError {
        let number = Glibc.errno
        return JournalError(.io, "\(what): \(String(cString: strerror(number)))", errno: number)
    }

    /// Whether this says the journal does not fit the input or is unreadable (the data is
    /// wrong), rather than that the file system failed.
    public var isDataError: Bool { code != .io }
}

/// What a journal holds, read once when it is opened: a pure parse, with no file access.
struct JournalIndex {
    /// Outcome records by task id (resuming by position).
    private(set) var digestsByID: [UInt64: TaskDigest] = [:]
    /// How many outcome records carry each digest (resuming by content).
    private(set) var countsByDigest: [TaskDigest: Int] = [:]
    private(set) var recordCount = 0
    private(set) var highestID: UInt64 = 0
    /// The last input checkpoint.
    private(set) var checkpoint: InputCheckpoint?
    private(set) var resumedByContent = false
    /// Journal line numbers (from 1) that are not records, in order.
    private(set) var damagedLines: [Int] = []
    /// Bytes up to the last complete line: a torn last line is cut off.
    private(set) var validLength = 0
    /// Whether the last line was torn (no newline) and is cut off.
    private(set) var tornTail = false

    /// Reads the journal's bytes.
    ///
    /// - Throws: ``JournalError/Code/unsupportedFormat`` for a file that does not start with
    ///   the header (an older producer's journal among them), ``JournalError/Code/resumedByContent``
    ///   when resuming by position a journal once resumed by content.
    static func parse(_ bytes: [UInt8], mode: JournalResumeMode, path: String) throws(JournalError) -> JournalIndex {
        var index = JournalIndex()
        let newline = UInt8(ascii: "\n")
        index.validLength = bytes.lastIndex(of: newline).map { $0 + 1 } ?? 0
        index.tornTail = index.validLength < bytes.count
        var lineNumber = 0
        var start = 0
        while start < index.validLength {
            guard let end = bytes[start..<index.validLength].firstIndex(of: newline) else { break }
            let line = bytes[start..<end]
            start = end + 1
            lineNumber += 1
            if lineNumber == 1 {
                if line.elementsEqual(Journal.header.utf8) { continue }
                let fields = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any]
                if fields?["id"] != nil && fields?["sha256"] == nil {
                    throw JournalError(
                        .unsupportedFormat,
                        "journal \(path) was written by an older producer: its records carry no task hashes, "
                            + "so it cannot be checked against the input; start a new journal")
                }
                throw JournalError(
                    .unsupportedFormat,
                    "\(path) is not a journal of this producer (its first line is not the journal header); "
                        + "name a new file with --journal")
            }
            if let record = outcomeRecord(line) {
                index.add(record, mode: mode, lineNumber: lineNumber)
                continue
            }
            switch otherRecord(line) {
            case .checkpoint(let checkpoint): index.checkpoint = checkpoint
            case .contentResume: index.resumedByContent = true
            case nil: index.damagedLines.append(lineNumber)
            }
        }
        if mode == .byPosition && index.resumedByContent {
            throw JournalError(
                .resumedByContent,
                "journal \(path) was resumed by content (--resume-by-content): its ids no longer follow one input; "
                    + "resume it by content again, or start a new journal")
        }
        return index
    }

    private mutating func add(_ record: (id: UInt64, digest: TaskDigest), mode: JournalResumeMode, lineNumber: Int) {
        if mode == .byContent {
            countsByDigest[record.digest, default: 0] += 1
        } else if let earlier = digestsByID.updateValue(record.digest, forKey: record.id), earlier != record.digest {
            // One id, two different tasks: not a journal of one input.
            digestsByID[record.id] = earlier
            damagedLines.append(lineNumber)
            return
        }
        recordCount += 1
        highestID = max(highestID, record.id)
    }

    /// `{"id":N,...,"sha256":"<64 hex>"}`, the only shape this producer writes outcomes in: the id
    /// first, the digest last. Read without a JSON parser: journals hold millions of them.
    static func outcomeRecord(_ line: ArraySlice<UInt8>) -> (id: UInt64, digest: TaskDigest)? {
        let prefix = #"{"id":"#.utf8
        let suffixLength = #","sha256":""#.utf8.count + 64 + 2
        guard line.count > prefix.count + suffixLength, line.starts(with: prefix) else { return nil }
        var position = line.startIndex + prefix.count
        var id: UInt64 = 0
        var digits = 0
        while position < line.endIndex, let digit = line[position].asciiDigit {
            let (times, overflowTimes) = id.multipliedReportingOverflow(by: 10)
            let (sum, overflowSum) = times.addingReportingOverflow(UInt64(digit))
            guard !overflowTimes, !overflowSum else { return nil }
            id = sum
            digits += 1
            position += 1
        }
        guard digits > 0, id > 0, position < line.endIndex, line[position] == UInt8(ascii: ",") else { return nil }
        let tail = line.suffix(suffixLength)
        guard tail.starts(with: #","sha256":""#.utf8), tail.last == UInt8(ascii: "}"),
            tail[tail.endIndex - 2] == UInt8(ascii: "\""),
            let digest = TaskDigest(hex: tail.dropFirst(#","sha256":""#.utf8.count).dropLast(2))
        else { return nil }
        return (id, digest)
    }

    enum OtherRecord {
        case checkpoint(InputCheckpoint)
        case contentResume
    }

    static func otherRecord(_ line: ArraySlice<UInt8>) -> OtherRecord? {
        if line.elementsEqual(Journal.contentResumeMarker.utf8) { return .contentResume }
        guard let fields = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
            fields.count == 1, let input = fields["input"] as? [String: Any],
            let tasks = (input["tasks"] as? NSNumber)?.uint64Value,
            let hex = input["sha256"] as? String, let digest = TaskDigest(hex: Array(hex.utf8))
        else { return nil }
        return .checkpoint(InputCheckpoint(tasks: tasks, digest: digest))
    }
}

extension UInt8 {
    fileprivate var asciiDigit: UInt8? {
        self >= UInt8(ascii: "0") && self <= UInt8(ascii: "9") ? self - UInt8(ascii: "0") : nil
    }
}
