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
    /// and the journal's hot path).
    public func appendJSONLine(to bytes: inout [UInt8]) {
        appendJSONFields(to: &bytes)
        bytes.append(UInt8(ascii: "}"))
    }

    /// The object without its closing brace, for a writer that adds fields of its own.
    func appendJSONFields(to bytes: inout [UInt8]) {
        bytes.reserveCapacity(bytes.count + 96 + payload.count + name.utf8.count)
        Self.appendLiteral(#"{"id":"#, to: &bytes)
        DecimalText.append(Int(truncatingIfNeeded: id), to: &bytes)
        Self.appendLiteral(#","task":"#, to: &bytes)
        Self.appendQuoted(name, to: &bytes)
        Self.appendLiteral(#","status":""#, to: &bytes)
        Self.append(status.description, to: &bytes)
        if status == .ok {
            Self.appendLiteral(#"","result":"#, to: &bytes)
            bytes.append(contentsOf: payload)
        } else {
            Self.appendLiteral(#"","error":"#, to: &bytes)
            Self.appendQuoted(message, to: &bytes)
        }
        if let worker {
            Self.appendLiteral(#","worker":"#, to: &bytes)
            Self.appendQuoted(worker.name, to: &bytes)
            Self.appendLiteral(#","host":"#, to: &bytes)
            Self.appendQuoted(worker.host, to: &bytes)
            Self.appendLiteral(#","pid":"#, to: &bytes)
            DecimalText.append(Int(worker.pid), to: &bytes)
        }
        Self.appendLiteral(#","run_us":"#, to: &bytes)
        DecimalText.append(Int(runMicroseconds), to: &bytes)
        // Only when they tell something: a task that ended at its first try, sent once, has neither.
        if attempts > 1 {
            Self.appendLiteral(#","attempts":"#, to: &bytes)
            DecimalText.append(Int(attempts), to: &bytes)
        }
        if deliveries > max(attempts, 1) {
            Self.appendLiteral(#","deliveries":"#, to: &bytes)
            DecimalText.append(Int(deliveries), to: &bytes)
        }
    }

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

    /// A literal's UTF-8, with no copy of a `String` to reach it.
    static func appendLiteral(_ text: StaticString, to bytes: inout [UInt8]) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    static func appendQuoted(_ text: String, to bytes: inout [UInt8]) {
        // Names, hosts and most messages are plain ASCII: quoted in place, no serializer and
        // no array of their own.
        var text = text
        let plain = text.withUTF8 { utf8 -> Bool in
            guard
                !utf8.contains(where: { $0 < 0x20 || $0 > 0x7E || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }
                )
            else { return false }
            bytes.append(UInt8(ascii: "\""))
            bytes.append(contentsOf: utf8)
            bytes.append(UInt8(ascii: "\""))
            return true
        }
        if !plain { append(quoted(text), to: &bytes) }
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
