import Foundation

/// Fast paths in front of Foundation's JSON coders for the small payloads tasks carry.
///
/// Profiling a null task showed Foundation's `JSONDecoder` and `JSONEncoder` at nearly three quarters of
/// a worker's per-task instructions. The fast paths here handle the common shapes (flat objects of
/// plain integers, simple strings, booleans; integer, boolean and plain-string results) and hand
/// everything else to Foundation, so results and error messages stay Foundation's:
///
/// - ``FastJSONDecoder`` parses the payload into a flat token array and decodes from it. Whenever it
///   meets anything it is not certain Foundation would decode to the same value (escapes, non-ASCII
///   keys, duplicate keys, numbers outside the exactly-converted range, `Data`/`Date`/`URL`/`Decimal`,
///   a missing key, a type mismatch, any parse error, ...) it throws ``Fallback``, and the caller
///   decodes the same bytes with Foundation, which then produces the value or the usual error.
/// - ``FastJSONEncoder`` writes fixed-width integers, `Bool`, and strings of printable ASCII without
///   `"` or `\`; anything else is `nil`, and the caller uses `JSONEncoder`.
enum FastJSON {
    /// The fast path cannot vouch for this input; decode it with Foundation instead.
    struct Fallback: Error {}

    /// Deeper nesting than this falls back (Foundation's own limit is 512).
    static let maxDepth = 64

    /// The most values an input line's fast path reads (8 KiB of tokens, on the stack).
    static let maxLineTokens = 256

    /// `payload` decoded as `type`: the fast path, else `decoder` on the same bytes (its value or
    /// its error). The fast path decodes as a `JSONDecoder` with default strategies and empty
    /// `userInfo` does, so `decoder` must be one.
    static func decode<T: Decodable>(_ type: T.Type, from payload: [UInt8], fallback decoder: JSONDecoder) throws -> T {
        if let value = try? FastJSONDecoder.decode(type, from: payload) {
            return value
        }
        return try payload.withUnsafeBytes { raw in
            guard let base = raw.baseAddress, raw.count > 0 else {
                return try decoder.decode(type, from: Data())
            }
            // No copy: the Data lives only for this call, and JSONDecoder copies the bytes itself
            // should a decoder escape the call.
            let data = Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: base), count: raw.count, deallocator: .none)
            return try decoder.decode(type, from: data)
        }
    }

    /// The fields of an input line `{"task": NAME, "args": {...}|[...], "time_limit": N}`, with the
    /// arguments' bytes as written; nil whenever the line is anything else (invalid, escapes, a
    /// scalar `args`, ...), so the caller's Foundation path decides and explains.
    static func taskLine(_ line: UnsafeBufferPointer<UInt8>) -> (
        name: String, args: [UInt8], timeLimit: Double?, retries: Int?
    )? {
        // A line's values, not its length, decide: a line of a few long strings (64 KiB of
        // arguments) fits in a few tokens. One with more values than this falls back.
        let capacity = min(FastJSONParser.capacity(forLength: line.count), maxLineTokens)
        return withUnsafeTemporaryAllocation(of: FastJSONToken.self, capacity: capacity) { tokens in
            guard let count = try? FastJSONParser.parse(line, into: tokens), count > 0, tokens[0].kind == .object
            else { return nil }
            /// Whether `key` is `word`: lengths, then bytes (`elementsEqual` on a `String.UTF8View`
            /// went element by element, a tenth of the input thread's time on a short line).
            func matches(_ key: UnsafeBufferPointer<UInt8>, _ word: StaticString) -> Bool {
                key.count == word.utf8CodeUnitCount && memcmp(key.baseAddress!, word.utf8Start, key.count) == 0
            }
            func text(_ token: FastJSONToken) -> UnsafeBufferPointer<UInt8> {
                UnsafeBufferPointer(rebasing: line[Int(token.start)..<Int(token.end)])
            }
            var name: String?
            // Made only when the line has none (made and dropped, it cost every line a malloc).
            var args: [UInt8]?
            var timeLimit: Double?
            var retries: Int?
            var index = 1
            for _ in 0..<tokens[0].count {
                let key = text(tokens[index])
                let value = tokens[index + 1]
                if matches(key, "task") {
                    guard value.kind == .string else { return nil }
                    name = String(decoding: text(value), as: UTF8.self)
                } else if matches(key, "args") {
                    guard value.kind == .object || value.kind == .array else { return nil }
                    args = Array(text(value))
                } else if matches(key, "time_limit") {
                    guard value.kind == .number, let seconds = Double(String(decoding: text(value), as: UTF8.self))
                    else { return nil }
                    timeLimit = seconds
                } else if matches(key, "retries") {
                    // Plain digits only; anything else takes the general path, which words the error.
                    guard value.kind == .number, let count = Int(String(decoding: text(value), as: UTF8.self))
                    else { return nil }
                    retries = count
                }
                index = Int(value.next)
            }
            guard let name else { return nil }
            return (name, args ?? Array("{}".utf8), timeLimit, retries)
        }
    }

    /// `value` as JSON: the fast path when it applies, else `encoder`.
    static func encode<T: Encodable>(_ value: T, fallback encoder: JSONEncoder) throws -> [UInt8] {
        if let bytes = FastJSONEncoder.encode(value) {
            return bytes
        }
        return Array(try encoder.encode(value))
    }
}

