import Foundation

/// Decodes a `Decodable` from JSON bytes as Foundation's `JSONDecoder` (default strategies) would,
/// or throws ``FastJSON/Fallback`` when it cannot be certain of that; see ``FastJSON``.
enum FastJSONDecoder {
    /// `payload` decoded as `type`; throws only ``FastJSON/Fallback``.
    static func decode<T: Decodable>(_ type: T.Type, from payload: [UInt8]) throws(FastJSON.Fallback) -> T {
        // The tokens live on the stack for small payloads (no allocation).
        try withUnsafeTemporaryAllocation(
            of: FastJSONToken.self, capacity: FastJSONParser.capacity(forLength: payload.count)
        ) { buffer throws(FastJSON.Fallback) -> T in
            let count = try payload.withUnsafeBufferPointer { bytes throws(FastJSON.Fallback) in
                try FastJSONParser.parse(bytes, into: buffer)
            }
            var decoder = FastJSONDecoderImpl(bytes: payload, tokens: UnsafeBufferPointer(rebasing: buffer[..<count]))
            defer {
                // A type that kept the decoder (or a container) must not be left with stack memory.
                if !isKnownUniquelyReferenced(&decoder) { decoder.copyTokens() }
            }
            let value: T
            do {
                value = try decoder.decodeValue(type, at: 0, path: nil)
            } catch {
                // A Fallback, or an error a type's own init(from:) threw: Foundation gives the answer.
                throw FastJSON.Fallback()
            }
            // The type may have caught a Fallback (`try?`) and gone on differently than it would
            // with Foundation's error or value.
            guard !decoder.fellBack else { throw FastJSON.Fallback() }
            return value
        }
    }
}

/// A coding path as a list from the innermost key out, turned into an array only when asked for.
final class FastJSONPath {
    let parent: FastJSONPath?
    let key: any CodingKey

    init(_ parent: FastJSONPath?, _ key: any CodingKey) {
        self.parent = parent
        self.key = key
    }

    static func keys(_ path: FastJSONPath?) -> [any CodingKey] {
        var keys: [any CodingKey] = []
        var node = path
        while let current = node {
            keys.append(current.key)
            node = current.parent
        }
        return keys.reversed()
    }
}

/// The `Decoder` over a parsed token array. Every "not sure" throws through ``fallback()``, which
/// also marks the whole decode as fallen back.
final class FastJSONDecoderImpl: Decoder, SingleValueDecodingContainer {
    let bytes: [UInt8]
    @exclusivity(unchecked) private(set) var tokens: UnsafeBufferPointer<FastJSONToken>
    private var ownedTokens: UnsafeMutableBufferPointer<FastJSONToken>?
    /// The value the decoder (as a single-value container) stands at, and its coding path.
    @exclusivity(unchecked) private var current = 0
    @exclusivity(unchecked) private var path: FastJSONPath?
    @exclusivity(unchecked) private(set) var fellBack = false

    init(bytes: [UInt8], tokens: UnsafeBufferPointer<FastJSONToken>) {
        self.bytes = bytes
        self.tokens = tokens
    }

    deinit {
        ownedTokens?.deallocate()
    }

    /// Moves the tokens off the caller's stack, for a decoder that outlives the decode.
    func copyTokens() {
        guard ownedTokens == nil else { return }
        let copy = UnsafeMutableBufferPointer<FastJSONToken>.allocate(capacity: tokens.count)
        _ = copy.initialize(from: tokens)
        ownedTokens = copy
        tokens = UnsafeBufferPointer(copy)
    }

    var codingPath: [any CodingKey] { FastJSONPath.keys(path) }

    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func fallback() -> FastJSON.Fallback {
        fellBack = true
        return FastJSON.Fallback()
    }

