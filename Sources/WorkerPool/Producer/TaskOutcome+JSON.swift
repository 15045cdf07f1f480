import Foundation

extension TaskOutcome {
    /// One JSON object on one line, as `producer --output jsonl` prints and the journal stores:
    /// `{"id":1,"task":"multiply","status":"ok","result":"3 * 3 = 9","worker":"Worker-1",...}`.
    /// `attempts` appears when the task took more than one (retries), `deliveries` when it was
    /// sent more often than that (lost work sent again).
    public var jsonLine: String {
        var line: [UInt8] = []
        appendJSONLine(to: &line)
        return String(decoding: line, as: UTF8.self)
    }

    /// ``jsonLine``'s bytes appended to `bytes`, without building a String (the jsonl output's
    /// hot path).
    public func appendJSONLine(to bytes: inout [UInt8]) { appendRecord(to: &bytes, digest: nil) }

    /// The object as ``jsonLine`` has it, with `"sha256"` last when `digest` is given (the journal's
    /// record), and a newline after it when `newline`.
    ///
    /// Written in one pass through a cursor into room measured first, then appended in one copy:
    /// a piece-by-piece `append` costs a record some 2,500 instructions, and the journal and the
    /// jsonl output write one per task. Strings that need escaping (rare) are quoted before.
    func appendRecord(to bytes: inout [UInt8], digest: TaskDigest?, newline: Bool = false) {
        let name = JSONString(self.name)
        let message = status == .ok ? nil : JSONString(self.message)
        let workerName = worker.map { JSONString($0.name) }
        let host = worker.map { JSONString($0.host) }
        let room =
            Self.fixedRoom + name.length + (message?.length ?? payload.count) + (workerName?.length ?? 0)
            + (host?.length ?? 0)
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: room) { buffer in
            var cursor = ByteCursor(buffer.baseAddress!)
            cursor.write(#"{"id":"#)
            cursor.writeDecimal(Int(truncatingIfNeeded: id))
            cursor.write(#","task":"#)
            name.write(to: &cursor)
            cursor.write(#","status":""#)
            cursor.write(status.jsonName)
            if let message {
                cursor.write(#"","error":"#)
                message.write(to: &cursor)
            } else {
                cursor.write(#"","result":"#)
                payload.withUnsafeBufferPointer { cursor.write($0) }
            }
            if let worker, let workerName, let host {
                cursor.write(#","worker":"#)
                workerName.write(to: &cursor)
                cursor.write(#","host":"#)
                host.write(to: &cursor)
                cursor.write(#","pid":"#)
                cursor.writeDecimal(Int(worker.pid))
            }
            cursor.write(#","run_us":"#)
            cursor.writeDecimal(Int(runMicroseconds))
            // Only when they tell something: a task that ended at its first try, sent once, has neither.
            if attempts > 1 {
                cursor.write(#","attempts":"#)
                cursor.writeDecimal(Int(attempts))
            }
            if deliveries > max(attempts, 1) {
                cursor.write(#","deliveries":"#)
                cursor.writeDecimal(Int(deliveries))
            }
            if let digest {
                cursor.write(#","sha256":""#)
                digest.writeHex(to: &cursor)
                cursor.write(UInt8(ascii: "\""))
            }
            cursor.write(UInt8(ascii: "}"))
            if newline { cursor.write(0x0A) }
            bytes.append(
                contentsOf: UnsafeBufferPointer(start: buffer.baseAddress, count: cursor.position - buffer.baseAddress!)
            )
        }
    }

    /// Every byte of a record but its strings and result: the keys, six numbers of at most
    /// ``DecimalText/maxLength`` digits, the status, the digest and the punctuation.
    private static let fixedRoom = 128 + 6 * DecimalText.maxLength + 64

    /// The result as a person reads it: a JSON string result as its text (`3 * 3 = 9`), anything
    /// else as its compact JSON. A plain string (no escapes) needs no JSON reader.
    public var resultText: String {
        if payload.count >= 2, payload.first == UInt8(ascii: "\""), payload.last == UInt8(ascii: "\""),
            !payload.dropFirst().dropLast().contains(where: { $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "\"") })
        {
            return String(decoding: payload.dropFirst().dropLast(), as: UTF8.self)
        }
        if payload.first == UInt8(ascii: "\""),
            let text = try? JSONSerialization.jsonObject(with: Data(payload), options: [.fragmentsAllowed]) as? String
        {
            return text
        }
        return String(decoding: payload, as: UTF8.self)
    }

    /// A string's UTF-8 as one copy (appending a `String.UTF8View` goes byte by byte).
    static func append(_ text: String, to bytes: inout [UInt8]) {
        var text = text
        text.withUTF8 { bytes.append(contentsOf: $0) }
    }

    static func quoted(_ text: String) -> String {
        if let plain = FastJSONEncoder.string(text) { return String(decoding: plain, as: UTF8.self) }
        guard
            let data = try? JSONSerialization.data(
                withJSONObject: text, options: [.fragmentsAllowed, .withoutEscapingSlashes])
        else { return "\"\"" }
        return String(decoding: data, as: UTF8.self)
    }
}

/// A string as a JSON value: most (names, hosts, messages) are plain ASCII and written quoted
/// as they are; the rest are escaped once, here, so a writer knows their length before it writes.
struct JSONString {
    private var plain: String?
    private var escaped: [UInt8] = []
    /// Bytes written, quotes included.
    let length: Int

    init(_ text: String) {
        var text = text
        let isPlain = text.withUTF8 { utf8 in
            !utf8.contains { $0 < 0x20 || $0 > 0x7E || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }
        }
        if isPlain {
            plain = text
            length = text.utf8.count + 2
        } else {
            escaped = Array(TaskOutcome.quoted(text).utf8)
            length = escaped.count
        }
    }

    func write(to cursor: inout ByteCursor) {
        guard var plain else {
            escaped.withUnsafeBufferPointer { cursor.write($0) }
            return
        }
        cursor.write(UInt8(ascii: "\""))
        plain.withUTF8 { cursor.write($0) }
        cursor.write(UInt8(ascii: "\""))
    }

    func append(to bytes: inout [UInt8]) {
        guard var plain else {
            bytes.append(contentsOf: escaped)
            return
        }
        bytes.append(UInt8(ascii: "\""))
        plain.withUTF8 { bytes.append(contentsOf: $0) }
        bytes.append(UInt8(ascii: "\""))
    }
}