// MARK: - Encoding

/// Writes the outputs whose JSON is obvious, byte for byte as `JSONEncoder` (with
/// `[.sortedKeys, .withoutEscapingSlashes]`) would: fixed-width integers, `Bool`, and strings of
/// printable ASCII without `"` or `\`. Returns `nil` for anything else.
enum FastJSONEncoder {
    private static let integerTypes: Set<ObjectIdentifier> = [
        ObjectIdentifier(Int.self), ObjectIdentifier(Int8.self), ObjectIdentifier(Int16.self),
        ObjectIdentifier(Int32.self), ObjectIdentifier(Int64.self), ObjectIdentifier(UInt.self),
        ObjectIdentifier(UInt8.self), ObjectIdentifier(UInt16.self), ObjectIdentifier(UInt32.self),
        ObjectIdentifier(UInt64.self),
    ]

    static func encode<T: Encodable>(_ value: T) -> [UInt8]? {
        if T.self == String.self, let text = value as? String { return string(text) }
        if T.self == Bool.self, let flag = value as? Bool { return Array((flag ? "true" : "false").utf8) }
        // The standard integers only: a type of one's own may encode itself another way, and
        // 128-bit ones need more digits than `integer` writes.
        if integerTypes.contains(ObjectIdentifier(T.self)), let number = value as? any FixedWidthInteger {
            return integer(number)
        }
        return nil
    }

    /// `"text"`, or `nil` when any byte is outside `0x20...0x7E` or is `"` or `\`.
    static func string(_ value: String) -> [UInt8]? {
        var value = value
        return value.withUTF8 { text -> [UInt8]? in
            for byte in text {
                guard byte >= 0x20, byte <= 0x7E, byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\\") else {
                    return nil
                }
            }
            return [UInt8](unsafeUninitializedCapacity: text.count + 2) { out, count in
                out[0] = UInt8(ascii: "\"")
                if let base = text.baseAddress, !text.isEmpty {
                    (out.baseAddress! + 1).initialize(from: base, count: text.count)
                }
                out[text.count + 1] = UInt8(ascii: "\"")
                count = text.count + 2
            }
        }
    }

    /// The decimal digits of `value`, with a leading `-` when negative.
    static func integer<I: FixedWidthInteger>(_ value: I) -> [UInt8] {
        var magnitude = UInt64(value.magnitude)
        let negative = value < 0
        // 20 digits hold UInt64.max; one more for the sign.
        return [UInt8](unsafeUninitializedCapacity: 21) { out, count in
            var end = 21
            repeat {
                end -= 1
                out[end] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: magnitude % 10)
                magnitude /= 10
            } while magnitude != 0
            if negative {
                end -= 1
                out[end] = UInt8(ascii: "-")
            }
            let length = 21 - end
            if end != 0 {
                for index in 0..<length { out[index] = out[end + index] }
            }
            count = length
        }
    }
}

