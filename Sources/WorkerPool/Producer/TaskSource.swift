import Foundation

/// One entry of the producer's input, before it gets an id.
public enum SourceItem: Sendable, Equatable {
    /// A task: registered name, JSON arguments, its own time limit and how many times a failed
    /// attempt is run again, 0-``TaskSource/maxRetries`` (nil: the producer's defaults). (Not an
    /// `Int?`: entries are copied on the way in, and a larger payload costs every task.)
    case task(name: String, payload: [UInt8], timeLimitSeconds: Double? = nil, retries: UInt16? = nil)
    /// Input that could not be turned into a task; it ends as a `bad-input` failure.
    case invalid(reason: String)
}

/// Where the producer's tasks come from. Sources stream: `emit` is called once per item and
/// blocks while the producer's window is full, so memory does not grow with the input.
public struct TaskSource: Sendable {
    /// Calls `emit` for each item and `willWait` before anything that may block (a read), so
    /// the feed can pass items on in batches yet never holds one back while the source waits.
    let run: @Sendable (_ emit: (consuming SourceItem) -> Bool, _ willWait: () -> Void) -> Void
    /// The source calls `willWait` before it may block; when false (a caller's own closure, which
    /// may wait anywhere), the feed passes each item on as soon as it is emitted.
    let announcesWaits: Bool

    /// - Parameter produce: calls `emit` for each item in order; stops early when it returns false.
    public init(_ produce: @escaping @Sendable (_ emit: (SourceItem) -> Bool) -> Void) {
        run = { emit, _ in produce { emit($0) } }
        announcesWaits = false
    }

    /// A source that calls `willWait` before every call that may block.
    init(
        announcingWaits run:
            @escaping @Sendable (_ emit: (consuming SourceItem) -> Bool, _ willWait: () -> Void) -> Void
    ) {
        self.run = run
        announcesWaits = true
    }

    /// Calls `emit` for each item in order, until it returns false.
    func produce(_ emit: (SourceItem) -> Bool) { run({ emit($0) }, {}) }

    /// Fixed items, for tests and small programs.
    public static func items(_ items: [SourceItem]) -> TaskSource {
        TaskSource(announcingWaits: { emit, _ in
            for item in items where !emit(item) { return }
        })
    }

    /// The lecture's demo: `multiply` of i by i for i in 0..<count.
    public static func lectureDemo(count: Int = 10) -> TaskSource { multiply(count: count) { ($0, $0) } }

    /// `count` `multiply` tasks with arguments from `operands(i)`; the payload is built without
    /// a JSON encoder so large generated runs measure the pool, not the generator.
    public static func multiply(count: Int, operands: @escaping @Sendable (Int) -> (Int, Int) = { ($0, 2) })
        -> TaskSource
    {
        TaskSource(announcingWaits: { emit, _ in
            for index in 0..<count {
                let (a, b) = operands(index)
                let payload = ByteCursor.bytes(capacity: 11 + 2 * DecimalText.maxLength) { cursor in
                    cursor.write(#"{"a":"#)
                    cursor.writeDecimal(a)
                    cursor.write(#","b":"#)
                    cursor.writeDecimal(b)
                    cursor.write(UInt8(ascii: "}"))
                }
                if !emit(.task(name: "multiply", payload: payload)) { return }
            }
        })
    }

    /// JSON lines read from `fileDescriptor` (stdin is 0): `{"task": "multiply", "args": {"a": 3, "b": 3}}`.
    /// Blank lines are skipped; a line that is not such an object becomes a `.invalid` item.
    public static func jsonLines(fileDescriptor: Int32, maxLineLength: Int = WireFormat.defaultMaxMessageSize)
        -> TaskSource
    {
        TaskSource(announcingWaits: { emit, willWait in
            var reader = LineReader(fileDescriptor: fileDescriptor, maxLineLength: maxLineLength)
            var lineNumber = 0
            while let line = reader.nextLine(beforeRead: willWait) {
                lineNumber += 1
                let item: SourceItem
                switch line {
                case .tooLong(let length):
                    item = .invalid(reason: "line \(lineNumber) is longer than \(maxLineLength) bytes (\(length)+)")
                case .line(let bytes):
                    if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
                    item = parseTaskLine(bytes, lineNumber: lineNumber)
                }
                if !emit(item) { return }
            }
            if let error = reader.readError {
                _ = emit(.invalid(reason: "reading input failed after line \(lineNumber): \(error)"))
            }
        })
    }

    /// Parses `{"task": NAME, "args": ANY, "time_limit": SECONDS, "retries": N}`; `args`
    /// defaults to `{}`, `time_limit` and `retries` are optional.
    static func parseTaskLine(_ bytes: ArraySlice<UInt8>, lineNumber: Int) -> SourceItem {
        // The usual line, read without Foundation; anything unusual or wrong takes the path below,
        // which also words the errors.
        if let fields = bytes.withUnsafeBufferPointer({ FastJSON.taskLine($0) }), !fields.name.isEmpty,
            fields.name.utf8.count <= WireFormat.maxNameLength,
            fields.timeLimit.map({ $0 > 0 && $0 < 4_000_000 }) ?? true,
            fields.retries.map({ $0 >= 0 && $0 <= maxRetries }) ?? true
        {
            return .task(
                name: fields.name, payload: fields.args, timeLimitSeconds: fields.timeLimit,
                retries: fields.retries.map { UInt16($0) })
        }
        return parseTaskLineWithFoundation(bytes, lineNumber: lineNumber)
    }

    /// The general path: any JSON Foundation reads, arguments re-encoded, errors worded.
    static func parseTaskLineWithFoundation(_ bytes: ArraySlice<UInt8>, lineNumber: Int) -> SourceItem {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
        } catch {
            return .invalid(reason: "line \(lineNumber) is not valid JSON")
        }
        guard let fields = object as? [String: Any] else {
            return .invalid(
                reason: "line \(lineNumber) must be a JSON object like {\"task\": \"multiply\", \"args\": {...}}")
        }
        guard let name = fields["task"] as? String, !name.isEmpty else {
            return .invalid(reason: "line \(lineNumber) has no \"task\" name (a non-empty string)")
        }
        guard name.utf8.count <= WireFormat.maxNameLength else {
            return .invalid(reason: "line \(lineNumber): task name is longer than \(WireFormat.maxNameLength) bytes")
        }
        var timeLimit: Double?
        if let raw = fields["time_limit"] {
            guard let seconds = (raw as? NSNumber)?.doubleValue, !isBoolean(raw), seconds > 0, seconds < 4_000_000
            else {
                return .invalid(reason: "line \(lineNumber): \"time_limit\" must be a positive number of seconds")
            }
            timeLimit = seconds
        }
        var retries: UInt16?
        if let raw = fields["retries"] {
            guard let number = raw as? NSNumber, !isBoolean(raw), let count = Int(exactly: number.doubleValue),
                (0...maxRetries).contains(count)
            else {
                return .invalid(
                    reason: "line \(lineNumber): \"retries\" must be a whole number from 0 to \(maxRetries)")
            }
            retries = UInt16(count)
        }
        let args = fields["args"] ?? [String: Any]()
        guard
            // Keys sorted: the same line gives the same bytes, and so the same digest, in every
            // run (a dictionary's order changes from one process to the next, and a journal
            // resumed then found its unchanged input "changed").
            let payload = try? JSONSerialization.data(
                withJSONObject: args, options: [.fragmentsAllowed, .withoutEscapingSlashes, .sortedKeys])
        else {
            return .invalid(reason: "line \(lineNumber): \"args\" cannot be encoded as JSON")
        }
        return .task(name: name, payload: Array(payload), timeLimitSeconds: timeLimit, retries: retries)
    }

    /// Whether a value JSONSerialization read is `true` or `false`. Not `is Bool`: on Linux the
    /// numbers 0 and 1 pass that test too; JSON's booleans are the NSNumbers of type char.
    private static func isBoolean(_ value: Any) -> Bool {
        guard let number = value as? NSNumber else { return value is Bool }
        return String(cString: number.objCType) == "c"
    }

    /// The most retries a task may ask for (`"retries"`, `--retries`).
    public static let maxRetries = 1_000
}

/// Reads newline-separated lines from a file descriptor in large blocks.
struct LineReader {
    enum Line {
        case line(ArraySlice<UInt8>)
        case tooLong(Int)
    }

