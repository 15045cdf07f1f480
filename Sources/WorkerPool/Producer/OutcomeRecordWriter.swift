/// Writes outcomes as JSON records, the journal's and `--output jsonl`'s, one line per task.
///
/// It keeps the last task name and the last worker's fields (`"worker"`, `"host"`, `"pid"`)
/// quoted and ready. Consecutive outcomes almost always share both, so a record costs a
/// comparison instead of three scans for characters to escape. The bytes are the same as a
/// fresh writer's.
public struct OutcomeRecordWriter {
    private var name = ""
    /// Empty until the first record: a new writer allocates nothing.
    private var quotedName: [UInt8] = []
    /// Whose fields `workerFields` are: ``workerKey(of:)``; nil before the first record.
    private var worker: UInt64?
    /// `,"worker":"…","host":"…","pid":N` for `worker`; empty for none.
    private var workerFields: [UInt8] = []

    public init() {}

    /// ``TaskOutcome/jsonLine``'s bytes appended to `bytes`, without its newline.
    public mutating func appendJSONLine(_ outcome: TaskOutcome, to bytes: inout [UInt8]) {
        withUnsafePointer(to: outcome) { outcome in
            ByteCursor.append(to: &bytes, capacity: room(for: outcome)) {
                write(outcome, digest: nil, newline: false, to: &$0)
            }
        }
    }

    /// The most bytes ``write(_:digest:newline:to:)`` writes for `outcome`, for the room to
    /// measure first; it also readies what `outcome` shares with the one before.
    ///
    /// Both read the outcome where it lies: passed by value, it was copied first (four retains
    /// and releases a record), even inlined.
    @inline(__always)
    mutating func room(for outcome: UnsafePointer<TaskOutcome>) -> Int {
        if quotedName.isEmpty || outcome.pointee.name != name { quote(name: outcome.pointee.name) }
        let key = Self.workerKey(of: outcome)
        if key != worker {
            worker = key
            quote(worker: outcome.pointee.worker)
        }
        let result =
            outcome.pointee.status == .ok ? Self.payloadCount(of: outcome) : JSONString(outcome.pointee.message).length
        return Self.fixedRoom + quotedName.count + result + workerFields.count
    }

    /// The record of `outcome` through `cursor`, into room ``room(for:)`` measured just before;
    /// with `"sha256"` last when `digest` is given (the journal's), and a newline when `newline`.
    ///
    /// One pass through a cursor: a piece-by-piece `append` cost a record some 2,500
    /// instructions, and the journal and the jsonl output write one per task.
    @inline(__always)
    func write(_ outcome: UnsafePointer<TaskOutcome>, digest: TaskDigest?, newline: Bool, to cursor: inout ByteCursor) {
        cursor.write(#"{"id":"#)
        cursor.writeDecimal(Int(truncatingIfNeeded: outcome.pointee.id))
        cursor.write(#","task":"#)
        quotedName.withUnsafeBufferPointer { cursor.write($0) }
        cursor.write(#","status":""#)
        cursor.write(outcome.pointee.status.jsonName)
        if outcome.pointee.status == .ok {
            cursor.write(#"","result":"#)
            Self.writePayload(of: outcome, to: &cursor)
        } else {
            // Rare: escaped a second time rather than kept from `room(for:)`.
            cursor.write(#"","error":"#)
            JSONString(outcome.pointee.message).write(to: &cursor)
        }
        workerFields.withUnsafeBufferPointer { cursor.write($0) }
        cursor.write(#","run_us":"#)
        cursor.writeDecimal(Int(outcome.pointee.runMicroseconds))
        // Only when they tell something: a task that ended at its first try, sent once, has neither.
        if outcome.pointee.attempts > 1 {
            cursor.write(#","attempts":"#)
            cursor.writeDecimal(Int(outcome.pointee.attempts))
        }
        if outcome.pointee.deliveries > max(outcome.pointee.attempts, 1) {
            cursor.write(#","deliveries":"#)
            cursor.writeDecimal(Int(outcome.pointee.deliveries))
        }
        if let digest {
            cursor.write(#","sha256":""#)
            digest.writeHex(to: &cursor)
            cursor.write(UInt8(ascii: "\""))
        }
        cursor.write(UInt8(ascii: "}"))
        if newline { cursor.write(0x0A) }
    }

    /// The payload's length and bytes, read field by field: a method called on `pointee` (such
    /// as ``TaskOutcome/withPayload(_:)``) copied the whole outcome first.
    @inline(__always)
    private static func payloadCount(of outcome: UnsafePointer<TaskOutcome>) -> Int {
        let length = outcome.pointee.payloadLength
        return length == .max ? outcome.pointee.payloadStorage.count : Int(length)
    }

    @inline(__always)
    private static func writePayload(of outcome: UnsafePointer<TaskOutcome>, to cursor: inout ByteCursor) {
        let offset = Int(outcome.pointee.payloadOffset)
        let length = outcome.pointee.payloadLength
        outcome.pointee.payloadStorage.withUnsafeBufferPointer { bytes in
            cursor.write(length == .max ? bytes : UnsafeBufferPointer(rebasing: bytes[offset..<(offset + Int(length))]))
        }
    }

    /// A worker process's id and pid, 0 for none: its name and host come with them. Compared as
    /// one integer: `==` on the optional `WorkerInfo`s copied both, two retains and releases each.
    @inline(__always)
    private static func workerKey(of outcome: UnsafePointer<TaskOutcome>) -> UInt64 {
        guard let id = outcome.pointee.worker?.id, let pid = outcome.pointee.worker?.pid else { return 0 }
        return UInt64(id) << 32 | UInt64(pid)
    }

    private mutating func quote(name: String) {
        self.name = name
        quotedName.removeAll(keepingCapacity: true)
        JSONString(name).append(to: &quotedName)
    }

    private mutating func quote(worker: WorkerInfo?) {
        workerFields.removeAll(keepingCapacity: true)
        guard let worker else { return }
        workerFields.append(contentsOf: #","worker":"#.utf8)
        JSONString(worker.name).append(to: &workerFields)
        workerFields.append(contentsOf: #","host":"#.utf8)
        JSONString(worker.host).append(to: &workerFields)
        workerFields.append(contentsOf: #","pid":"#.utf8)
        DecimalText.append(Int(worker.pid), to: &workerFields)
    }

    /// Every byte of a record but its name, result and worker fields: the keys, four numbers of at
    /// most ``DecimalText/maxLength`` digits, the status, the digest and the punctuation.
    private static let fixedRoom = 128 + 4 * DecimalText.maxLength + 64
}