    // MARK: Decoder

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        try keyedContainer(type, at: current, path: path)
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try unkeyedContainer(at: current, path: path)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        self
    }

    func keyedContainer<Key: CodingKey>(_: Key.Type, at token: Int, path: FastJSONPath?) throws
        -> KeyedDecodingContainer<Key>
    {
        guard tokens[token].kind == .object else { throw fallback() }
        return KeyedDecodingContainer(FastJSONKeyedContainer<Key>(decoder: self, object: token, path: path))
    }

    func unkeyedContainer(at token: Int, path: FastJSONPath?) throws -> any UnkeyedDecodingContainer {
        guard tokens[token].kind == .array else { throw fallback() }
        return FastJSONUnkeyedContainer(decoder: self, array: token, path: path)
    }

    // MARK: Values

    /// Any `Decodable` at `token`, with coding path `path`.
    func decodeValue<T: Decodable>(_ type: T.Type, at token: Int, path: FastJSONPath?) throws -> T {
        // Foundation decodes these four its own way, not through their init(from:).
        if type == Data.self || type == Date.self || type == URL.self || type == Decimal.self {
            throw fallback()
        }
        let saved = (current, self.path)
        current = token
        self.path = path
        defer { (current, self.path) = saved }
        return try T(from: self)
    }

    func isNull(_ token: Int) -> Bool {
        tokens[token].kind == .null
    }

    func bool(at token: Int) throws -> Bool {
        switch tokens[token].kind {
        case .true: return true
        case .false: return false
        default: throw fallback()
        }
    }

    func string(at token: Int) throws -> String {
        let value = tokens[token]
        guard value.kind == .string else { throw fallback() }
        return bytes.withUnsafeBufferPointer { buffer in
            String(decoding: UnsafeBufferPointer(rebasing: buffer[Int(value.start)..<Int(value.end)]), as: UTF8.self)
        }
    }

    /// A plain integer that fits `T`; `-0`, fractions, exponents and overflow fall back (Foundation
    /// accepts some of them, e.g. `1.0`, through Double or Decimal).
    func integer<T: FixedWidthInteger>(_: T.Type, at token: Int) throws -> T {
        let value = tokens[token]
        guard value.kind == .number, value.flags & FastJSONToken.integer != 0 else { throw fallback() }
        if value.flags & FastJSONToken.negative == 0 {
            guard let result = T(exactly: value.magnitude) else { throw fallback() }
            return result
        }
        guard value.magnitude != 0, value.magnitude <= UInt64(Int64.max) + 1 else { throw fallback() }
        let negative = value.magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(value.magnitude)
        guard let result = T(exactly: negative) else { throw fallback() }
        return result
    }

    /// Exact when the decimal's significand fits the type's and the power of ten is exact, so that
    /// one correctly rounded operation gives what strtod gives (Clinger's fast path); else falls back.
    func double(at token: Int) throws -> Double {
        guard let (negative, significand, exponent) = decimal(at: token, maxSignificand: 1 << 53),
            exponent >= -22, exponent <= 22
        else { throw fallback() }
        if significand == 0 {
            // -0 would need the sign kept exactly as strtod does; leave it to Foundation.
            guard !negative else { throw fallback() }
            return 0
        }
        var result = Double(significand)
        if exponent > 0 {
            result *= Self.doublePowersOf10[exponent]
        } else if exponent < 0 {
            result /= Self.doublePowersOf10[-exponent]
        }
        return negative ? -result : result
    }

    /// As ``double(at:)``, for Float (Foundation parses Float with strtof, not through Double).
    func float(at token: Int) throws -> Float {
        guard let (negative, significand, exponent) = decimal(at: token, maxSignificand: 1 << 24),
            exponent >= -10, exponent <= 10
        else { throw fallback() }
        if significand == 0 {
            guard !negative else { throw fallback() }
            return 0
        }
        var result = Float(significand)
        if exponent > 0 {
            result *= Self.floatPowersOf10[exponent]
        } else if exponent < 0 {
            result /= Self.floatPowersOf10[-exponent]
        }
        return negative ? -result : result
    }

    private static let doublePowersOf10: [Double] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
        1e20, 1e21, 1e22,
    ]
    private static let floatPowersOf10: [Float] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10]

    /// A number token as sign, significand and power of ten; `nil` past `maxSignificand` or a
    /// four-digit exponent.
    private func decimal(at token: Int, maxSignificand: UInt64) -> (Bool, UInt64, Int)? {
        let value = tokens[token]
        guard value.kind == .number else { return nil }
        let negative = value.flags & FastJSONToken.negative != 0
        if value.flags & FastJSONToken.integer != 0 {
            return value.magnitude <= maxSignificand ? (negative, value.magnitude, 0) : nil
        }
        return bytes.withUnsafeBufferPointer { buffer -> (Bool, UInt64, Int)? in
            var index = Int(value.start) + (negative ? 1 : 0)
            let end = Int(value.end)
            var significand: UInt64 = 0
            var exponent = 0
            var inFraction = false
            while index < end {
                let byte = buffer[index]
                if byte == UInt8(ascii: ".") {
                    inFraction = true
                } else if byte &- UInt8(ascii: "0") < 10 {
                    significand = significand * 10 + UInt64(byte &- UInt8(ascii: "0"))
                    guard significand <= maxSignificand else { return nil }
                    if inFraction { exponent -= 1 }
                } else {
                    break
                }
                index += 1
            }
            if index < end {
                // An exponent: [eE][+-]?digits, already validated by the parser.
                index += 1
                var exponentNegative = false
                if buffer[index] == UInt8(ascii: "-") || buffer[index] == UInt8(ascii: "+") {
                    exponentNegative = buffer[index] == UInt8(ascii: "-")
                    index += 1
                }
                var written = 0
                while index < end {
                    written = written * 10 + Int(buffer[index] &- UInt8(ascii: "0"))
                    guard written < 10_000 else { return nil }
                    index += 1
                }
                exponent += exponentNegative ? -written : written
            }
            return (negative, significand, exponent)
        }
    }

    // MARK: SingleValueDecodingContainer

    func decodeNil() -> Bool { isNull(current) }
    func decode(_: Bool.Type) throws -> Bool { try bool(at: current) }
    func decode(_: String.Type) throws -> String { try string(at: current) }
    func decode(_: Double.Type) throws -> Double { try double(at: current) }
    func decode(_: Float.Type) throws -> Float { try float(at: current) }
    func decode(_: Int.Type) throws -> Int { try integer(Int.self, at: current) }
    func decode(_: Int8.Type) throws -> Int8 { try integer(Int8.self, at: current) }
    func decode(_: Int16.Type) throws -> Int16 { try integer(Int16.self, at: current) }
    func decode(_: Int32.Type) throws -> Int32 { try integer(Int32.self, at: current) }
    func decode(_: Int64.Type) throws -> Int64 { try integer(Int64.self, at: current) }
    func decode(_: Int128.Type) throws -> Int128 { throw fallback() }
    func decode(_: UInt.Type) throws -> UInt { try integer(UInt.self, at: current) }
    func decode(_: UInt8.Type) throws -> UInt8 { try integer(UInt8.self, at: current) }
    func decode(_: UInt16.Type) throws -> UInt16 { try integer(UInt16.self, at: current) }
    func decode(_: UInt32.Type) throws -> UInt32 { try integer(UInt32.self, at: current) }
    func decode(_: UInt64.Type) throws -> UInt64 { try integer(UInt64.self, at: current) }
    func decode(_: UInt128.Type) throws -> UInt128 { throw fallback() }
    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try decodeValue(type, at: current, path: path)
    }

    // MARK: Objects

    /// The value token of `name` in `object`, or `nil`. A non-ASCII name marks the decode as fallen
    /// back: `String` equality is canonical equivalence, so it could equal an ASCII key (U+212A
    /// KELVIN SIGN equals "K").
    func member(_ name: String, in object: Int) -> Int? {
        var name = name
        return name.withUTF8 { name -> Int? in
            if name.contains(where: { $0 >= 0x80 }) {
                fellBack = true
                return nil
            }
            return bytes.withUnsafeBufferPointer { buffer -> Int? in
                var key = object + 1
                for _ in 0..<tokens[object].count {
                    let token = tokens[key]
                    let length = Int(token.end - token.start)
                    if length == name.count
                        && (length == 0
                            || memcmp(buffer.baseAddress! + Int(token.start), name.baseAddress!, length) == 0)
                    {
                        return key + 1
                    }
                    key = Int(tokens[key + 1].next)
                }
                return nil
            }
        }
    }

    /// The keys of `object`, in document order (Foundation's order is its dictionary's: none).
    func keys(of object: Int) -> [String] {
        var result: [String] = []
        var key = object + 1
        bytes.withUnsafeBufferPointer { buffer in
            for _ in 0..<tokens[object].count {
                let token = tokens[key]
                result.append(
                    String(
                        decoding: UnsafeBufferPointer(rebasing: buffer[Int(token.start)..<Int(token.end)]),
                        as: UTF8.self))
                key = Int(tokens[key + 1].next)
            }
        }
        return result
    }
}