    let fileDescriptor: Int32
    let maxLineLength: Int
    private var buffer: [UInt8] = []
    private var start = 0
    private var atEnd = false
    private(set) var readError: String?

    init(fileDescriptor: Int32, maxLineLength: Int) {
        self.fileDescriptor = fileDescriptor
        self.maxLineLength = maxLineLength
    }

    /// The index of the first newline in `buffer` at or after `index` (`memchr`: a byte-by-byte
    /// search took a fifth of the producer's time on 64 KiB lines).
    private func newlineIndex(from index: Int) -> Int? {
        guard index < buffer.count else { return nil }
        return buffer.withUnsafeBytes { raw in
            let base = raw.baseAddress!
            return memchr(base + index, 0x0A, raw.count - index).map { UnsafeRawPointer($0) - base }
        }
    }

    /// The next line; `beforeRead` is called before each read of the file descriptor.
    mutating func nextLine(beforeRead: () -> Void = {}) -> Line? {
        var skipping = 0
        // Bytes from `start` already searched for a newline: a long line arriving over several
        // reads is searched once, not again from its start after every read.
        var searched = 0
        while true {
            if let newline = newlineIndex(from: start + searched) {
                let line = buffer[start..<newline]
                start = newline + 1
                if skipping > 0 { return .tooLong(skipping + line.count) }
                return .line(line)
            }
            searched = buffer.count - start
            if buffer.count - start > maxLineLength {
                searched = 0
                skipping += buffer.count - start
                buffer.removeAll(keepingCapacity: true)
                start = 0
            }
            if atEnd {
                guard start < buffer.count || skipping > 0 else { return nil }
                let line = buffer[start...]
                start = buffer.count
                return skipping > 0 ? .tooLong(skipping + line.count) : .line(line)
            }
            if start > 0 {
                buffer.removeSubrange(0..<start)
                start = 0
            }
            beforeRead()
            let oldCount = buffer.count
            buffer.append(contentsOf: repeatElement(0, count: 1 << 16))
            let got = buffer.withUnsafeMutableBytes { raw in
                read(fileDescriptor, raw.baseAddress! + oldCount, 1 << 16)
            }
            if got < 0 && errno == EINTR {
                buffer.removeSubrange(oldCount...)
                continue
            }
            buffer.removeSubrange((oldCount + max(got, 0))...)
            if got < 0 { readError = String(cString: strerror(errno)) }
            if got <= 0 { atEnd = true }
        }
    }
}