// MARK: - Parsing

/// One JSON value in the flat token array, in document order: an object's token is followed by its
/// members (a key token, then the value's tokens), an array's by its elements.
struct FastJSONToken {
    enum Kind: UInt8 {
        case null, `false`, `true`, string, number, object, array
    }

    static let negative: UInt8 = 1
    /// A number written as a plain integer (no fraction or exponent) whose magnitude fits a UInt64.
    static let integer: UInt8 = 2

    var kind: Kind
    var flags: UInt8 = 0
    /// Byte range of a string's contents (without quotes), a number's text, or a whole object or
    /// array (brackets included).
    var start: UInt32 = 0
    var end: UInt32 = 0
    /// The index of the token after this value (and, for a container, all its contents).
    var next: UInt32 = 0
    /// Members of an object, elements of an array.
    var count: UInt32 = 0
    /// A plain integer's magnitude.
    var magnitude: UInt64 = 0
}

/// A strict RFC 8259 parser that accepts a subset of what Foundation accepts: anything it is unsure
/// of (escapes, non-ASCII keys, duplicate keys, deep nesting, invalid UTF-8) throws ``FastJSON/Fallback``.
struct FastJSONParser {
    private let bytes: UnsafePointer<UInt8>
    private let length: Int
    private var position = 0
    private let tokens: UnsafeMutablePointer<FastJSONToken>
    private let capacity: Int
    private var count = 0

    private init(bytes: UnsafePointer<UInt8>, length: Int, tokens: UnsafeMutableBufferPointer<FastJSONToken>) {
        self.bytes = bytes
        self.length = length
        self.tokens = tokens.baseAddress!
        self.capacity = tokens.count
    }

    /// Texts with more values than this fall back: the fast path is for small payloads, and the
    /// tokens (32 bytes each) should not cost many times a large payload's size.
    static let maxTokens = 4096

    /// Enough tokens for any valid JSON text of `length` bytes (each value beyond the first takes
    /// at least two bytes: `bytes >= 2 * tokens - 1`, by induction over the grammar), at most
    /// ``maxTokens``.
    static func capacity(forLength length: Int) -> Int {
        min(length / 2 + 2, maxTokens)
    }

    /// Parses `buffer` into `tokens`, returning the count. With fewer tokens than
    /// ``capacity(forLength:)``, a valid text with more values than `tokens` holds falls back.
    static func parse(_ buffer: UnsafeBufferPointer<UInt8>, into tokens: UnsafeMutableBufferPointer<FastJSONToken>)
        throws(FastJSON.Fallback) -> Int
    {
        guard let base = buffer.baseAddress, !buffer.isEmpty, buffer.count < Int(UInt32.max), !tokens.isEmpty else {
            throw FastJSON.Fallback()
        }
        var parser = FastJSONParser(bytes: base, length: buffer.count, tokens: tokens)
        parser.skipWhitespace()
        try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.position == parser.length else { throw FastJSON.Fallback() }
        return parser.count
    }

    /// Appends a token, returning its index. With ``capacity(forLength:)`` tokens only an invalid
    /// text (say `[[[[`) or one of more than ``maxTokens`` values runs out of room.
    @inline(__always)
    private mutating func append(_ token: FastJSONToken) throws(FastJSON.Fallback) -> Int {
        guard count < capacity else { throw FastJSON.Fallback() }
        (tokens + count).initialize(to: token)
        count += 1
        return count - 1
    }

    @inline(__always)
    private mutating func skipWhitespace() {
        while position < length {
            switch bytes[position] {
            case 0x20, 0x0A, 0x0D, 0x09: position += 1
            default: return
            }
        }
    }

    @inline(__always)
    private func peek() -> UInt8? {
        position < length ? bytes[position] : nil
    }