/// An index in a coding path, as Foundation writes it.
struct FastJSONIndexKey: CodingKey {
    let intValue: Int?
    var stringValue: String { "Index \(intValue ?? 0)" }

    init(index: Int) { intValue = index }
    init?(intValue: Int) { self.intValue = intValue }
    init?(stringValue: String) { nil }
}

struct FastJSONKeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let decoder: FastJSONDecoderImpl
    let object: Int
    let path: FastJSONPath?

    var codingPath: [any CodingKey] { FastJSONPath.keys(path) }

    var allKeys: [Key] { decoder.keys(of: object).compactMap { Key(stringValue: $0) } }

    func contains(_ key: Key) -> Bool {
        decoder.member(key.stringValue, in: object) != nil
    }

    /// Foundation's keyNotFound message is Foundation's to write: a missing key falls back.
    private func value(_ key: Key) throws -> Int {
        guard let token = decoder.member(key.stringValue, in: object) else { throw decoder.fallback() }
        return token
    }

    /// `nil` for a missing key or null, as Foundation's decodeIfPresent.
    private func valueIfPresent(_ key: Key) -> Int? {
        guard let token = decoder.member(key.stringValue, in: object), !decoder.isNull(token) else { return nil }
        return token
    }

    func decodeNil(forKey key: Key) throws -> Bool { decoder.isNull(try value(key)) }

    func decode(_: Bool.Type, forKey key: Key) throws -> Bool { try decoder.bool(at: value(key)) }
    func decode(_: String.Type, forKey key: Key) throws -> String { try decoder.string(at: value(key)) }
    func decode(_: Double.Type, forKey key: Key) throws -> Double { try decoder.double(at: value(key)) }
    func decode(_: Float.Type, forKey key: Key) throws -> Float { try decoder.float(at: value(key)) }
    func decode(_: Int.Type, forKey key: Key) throws -> Int { try decoder.integer(Int.self, at: value(key)) }
    func decode(_: Int8.Type, forKey key: Key) throws -> Int8 { try decoder.integer(Int8.self, at: value(key)) }
    func decode(_: Int16.Type, forKey key: Key) throws -> Int16 { try decoder.integer(Int16.self, at: value(key)) }
    func decode(_: Int32.Type, forKey key: Key) throws -> Int32 { try decoder.integer(Int32.self, at: value(key)) }
    func decode(_: Int64.Type, forKey key: Key) throws -> Int64 { try decoder.integer(Int64.self, at: value(key)) }
    func decode(_: Int128.Type, forKey key: Key) throws -> Int128 { throw decoder.fallback() }
    func decode(_: UInt.Type, forKey key: Key) throws -> UInt { try decoder.integer(UInt.self, at: value(key)) }
    func decode(_: UInt8.Type, forKey key: Key) throws -> UInt8 { try decoder.integer(UInt8.self, at: value(key)) }
    func decode(_: UInt16.Type, forKey key: Key) throws -> UInt16 { try decoder.integer(UInt16.self, at: value(key)) }
    func decode(_: UInt32.Type, forKey key: Key) throws -> UInt32 { try decoder.integer(UInt32.self, at: value(key)) }
    func decode(_: UInt64.Type, forKey key: Key) throws -> UInt64 { try decoder.integer(UInt64.self, at: value(key)) }
    func decode(_: UInt128.Type, forKey key: Key) throws -> UInt128 { throw decoder.fallback() }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try decoder.decodeValue(type, at: value(key), path: FastJSONPath(path, key))
    }

    func decodeIfPresent(_: Bool.Type, forKey key: Key) throws -> Bool? {
        try valueIfPresent(key).map { try decoder.bool(at: $0) }
    }
    func decodeIfPresent(_: String.Type, forKey key: Key) throws -> String? {
        try valueIfPresent(key).map { try decoder.string(at: $0) }
    }
    func decodeIfPresent(_: Double.Type, forKey key: Key) throws -> Double? {
        try valueIfPresent(key).map { try decoder.double(at: $0) }
    }
    func decodeIfPresent(_: Float.Type, forKey key: Key) throws -> Float? {
        try valueIfPresent(key).map { try decoder.float(at: $0) }
    }
    func decodeIfPresent(_: Int.Type, forKey key: Key) throws -> Int? { try integerIfPresent(key) }
    func decodeIfPresent(_: Int8.Type, forKey key: Key) throws -> Int8? { try integerIfPresent(key) }
    func decodeIfPresent(_: Int16.Type, forKey key: Key) throws -> Int16? { try integerIfPresent(key) }
    func decodeIfPresent(_: Int32.Type, forKey key: Key) throws -> Int32? { try integerIfPresent(key) }
    func decodeIfPresent(_: Int64.Type, forKey key: Key) throws -> Int64? { try integerIfPresent(key) }
    func decodeIfPresent(_: Int128.Type, forKey key: Key) throws -> Int128? { throw decoder.fallback() }
    func decodeIfPresent(_: UInt.Type, forKey key: Key) throws -> UInt? { try integerIfPresent(key) }
    func decodeIfPresent(_: UInt8.Type, forKey key: Key) throws -> UInt8? { try integerIfPresent(key) }
    func decodeIfPresent(_: UInt16.Type, forKey key: Key) throws -> UInt16? { try integerIfPresent(key) }
    func decodeIfPresent(_: UInt32.Type, forKey key: Key) throws -> UInt32? { try integerIfPresent(key) }
    func decodeIfPresent(_: UInt64.Type, forKey key: Key) throws -> UInt64? { try integerIfPresent(key) }
    func decodeIfPresent(_: UInt128.Type, forKey key: Key) throws -> UInt128? { throw decoder.fallback() }
    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        try valueIfPresent(key).map { try decoder.decodeValue(type, at: $0, path: FastJSONPath(path, key)) }
    }

    private func integerIfPresent<T: FixedWidthInteger>(_ key: Key) throws -> T? {
        try valueIfPresent(key).map { try decoder.integer(T.self, at: $0) }
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws
        -> KeyedDecodingContainer<NestedKey>
    {
        try decoder.keyedContainer(type, at: value(key), path: FastJSONPath(path, key))
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try decoder.unkeyedContainer(at: value(key), path: FastJSONPath(path, key))
    }

    func superDecoder() throws -> any Decoder { throw decoder.fallback() }
    func superDecoder(forKey key: Key) throws -> any Decoder { throw decoder.fallback() }
}

