import Foundation

/// Writes one JSON object field by field, in order, for lines a person greps and `jq` reads.
struct JSONObjectWriter {
    private var bytes: [UInt8]
    private var first = true

    init(bytes: [UInt8] = []) {
        self.bytes = bytes
        self.bytes.append(UInt8(ascii: "{"))
    }

    /// The object's bytes, closed.
    consuming func finish() -> [UInt8] {
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }

    private mutating func key(_ key: String) {
        if !first { bytes.append(UInt8(ascii: ",")) }
        first = false
        JSONString(key).append(to: &bytes)
        bytes.append(UInt8(ascii: ":"))
    }

    mutating func field(_ name: String, _ value: String) {
        key(name)
        JSONString(value).append(to: &bytes)
    }

    mutating func field(_ name: String, _ value: Int) {
        key(name)
        DecimalText.append(value, to: &bytes)
    }

    mutating func field(_ name: String, _ value: Bool) {
        key(name)
        TaskOutcome.append(value ? "true" : "false", to: &bytes)
    }

    /// A length of time with millisecond precision (null when not finite).
    mutating func field(_ name: String, seconds value: Double) {
        key(name)
        TaskOutcome.append(value.isFinite ? String(format: "%.3f", value) : "null", to: &bytes)
    }

    mutating func object(_ name: String, _ body: (inout JSONObjectWriter) -> Void) {
        key(name)
        var nested = JSONObjectWriter()
        body(&nested)
        bytes.append(contentsOf: nested.finish())
    }

    mutating func array<Element>(
        _ name: String, _ elements: [Element], _ body: (inout JSONArrayWriter, Element) -> Void
    ) {
        key(name)
        var array = JSONArrayWriter()
        for element in elements { body(&array, element) }
        bytes.append(contentsOf: array.finish())
    }
}

/// The elements of a JSON array, for ``JSONObjectWriter/array(_:_:_:)``.
struct JSONArrayWriter {
    private var bytes: [UInt8] = [UInt8(ascii: "[")]
    private var first = true

    private mutating func separate() {
        if !first { bytes.append(UInt8(ascii: ",")) }
        first = false
    }

    mutating func string(_ value: String) {
        separate()
        JSONString(value).append(to: &bytes)
    }

    mutating func object(_ body: (inout JSONObjectWriter) -> Void) {
        separate()
        var object = JSONObjectWriter()
        body(&object)
        bytes.append(contentsOf: object.finish())
    }

    consuming func finish() -> [UInt8] {
        bytes.append(UInt8(ascii: "]"))
        return bytes
    }
}
