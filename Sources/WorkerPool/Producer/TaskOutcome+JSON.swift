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

    /// ``jsonLine``'s bytes appended to `bytes`, without building a String. A run's outcomes go
    /// through one ``OutcomeRecordWriter``, which keeps what they share quoted.
    public func appendJSONLine(to bytes: inout [UInt8]) {
        var writer = OutcomeRecordWriter()
        writer.appendJSONLine(self, to: &bytes)
    }

    /// The result as a person reads it: a JSON string result as its text (`3 * 3 = 9`), anything
    /// else as its compact JSON. A plain string (no escapes) needs no JSON reader.
    public var resultText: String {
        withPayload { payload in
            let quote = UInt8(ascii: "\"")
            let inner = payload.dropFirst().dropLast()
            if payload.count >= 2, payload.first == quote, payload.last == quote,
                !inner.contains(where: { $0 == UInt8(ascii: "\\") || $0 == quote })
            {
                return String(decoding: inner, as: UTF8.self)
            }
            if payload.first == UInt8(ascii: "\""),
                let text = try? JSONSerialization.jsonObject(with: Data(payload), options: [.fragmentsAllowed])
                    as? String
            {
                return text
            }
            return String(decoding: payload, as: UTF8.self)
        }
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