struct FastJSONUnkeyedContainer: UnkeyedDecodingContainer {
    let decoder: FastJSONDecoderImpl
    let path: FastJSONPath?
    let count: Int?
    private(set) var currentIndex = 0
    /// The token of the element at `currentIndex`.
    private var token: Int

    init(decoder: FastJSONDecoderImpl, array: Int, path: FastJSONPath?) {
        self.decoder = decoder
        self.path = path
        self.count = Int(decoder.tokens[array].count)
        self.token = array + 1
    }

    var codingPath: [any CodingKey] { FastJSONPath.keys(path) }

    var isAtEnd: Bool { currentIndex >= count! }

    /// Reading past the end is Foundation's error to write (and its decodeIfPresent there differs
    /// from the protocol's default): it falls back.
    private func next() throws -> Int {
        guard !isAtEnd else { throw decoder.fallback() }
        return token
    }

    private mutating func advance() {
        token = Int(decoder.tokens[token].next)
        currentIndex += 1
    }

    /// `body(decoder, token)` for the element at `currentIndex`, then the next element.
    private mutating func take<T>(_ body: (FastJSONDecoderImpl, Int) throws -> T) throws -> T {
        let value = try body(decoder, next())
        advance()
        return value
    }

    /// As ``take(_:)``, but `nil` (and on to the next element) for null.
    private mutating func takeIfPresent<T>(_ body: (FastJSONDecoderImpl, Int) throws -> T) throws -> T? {
        let element = try next()
        if decoder.isNull(element) {
            advance()
            return nil
        }
        let value = try body(decoder, element)
        advance()
        return value
    }

