import Foundation

/// Writes the `exec` task's result object straight into bytes: a command's output can be
/// megabytes, and escaping it byte by byte here is a copy where a JSON encoder is several.
struct ExecResultJSON {
    private(set) var bytes: [UInt8] = []
    private var first = true

    mutating func open() {
        bytes.reserveCapacity(256)
        bytes.append(UInt8(ascii: "{"))
    }

    mutating func close() { bytes.append(UInt8(ascii: "}")) }

    private mutating func key(_ name: String) {
        if !first { bytes.append(UInt8(ascii: ",")) }
        first = false
        Self.appendString(Array(name.utf8)[...], to: &bytes)
        bytes.append(UInt8(ascii: ":"))
    }

    mutating func field(_ name: String, string: String) {
        key(name)
        Self.appendString(Array(string.utf8)[...], to: &bytes)
    }

    mutating func field(_ name: String, strings: [String]) {
        key(name)
        bytes.append(UInt8(ascii: "["))
        for (index, string) in strings.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            Self.appendString(Array(string.utf8)[...], to: &bytes)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    mutating func field(_ name: String, integer: Int) {
        key(name)
        DecimalText.append(integer, to: &bytes)
    }

    mutating func fieldNull(_ name: String) {
        key(name)
        bytes.append(contentsOf: [0x6E, 0x75, 0x6C, 0x6C])  // null
    }

    mutating func field(_ name: String, bool: Bool) {
        key(name)
        bytes.append(contentsOf: bool ? Array("true".utf8) : Array("false".utf8))
    }

    mutating func field(_ name: String, seconds nanoseconds: UInt64) {
        key(name)
        bytes.append(contentsOf: String(format: "%.6f", Double(nanoseconds) / 1e9).utf8)
    }

    /// `NAME` (text or base64), `NAME_encoding`, `NAME_bytes`, `NAME_truncated`.
    mutating func field(_ name: String, captured: CommandRun.Captured) {
        let text = Self.utf8Prefix(captured.bytes, truncated: captured.truncated)
        key(name)
        if let text {
            Self.appendString(text, to: &bytes)
        } else {
            bytes.append(UInt8(ascii: "\""))
            bytes.append(contentsOf: Data(captured.bytes).base64EncodedString().utf8)
            bytes.append(UInt8(ascii: "\""))
        }
        field(name + "_encoding", string: text == nil ? "base64" : "utf-8")
        field(name + "_bytes", integer: captured.total)
        field(name + "_truncated", bool: captured.truncated)
    }

    /// The bytes as UTF-8 text, or nil when they are not. Output cut at the limit may end inside
    /// a character: that partial character is dropped rather than making it all binary.
    static func utf8Prefix(_ bytes: [UInt8], truncated: Bool) -> ArraySlice<UInt8>? {
        var end = bytes.count
        if truncated {
            // Back over continuation bytes to the last lead byte; drop it if its character is cut.
            var lead = end - 1
            while lead >= 0 && lead > end - 4 && bytes[lead] & 0xC0 == 0x80 { lead -= 1 }
            if lead >= 0 {
                let byte = bytes[lead]
                let length = byte < 0x80 ? 1 : byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 1
                if lead + length > end { end = lead }
            }
        }
        let slice = bytes[0..<end]
        guard String(validating: slice, as: UTF8.self) != nil else { return nil }
        return slice
    }

    /// `text` (valid UTF-8) as a JSON string.
    static func appendString(_ text: ArraySlice<UInt8>, to bytes: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        bytes.reserveCapacity(bytes.count + text.count + 2)
        bytes.append(UInt8(ascii: "\""))
        for byte in text {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [0x5C, 0x22])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: bytes.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: bytes.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: bytes.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0..<0x20, 0x7F:
                bytes.append(contentsOf: [
                    0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xF)],
                ])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