    private mutating func parseValue(depth: Int) throws(FastJSON.Fallback) {
        guard let byte = peek() else { throw FastJSON.Fallback() }
        switch byte {
        case UInt8(ascii: "{"): try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): try parseString(isKey: false)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try parseNumber()
        case UInt8(ascii: "t"): try parseLiteral("true", .true)
        case UInt8(ascii: "f"): try parseLiteral("false", .false)
        case UInt8(ascii: "n"): try parseLiteral("null", .null)
        default: throw FastJSON.Fallback()
        }
    }

    private mutating func parseLiteral(_ word: StaticString, _ kind: FastJSONToken.Kind) throws(FastJSON.Fallback) {
        let wordLength = word.utf8CodeUnitCount
        guard length - position >= wordLength, memcmp(bytes + position, word.utf8Start, wordLength) == 0 else {
            throw FastJSON.Fallback()
        }
        position += wordLength
        _ = try append(FastJSONToken(kind: kind, next: UInt32(count + 1)))
    }

    private mutating func parseObject(depth: Int) throws(FastJSON.Fallback) {
        guard depth <= FastJSON.maxDepth else { throw FastJSON.Fallback() }
        let index = try append(FastJSONToken(kind: .object))
        let open = position
        position += 1
        skipWhitespace()
        var members = 0
        if peek() == UInt8(ascii: "}") {
            position += 1
        } else {
            while true {
                guard peek() == UInt8(ascii: "\"") else { throw FastJSON.Fallback() }
                try parseString(isKey: true)
                skipWhitespace()
                guard peek() == UInt8(ascii: ":") else { throw FastJSON.Fallback() }
                position += 1
                skipWhitespace()
                try parseValue(depth: depth)
                members += 1
                skipWhitespace()
                guard let byte = peek() else { throw FastJSON.Fallback() }
                position += 1
                if byte == UInt8(ascii: ",") {
                    skipWhitespace()
                } else if byte == UInt8(ascii: "}") {
                    break
                } else {
                    throw FastJSON.Fallback()
                }
            }
        }
        tokens[index].count = UInt32(members)
        tokens[index].next = UInt32(count)
        tokens[index].start = UInt32(open)
        tokens[index].end = UInt32(position)
        if members > 1 { try checkDistinctKeys(object: index, count: members) }
    }

    private mutating func parseArray(depth: Int) throws(FastJSON.Fallback) {
        guard depth <= FastJSON.maxDepth else { throw FastJSON.Fallback() }
        let index = try append(FastJSONToken(kind: .array))
        let open = position
        position += 1
        skipWhitespace()
        var elements = 0
        if peek() == UInt8(ascii: "]") {
            position += 1
        } else {
            while true {
                try parseValue(depth: depth)
                elements += 1
                skipWhitespace()
                guard let byte = peek() else { throw FastJSON.Fallback() }
                position += 1
                if byte == UInt8(ascii: ",") {
                    skipWhitespace()
                } else if byte == UInt8(ascii: "]") {
                    break
                } else {
                    throw FastJSON.Fallback()
                }
            }
        }
        tokens[index].count = UInt32(elements)
        tokens[index].next = UInt32(count)
        tokens[index].start = UInt32(open)
        tokens[index].end = UInt32(position)
    }

    /// A string without escapes or control characters; a key must be ASCII (so that byte equality is
    /// `String` equality), a value valid UTF-8.
    private mutating func parseString(isKey: Bool) throws(FastJSON.Fallback) {
        position += 1
        let start = position
        var ascii = true
        // Eight bytes at a time while none is a quote, a backslash, a control or a non-ASCII byte:
        // large string arguments (a 64 KiB blob) are mostly such words. (Swift's SIMD16 compares
        // were measured at 57 instructions a byte here, not vectorised; this is about 2.)
        while position + 8 <= length {
            let word = UInt64(littleEndian: UnsafeRawPointer(bytes + position).loadUnaligned(as: UInt64.self))
            guard !Self.mayEndOrEscape(word) else { break }
            position += 8
        }
        while true {
            guard position < length else { throw FastJSON.Fallback() }
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") { break }
            if byte == UInt8(ascii: "\\") || byte < 0x20 { throw FastJSON.Fallback() }
            if byte >= 0x80 { ascii = false }
            position += 1
        }
        let end = position
        position += 1
        if !ascii {
            guard !isKey,
                String(validating: UnsafeBufferPointer(start: bytes + start, count: end - start), as: UTF8.self) != nil
            else { throw FastJSON.Fallback() }
        }
        _ = try append(FastJSONToken(kind: .string, start: UInt32(start), end: UInt32(end), next: UInt32(count + 1)))
    }

    /// Whether any byte of `word` is `"`, `\\`, below 0x20 or 0x80 and above (SWAR: the high bit
    /// of a byte's lane is set where the byte matches; exact for "any").
    @inline(__always)
    private static func mayEndOrEscape(_ word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        func hasZero(_ x: UInt64) -> UInt64 { (x &- ones) & ~x & highs }
        let quote = hasZero(word ^ (ones &* 0x22))
        let backslash = hasZero(word ^ (ones &* 0x5C))
        let control = (word &- ones &* 0x20) & ~word & highs
        return (quote | backslash | control | (word & highs)) != 0
    }

    private static func isDigit(_ byte: UInt8) -> Bool {
        byte &- UInt8(ascii: "0") < 10
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, noting a plain integer's magnitude.
    private mutating func parseNumber() throws(FastJSON.Fallback) {
        let start = position
        var flags: UInt8 = FastJSONToken.integer
        if bytes[position] == UInt8(ascii: "-") {
            flags |= FastJSONToken.negative
            position += 1
        }
        guard let first = peek(), Self.isDigit(first) else { throw FastJSON.Fallback() }
        var magnitude: UInt64 = 0
        if first == UInt8(ascii: "0") {
            position += 1
            if let byte = peek(), Self.isDigit(byte) { throw FastJSON.Fallback() }
        } else {
            while let byte = peek(), Self.isDigit(byte) {
                let (times10, overflow1) = magnitude.multipliedReportingOverflow(by: 10)
                let (sum, overflow2) = times10.addingReportingOverflow(UInt64(byte &- UInt8(ascii: "0")))
                if overflow1 || overflow2 { flags &= ~FastJSONToken.integer }
                magnitude = sum
                position += 1
            }
        }
        if peek() == UInt8(ascii: ".") {
            flags &= ~FastJSONToken.integer
            position += 1
            guard let byte = peek(), Self.isDigit(byte) else { throw FastJSON.Fallback() }
            while let byte = peek(), Self.isDigit(byte) { position += 1 }
        }
        if let byte = peek(), byte | 0x20 == UInt8(ascii: "e") {
            flags &= ~FastJSONToken.integer
            position += 1
            if let sign = peek(), sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") { position += 1 }
            guard let digit = peek(), Self.isDigit(digit) else { throw FastJSON.Fallback() }
            while let byte = peek(), Self.isDigit(byte) { position += 1 }
        }
        _ = try append(
            FastJSONToken(
                kind: .number, flags: flags, start: UInt32(start), end: UInt32(position), next: UInt32(count + 1),
                magnitude: magnitude))
    }

    /// Foundation keeps the first of duplicate keys but lists each once in `allKeys`; rather than
    /// mimic that, duplicates fall back.
    private func checkDistinctKeys(object: Int, count: Int) throws(FastJSON.Fallback) {
        if count > 16 {
            var seen = Set<String>(minimumCapacity: count)
            var key = object + 1
            for _ in 0..<count {
                let token = tokens[key]
                let name = String(
                    decoding: UnsafeBufferPointer(start: bytes + Int(token.start), count: Int(token.end - token.start)),
                    as: UTF8.self)
                guard seen.insert(name).inserted else { throw FastJSON.Fallback() }
                key = Int(tokens[key + 1].next)
            }
            return
        }
        var key = object + 1
        for index in 0..<(count - 1) {
            let first = tokens[key]
            var other = Int(tokens[key + 1].next)
            for _ in (index + 1)..<count {
                let second = tokens[other]
                if first.end - first.start == second.end - second.start,
                    memcmp(bytes + Int(first.start), bytes + Int(second.start), Int(first.end - first.start)) == 0
                {
                    throw FastJSON.Fallback()
                }
                other = Int(tokens[other + 1].next)
            }
            key = Int(tokens[key + 1].next)
        }
    }
}