    /// The path of the element at `currentIndex`.
    private var elementPath: FastJSONPath { FastJSONPath(path, FastJSONIndexKey(index: currentIndex)) }

    mutating func decodeNil() throws -> Bool {
        guard decoder.isNull(try next()) else { return false }
        advance()
        return true
    }

    mutating func decode(_: Bool.Type) throws -> Bool { try take { try $0.bool(at: $1) } }
    mutating func decode(_: String.Type) throws -> String { try take { try $0.string(at: $1) } }
    mutating func decode(_: Double.Type) throws -> Double { try take { try $0.double(at: $1) } }
    mutating func decode(_: Float.Type) throws -> Float { try take { try $0.float(at: $1) } }
    mutating func decode(_: Int.Type) throws -> Int { try take { try $0.integer(Int.self, at: $1) } }
    mutating func decode(_: Int8.Type) throws -> Int8 { try take { try $0.integer(Int8.self, at: $1) } }
    mutating func decode(_: Int16.Type) throws -> Int16 { try take { try $0.integer(Int16.self, at: $1) } }
    mutating func decode(_: Int32.Type) throws -> Int32 { try take { try $0.integer(Int32.self, at: $1) } }
    mutating func decode(_: Int64.Type) throws -> Int64 { try take { try $0.integer(Int64.self, at: $1) } }
    mutating func decode(_: Int128.Type) throws -> Int128 { throw decoder.fallback() }
    mutating func decode(_: UInt.Type) throws -> UInt { try take { try $0.integer(UInt.self, at: $1) } }
    mutating func decode(_: UInt8.Type) throws -> UInt8 { try take { try $0.integer(UInt8.self, at: $1) } }
    mutating func decode(_: UInt16.Type) throws -> UInt16 { try take { try $0.integer(UInt16.self, at: $1) } }
    mutating func decode(_: UInt32.Type) throws -> UInt32 { try take { try $0.integer(UInt32.self, at: $1) } }
    mutating func decode(_: UInt64.Type) throws -> UInt64 { try take { try $0.integer(UInt64.self, at: $1) } }
    mutating func decode(_: UInt128.Type) throws -> UInt128 { throw decoder.fallback() }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let path = elementPath
        return try take { try $0.decodeValue(type, at: $1, path: path) }
    }

    mutating func decodeIfPresent(_: Bool.Type) throws -> Bool? { try takeIfPresent { try $0.bool(at: $1) } }
    mutating func decodeIfPresent(_: String.Type) throws -> String? { try takeIfPresent { try $0.string(at: $1) } }
    mutating func decodeIfPresent(_: Double.Type) throws -> Double? { try takeIfPresent { try $0.double(at: $1) } }
    mutating func decodeIfPresent(_: Float.Type) throws -> Float? { try takeIfPresent { try $0.float(at: $1) } }
    mutating func decodeIfPresent(_: Int.Type) throws -> Int? { try integerIfPresent() }
    mutating func decodeIfPresent(_: Int8.Type) throws -> Int8? { try integerIfPresent() }
    mutating func decodeIfPresent(_: Int16.Type) throws -> Int16? { try integerIfPresent() }
    mutating func decodeIfPresent(_: Int32.Type) throws -> Int32? { try integerIfPresent() }
    mutating func decodeIfPresent(_: Int64.Type) throws -> Int64? { try integerIfPresent() }
    mutating func decodeIfPresent(_: Int128.Type) throws -> Int128? { throw decoder.fallback() }
    mutating func decodeIfPresent(_: UInt.Type) throws -> UInt? { try integerIfPresent() }
    mutating func decodeIfPresent(_: UInt8.Type) throws -> UInt8? { try integerIfPresent() }
    mutating func decodeIfPresent(_: UInt16.Type) throws -> UInt16? { try integerIfPresent() }
    mutating func decodeIfPresent(_: UInt32.Type) throws -> UInt32? { try integerIfPresent() }
    mutating func decodeIfPresent(_: UInt64.Type) throws -> UInt64? { try integerIfPresent() }
    mutating func decodeIfPresent(_: UInt128.Type) throws -> UInt128? { throw decoder.fallback() }
    mutating func decodeIfPresent<T: Decodable>(_ type: T.Type) throws -> T? {
        let path = elementPath
        return try takeIfPresent { try $0.decodeValue(type, at: $1, path: path) }
    }

    private mutating func integerIfPresent<T: FixedWidthInteger>() throws -> T? {
        try takeIfPresent { try $0.integer(T.self, at: $1) }
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws
        -> KeyedDecodingContainer<NestedKey>
    {
        let path = elementPath
        return try take { try $0.keyedContainer(type, at: $1, path: path) }
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let path = elementPath
        return try take { try $0.unkeyedContainer(at: $1, path: path) }
    }

    mutating func superDecoder() throws -> any Decoder { throw decoder.fallback() }
}
