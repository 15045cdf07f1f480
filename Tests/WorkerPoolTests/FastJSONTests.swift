import Foundation
import Logging
import Testing

@testable import WorkerPool

/// The fast JSON paths must be invisible: every value and every failure equal to Foundation's.
@Suite("Fast JSON")
struct FastJSONTests {
    // MARK: Target types

    struct Pair: Codable, Equatable {
        var a: Int
        var b: Int
    }

    struct Mixed: Codable, Equatable {
        var i: Int
        var d: Double
        var s: String
        var b: Bool
        var o: Int?
        var f: Float?
    }

    struct Small: Codable, Equatable {
        var x: Int8
        var y: UInt8
        var z: Int16?
        var w: UInt32?
    }

    struct Wide: Codable, Equatable {
        var a: Int64
        var b: UInt64?
    }

    struct Inner: Codable, Equatable {
        var x: Int
        var s: String?
    }

    struct Outer: Codable, Equatable {
        var inner: Inner
        var list: [Int]
        var tags: [String]?
        var more: [Inner]?
    }

    struct Loose: Codable, Equatable {
        var a: Int?
        var s: String?
        var b: Bool?
        var d: Double?
        var list: [Int?]?
    }

    struct Dated: Codable, Equatable {
        var a: Int
        var when: Date?
    }

    enum Color: String, Codable, Equatable {
        case red, green
    }

    struct Painted: Codable, Equatable {
        var color: Color
        var a: Int?
    }

    /// Catches a failed decode and carries on, as some hand-written types do: a fallback must not
    /// leave it with a different value than Foundation's.
    struct Lenient: Decodable, Equatable {
        var a: Int

        enum CodingKeys: String, CodingKey { case a }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            a = (try? container.decode(Int.self, forKey: .a)) ?? -1
        }
    }

    /// Reads its keys through allKeys and contains, decodes nils and nested containers by hand.
    struct Manual: Decodable, Equatable {
        var keys: [String]
        var hasA: Bool
        var aIsNil: Bool?
        var first: Int?
        var nested: [String]

        enum Keys: String, CodingKey { case a, b, list, obj }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: Keys.self)
            keys = container.allKeys.map(\.stringValue).sorted()
            hasA = container.contains(.a)
            aIsNil = hasA ? try container.decodeNil(forKey: .a) : nil
            if container.contains(.list) {
                var list = try container.nestedUnkeyedContainer(forKey: .list)
                if !list.isAtEnd, try !list.decodeNil() {
                    first = try list.decode(Int.self)
                }
            }
            nested = []
            if container.contains(.obj) {
                let obj = try container.nestedContainer(keyedBy: Keys.self, forKey: .obj)
                nested = obj.allKeys.map(\.stringValue).sorted()
            }
        }
    }

    // MARK: Differential decoding

    /// Foundation's answer and the registry's (fast path, else Foundation) for one input: equal
    /// values (compared by `==` and by description, which tells -0.0 from 0.0), or equal errors.
    /// Returns whether the fast path alone answered.
    ///
    /// A dictionary is `unordered`: its description follows its hash order, and Foundation itself
    /// names whichever bad member its own dictionary lists first, which varies from one decode to
    /// the next; only values (by `==`) and success or failure are compared.
    @discardableResult
    static func compare<T: Decodable & Equatable>(
        _ type: T.Type, _ json: String, unordered: Bool = false, sourceLocation: SourceLocation = #_sourceLocation
    ) -> Bool {
        let bytes = Array(json.utf8)
        let foundation = Result { try JSONDecoder().decode(T.self, from: Data(bytes)) }
        let registry = Result { try FastJSON.decode(T.self, from: bytes, fallback: JSONDecoder()) }
        switch (foundation, registry) {
        case (.success(let expected), .success(let actual)):
            #expect(
                expected == actual && (unordered || "\(expected)" == "\(actual)"),
                "\(T.self) from \(json): \(actual), Foundation \(expected)", sourceLocation: sourceLocation)
        case (.failure(let expected), .failure(let actual)):
            #expect(
                unordered || "\(expected)" == "\(actual)", "\(T.self) from \(json): errors differ",
                sourceLocation: sourceLocation)
        case (.success(let expected), .failure(let actual)):
            Issue.record("\(T.self) from \(json): failed with \(actual), Foundation gave \(expected)")
        case (.failure(let expected), .success(let actual)):
            Issue.record("\(T.self) from \(json): gave \(actual), Foundation failed with \(expected)")
        }
        let fast = try? FastJSONDecoder.decode(T.self, from: bytes)
        if let fast, case .success(let expected) = foundation {
            #expect(fast == expected, "\(T.self) from \(json): fast path disagrees", sourceLocation: sourceLocation)
        }
        return fast != nil
    }

    @Test("long strings read eight bytes at a time agree with Foundation, whatever byte stops the scan")
    func longStrings() {
        var answered = 0
        for special in ["\\\"", "\\\\", "\\n", "é", "\u{01}", "\"", "x"] {
            for length in 0..<41 {
                let positions = [0, 1, 7, 8, 9, 15, 16, 17, 31, 32, length / 2, max(length - 1, 0)]
                for position in positions where position <= length {
                    let plain = String(repeating: "a", count: length)
                    let index = plain.index(plain.startIndex, offsetBy: position)
                    let text = plain[..<index] + special + plain[index...]
                    if Self.compare(String.self, "\"\(text)\"") { answered += 1 }
                    Self.compare([String].self, "[\"\(text)\", \"\(plain)\"]")
                }
            }
        }
        #expect(answered > 500, "the fast path reads most of them itself")
    }

    /// Every input against every target type; returns how many the fast path answered alone.
    @discardableResult
    static func compareAll(_ json: String) -> Int {
        var fast = 0
        func count(_ taken: Bool) { fast += taken ? 1 : 0 }
        count(compare(Pair.self, json))
        count(compare(Mixed.self, json))
        count(compare(Small.self, json))
        count(compare(Wide.self, json))
        count(compare(Outer.self, json))
        count(compare(Loose.self, json))
        count(compare(Dated.self, json))
        count(compare(Painted.self, json))
        count(compare(Lenient.self, json))
        count(compare(Manual.self, json))
        count(compare(String.self, json))
        count(compare([Int].self, json))
        count(compare([Int8].self, json))
        count(compare([Double].self, json))
        count(compare([Float].self, json))
        count(compare([String: Int].self, json, unordered: true))
        count(compare([String: Inner].self, json, unordered: true))
        count(compare([[Int]].self, json))
        count(compare([Int?].self, json))
        count(compare(Int.self, json))
        count(compare(UInt64.self, json))
        count(compare(Double.self, json))
        count(compare(Float.self, json))
        count(compare(Bool.self, json))
        count(compare(Int?.self, json))
        count(compare(Decimal.self, json))
        return fast
    }

    static let handWritten: [String] = [
        // The null task and its neighbours.
        #"{"a": 3, "b": 4}"#, #"{"a":3,"b":4}"#, " \t\r\n{ \"a\" :\n3 ,\t\"b\": 4 } \n", #"{"b": 4, "a": 3}"#,
        #"{"a": -3, "b": 0}"#, #"{"a": 3, "b": 4, "extra": [1, {"x": null}]}"#,
        // Missing keys, wrong types, null, duplicates.
        #"{"a": 3}"#, #"{}"#, #"{"a": "3", "b": 4}"#, #"{"a": 3, "b": null}"#, #"{"a": true, "b": 4}"#,
        #"{"a": 3, "b": 4, "a": 5}"#, #"{"a": 3, "a": 3, "b": 4}"#, #"{"b": 1, "a": 2, "b": 3}"#,
        // Numbers: plain, negative zero, fractions, exponents, limits, overflow.
        #"{"a": 3.0, "b": 4}"#, #"{"a": 3.5, "b": 4}"#, #"{"a": 3e0, "b": 4}"#, #"{"a": 1E2, "b": -0}"#,
        #"{"a": -0, "b": 0}"#, #"{"a": 9223372036854775807, "b": -9223372036854775808}"#,
        #"{"a": 9223372036854775808, "b": 1}"#, #"{"a": -9223372036854775809, "b": 1}"#,
        #"{"a": 18446744073709551615, "b": 18446744073709551615}"#, #"{"a": 18446744073709551616, "b": 1}"#,
        #"{"a": 123456789012345678901234567890, "b": 1}"#, #"{"a": 01, "b": 1}"#, #"{"a": 1., "b": 1}"#,
        #"{"a": .5, "b": 1}"#, #"{"a": +1, "b": 1}"#, #"{"a": 1e, "b": 1}"#, #"{"a": -, "b": 1}"#,
        #"{"x": 127, "y": 255}"#, #"{"x": 128, "y": 255}"#, #"{"x": -128, "y": 256}"#, #"{"x": -129, "y": 0}"#,
        #"{"x": 1, "y": -1}"#, #"{"x": 1, "y": 2, "z": 32767, "w": 4294967295}"#,
        #"{"x": 1, "y": 2, "z": 32768, "w": 4294967296}"#, #"{"x": 1.0, "y": 2}"#,
        #"{"a": -9223372036854775808, "b": 18446744073709551615}"#, #"{"a": 0, "b": -1}"#,
        #"{"i": 1, "d": 0.1, "s": "x", "b": true}"#, #"{"i": 1, "d": 1e22, "s": "x", "b": false}"#,
        #"{"i": 1, "d": 1e23, "s": "x", "b": false}"#, #"{"i": 1, "d": -0.0, "s": "x", "b": false}"#,
        #"{"i": 1, "d": 0e10, "s": "x", "b": false}"#, #"{"i": 1, "d": 1e400, "s": "x", "b": false}"#,
        #"{"i": 1, "d": 1e-400, "s": "x", "b": false}"#, #"{"i": 1, "d": 9007199254740993, "s": "", "b": true}"#,
        #"{"i": 1, "d": 9007199254740992, "s": "", "b": true}"#,
        #"{"i": 1, "d": 3.141592653589793, "s": "", "b": true}"#,
        #"{"i": 1, "d": 2.5e-3, "s": "", "b": true, "f": 0.1}"#,
        #"{"i": 1, "d": 2, "s": "", "b": true, "f": 16777217}"#,
        #"{"i": 1, "d": 2, "s": "", "b": true, "f": 3.4e38}"#, #"{"i": 1, "d": 2, "s": "", "b": true, "f": 3.5e38}"#,
        #"{"i": 1, "d": 2, "s": "", "b": true, "f": 1.17549435e-38}"#, #"{"i": 1, "d": 2E+2, "s": "", "b": true}"#,
        #"{"i": 1, "d": 0.30000000000000004, "s": "", "b": true, "o": null}"#,
        #"{"i": 1, "d": 1.7976931348623157e308, "s": "", "b": true, "o": 7}"#,
        // Strings: escapes, unicode, control characters, invalid UTF-8 is in the random set.
        #"{"i": 1, "d": 1, "s": "a\"b", "b": true}"#, #"{"i": 1, "d": 1, "s": "a\\b", "b": true}"#,
        #"{"i": 1, "d": 1, "s": "\u00e9", "b": true}"#, #"{"i": 1, "d": 1, "s": "é", "b": true}"#,
        #"{"i": 1, "d": 1, "s": "\ud83d\ude00", "b": true}"#, #"{"i": 1, "d": 1, "s": "😀 e\u0301", "b": true}"#,
        #"{"i": 1, "d": 1, "s": "\ud800", "b": true}"#, #"{"i": 1, "d": 1, "s": "a/b\/c", "b": true}"#,
        "{\"i\": 1, \"d\": 1, \"s\": \"tab\there\", \"b\": true}",
        "{\"i\": 1, \"d\": 1, \"s\": \"\u{7F}\", \"b\": true}",
        #"{"\u0061": 3, "b": 4}"#, #"{"a": 3, "b": 4, "\u0061": 5}"#, #"{"é": 1, "a": 3, "b": 4}"#,
        #"{"K": 1}"#, #"{"a": 3, "b": 4, "K": 1, "\u212a": 2}"#,
        // Nesting.
        #"{"inner": {"x": 1}, "list": [1, 2, 3]}"#, #"{"inner": {"x": 1, "s": "t"}, "list": [], "tags": ["a", "b"]}"#,
        #"{"inner": {"x": 1}, "list": [1, null]}"#, #"{"inner": {"x": 1}, "list": [1, 2.5]}"#,
        #"{"inner": {"x": 1}, "list": [], "more": [{"x": 2}, {"x": 3, "s": null}]}"#,
        #"{"inner": {"x": 1}, "list": [], "more": [{"x": 2}, {"s": "no x"}]}"#,
        #"{"inner": null, "list": []}"#, #"{"inner": [], "list": {}}"#, #"{"inner": {"x": 1}, "list": [[1]]}"#,
        #"{"a": null, "s": null, "b": null, "d": null, "list": null}"#, #"{"list": [null, 1, null]}"#,
        #"{"a": 1, "list": [1], "obj": {"a": 1, "b": 2, "zz": 3}}"#, #"{"b": 1, "list": [null]}"#,
        #"{"a": null, "list": []}"#, #"{"obj": {"a": 1, "a": 2}}"#, #"{"a": 2, "when": 1000}"#,
        #"{"a": 2, "when": null}"#, #"{"color": "red"}"#, #"{"color": "blue"}"#, #"{"color": "red", "a": 1.5}"#,
        String(repeating: "[", count: 63) + String(repeating: "]", count: 63),
        String(repeating: "[", count: 65) + String(repeating: "]", count: 65),
        "{\"inner\": {\"x\": 1}, \"list\": " + String(repeating: "[", count: 70) + String(repeating: "]", count: 70)
            + "}",
        // Top-level non-objects.
        #""text""#, #" "padded" "#, #""""#, #""a\nb""#, "[1, 2, 3]", "[]", " [ 1 , -2 ] ", "[1, 2,]", "[1 2]",
        "[[1, 2], [], [3]]", "[[1], 2]", "[1, null, 3]", "[null]", "[1.5, 2e3, -0.25]", "[127, 128]", "[-128]",
        "42", "-42", "0", "-0", "4.0", "1e2", "18446744073709551615", "true", "false", "null", " null ", "nul",
        "truee", "tru", #"{"a": 1}"#, #"{"a": 1, "b": 2, "c": 3}"#, "3.4028235e38", "1e39", "0.1", "1.5",
        // Not JSON.
        "", " ", "{", "}", #"{"a": 3, "#, #"{"a" 3}"#, #"{"a": 3,}"#, #"{a: 3}"#, #"{'a': 3}"#, "[1] [2]",
        #"{"a": 3} x"#, "\u{FEFF}{\"a\": 3, \"b\": 4}", #"{"a": 3, "b": 4} // c"#, "/* c */ 1", "NaN", "Infinity",
        "-Infinity", "0x10", "1_000",
    ]

    @Test("hand-written edge cases decode exactly as Foundation decodes them")
    func handWrittenCases() {
        var fast = 0
        for json in Self.handWritten {
            fast += Self.compareAll(json)
        }
        #expect(fast > 50)
    }

    @Test("invalid UTF-8 and raw bytes decode (or fail) as Foundation")
    func rawBytes() {
        let inputs: [[UInt8]] = [
            Array(#"{"i": 1, "d": 1, "s": "x"#.utf8) + [0xFF] + Array(#"", "b": true}"#.utf8),
            Array(#"{"i": 1, "d": 1, "s": "x"#.utf8) + [0xC3] + Array(#"", "b": true}"#.utf8),
            Array(#"{"i": 1, "d": 1, "s": "x"#.utf8) + [0xED, 0xA0, 0x80] + Array(#"", "b": true}"#.utf8),
            Array(#"{"i": 1, "d": 1, "s": "x"#.utf8) + [0x00] + Array(#"", "b": true}"#.utf8),
            Array(#"{"a": 3, "b": 4, ""#.utf8) + [0xFF] + Array(#"": 1}"#.utf8),
            [0x22, 0xE2, 0x82, 0xAC, 0x22],
            [0x22, 0xF0, 0x9F, 0x98, 0x80, 0x22],
            [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22],
            [0xEF, 0xBB, 0xBF] + Array("[1]".utf8),
            [0x31, 0x00],
            [0x00, 0x31],
            Array("[1]".utf8) + [0x00],
        ]
        for bytes in inputs {
            let foundation = Result { try JSONDecoder().decode([String: String].self, from: Data(bytes)) }
            let registry = Result { try FastJSON.decode([String: String].self, from: bytes, fallback: JSONDecoder()) }
            #expect("\(foundation)" == "\(registry)", "\(bytes)")
            let string = Result { try JSONDecoder().decode(String.self, from: Data(bytes)) }
            let fastString = Result { try FastJSON.decode(String.self, from: bytes, fallback: JSONDecoder()) }
            #expect("\(string)" == "\(fastString)", "\(bytes)")
            let ints = Result { try JSONDecoder().decode([Int].self, from: Data(bytes)) }
            let fastInts = Result { try FastJSON.decode([Int].self, from: bytes, fallback: JSONDecoder()) }
            #expect("\(ints)" == "\(fastInts)", "\(bytes)")
            if let string = String(validating: bytes, as: UTF8.self) {
                Self.compareAll(string)
            }
        }
    }

    @Test("seeded random JSON decodes exactly as Foundation decodes it")
    func randomCases() {
        var generator = RandomJSON(seed: 0x5EED_F00D)
        var fast = 0
        for _ in 0..<400 {
            fast += Self.compareAll(generator.document())
        }
        // Plenty of the random documents must take the fast path, or this tests only the fallback.
        #expect(fast > 400)
    }

    @Test("numbers: random decimals into Double and Float are bit-identical to Foundation's")
    func randomNumbers() {
        var generator = RandomJSON(seed: 42)
        var fastDoubles = 0
        for _ in 0..<3000 {
            let number = generator.number()
            for json in [number, "[\(number)]"] {
                let bytes = Array(json.utf8)
                if let value = try? FastJSONDecoder.decode(Double.self, from: bytes) {
                    fastDoubles += 1
                    let expected = try? JSONDecoder().decode(Double.self, from: Data(bytes))
                    #expect(
                        expected?.bitPattern == value.bitPattern, "\(json): \(value) vs \(String(describing: expected))"
                    )
                }
                if let value = try? FastJSONDecoder.decode(Float.self, from: bytes) {
                    let expected = try? JSONDecoder().decode(Float.self, from: Data(bytes))
                    #expect(
                        expected?.bitPattern == value.bitPattern, "\(json): \(value) vs \(String(describing: expected))"
                    )
                }
                Self.compare([Double].self, json)
                Self.compare(Int.self, json)
                Self.compare(Int8.self, json)
                Self.compare(UInt.self, json)
            }
        }
        #expect(fastDoubles > 1500)
    }

    // MARK: The fast path is taken, and falls back where it must

    @Test("the null task's arguments take the fast path")
    func fastPathTaken() throws {
        let pair = try FastJSONDecoder.decode(Pair.self, from: Array(#"{"a": 3, "b": 4}"#.utf8))
        #expect(pair == Pair(a: 3, b: 4))
        let multiply = try FastJSONDecoder.decode(TaskRegistry.Multiply.self, from: Array(#"{"a": 3, "b": 4}"#.utf8))
        #expect(multiply.a == 3 && multiply.b == 4)
        #expect(try FastJSONDecoder.decode(String.self, from: Array(#""Dan""#.utf8)) == "Dan")
        #expect(try FastJSONDecoder.decode([Int].self, from: Array(" [1, -2, 3] ".utf8)) == [1, -2, 3])
        let outer = try FastJSONDecoder.decode(
            Outer.self, from: Array(#"{"inner": {"x": 1, "s": null}, "list": [2], "more": [{"x": 3}]}"#.utf8))
        #expect(outer == Outer(inner: Inner(x: 1), list: [2], tags: nil, more: [Inner(x: 3)]))
        #expect(
            try FastJSONDecoder.decode(Mixed.self, from: Array(#"{"i":1,"d":0.5,"s":"é","b":false,"f":2}"#.utf8))
                == Mixed(i: 1, d: 0.5, s: "é", b: false, o: nil, f: 2))
    }

    @Test(
        "the fast path falls back for what it cannot vouch for",
        arguments: [
            #"{"a": "x\ny", "b": 1}"#,  // an escape
            #"{"a": 3.0, "b": 4}"#,  // not a plain integer
            #"{"a": 1e2, "b": 4}"#,  // exponent for an integer
            #"{"a": 9223372036854775808, "b": 4}"#,  // overflow
            #"{"a": -0, "b": 4}"#,  // negative zero
            #"{"a": 3, "b": 4, "a": 5}"#,  // duplicate key
            #"{"a": 3}"#,  // key not found
            #"{"a": "3", "b": 4}"#,  // type mismatch
            #"{"a": null, "b": 4}"#,  // null
            #"{"a": 3, "b": 4"#,  // parse error
            #"{"a": 3, "b": 4,}"#,  // trailing comma
            #"[3, 4]"#,  // not an object
            #"{"\u0061": 3, "b": 4}"#,  // escaped key
            #"{"a": 3, "b": 4, "é": 0}"#,  // non-ASCII key
        ])
    func fallbackCases(json: String) {
        #expect(throws: FastJSON.Fallback.self) {
            try FastJSONDecoder.decode(Pair.self, from: Array(json.utf8))
        }
    }

    @Test("Data, Date, URL, Decimal, deep nesting, invalid UTF-8 and a swallowed failure fall back")
    func specialFallbacks() throws {
        #expect(throws: FastJSON.Fallback.self) { try FastJSONDecoder.decode(Date.self, from: Array("0".utf8)) }
        #expect(throws: FastJSON.Fallback.self) { try FastJSONDecoder.decode(Data.self, from: Array("[1]".utf8)) }
        #expect(throws: FastJSON.Fallback.self) {
            try FastJSONDecoder.decode(URL.self, from: Array(#""http://x""#.utf8))
        }
        #expect(throws: FastJSON.Fallback.self) { try FastJSONDecoder.decode(Decimal.self, from: Array("1".utf8)) }
        #expect(throws: FastJSON.Fallback.self) {
            try FastJSONDecoder.decode(Dated.self, from: Array(#"{"a": 1, "when": 0}"#.utf8))
        }
        let deep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        #expect(throws: FastJSON.Fallback.self) { try FastJSONDecoder.decode([[[Int]]].self, from: Array(deep.utf8)) }
        #expect(throws: FastJSON.Fallback.self) { try FastJSONDecoder.decode(String.self, from: [0x22, 0xFF, 0x22]) }
        // Lenient catches the failure to read 3.0 as an Int; Foundation would read 3.
        #expect(throws: FastJSON.Fallback.self) {
            try FastJSONDecoder.decode(Lenient.self, from: Array(#"{"a": 3.0}"#.utf8))
        }
        #expect(throws: Never.self) { try FastJSONDecoder.decode(Lenient.self, from: Array(#"{"a": 3}"#.utf8)) }
        // More values than the token limit: Foundation's, however large the payload.
        let many = "[" + Array(repeating: "1", count: FastJSONParser.maxTokens).joined(separator: ",") + "]"
        #expect(throws: FastJSON.Fallback.self) { try FastJSONDecoder.decode([Int].self, from: Array(many.utf8)) }
        let fewer = "[" + Array(repeating: "1", count: FastJSONParser.maxTokens - 1).joined(separator: ",") + "]"
        #expect(try FastJSONDecoder.decode([Int].self, from: Array(fewer.utf8)).count == FastJSONParser.maxTokens - 1)
        let blob = #"{"data": ""# + String(repeating: "x", count: 1 << 20) + #""}"#
        #expect(try FastJSONDecoder.decode([String: String].self, from: Array(blob.utf8))["data"]?.count == 1 << 20)
        Self.compare([Int].self, many)
    }

    /// Keeps its container past the decode, as Foundation allows.
    struct Keeper: Decodable {
        enum Keys: String, CodingKey { case a, b }
        let container: KeyedDecodingContainer<Keys>
        let decoder: any Decoder

        init(from decoder: any Decoder) throws {
            self.decoder = decoder
            container = try decoder.container(keyedBy: Keys.self)
        }
    }

    @Test("a type that keeps its decoder or container can still read through it after the decode")
    func escapingDecoder() throws {
        let keeper = try FastJSONDecoder.decode(Keeper.self, from: Array(#"{"a": 3, "b": [4, 5]}"#.utf8))
        // Other work on the stack where the tokens were.
        for json in Self.handWritten.prefix(20) { Self.compare(Outer.self, json) }
        #expect(try keeper.container.decode(Int.self, forKey: .a) == 3)
        #expect(try keeper.container.decode([Int].self, forKey: .b) == [4, 5])
        #expect(try keeper.decoder.container(keyedBy: Keeper.Keys.self).allKeys.count == 2)
    }

    // MARK: The registry

    @Test("the registry's outcomes (values and messages) are those of Foundation alone")
    func registryOutcomes() {
        let context = TaskContext(
            workerName: "Worker-1", host: "test", events: PoolEvents(forward: { _ in }), logger: Logger(label: "test"),
            attempt: 1, taskID: 1)
        var registry = TaskRegistry()
        registry.register("mixed") { (input: Mixed, _) in input }
        registry.register("outer") { (input: Outer, _) in input.list.reduce(input.inner.x, +) }
        registry.register("text") { (input: String, _) in input }
        // The registry before the fast path: Foundation both ways.
        let decoder = JSONDecoder()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        func expected<Input: Decodable, Output: Encodable>(
            _ name: String, _ json: String, _ body: (Input) -> Output
        ) -> (ResultStatus, [UInt8]) {
            do {
                let input = try decoder.decode(Input.self, from: Data(json.utf8))
                return (.ok, Array(try encoder.encode(body(input))))
            } catch {
                return (.badArguments, Array("bad arguments for '\(name)': \(TaskRegistry.explain(error))".utf8))
            }
        }
        var generator = RandomJSON(seed: 7)
        let inputs = Self.handWritten + (0..<200).map { _ in generator.document() }
        for json in inputs {
            for (name, want) in [
                ("mixed", expected("mixed", json) { (input: Mixed) in input }),
                ("outer", expected("outer", json) { (input: Outer) in input.list.reduce(input.inner.x, +) }),
                ("text", expected("text", json) { (input: String) in input }),
            ] {
                let outcome = registry.run(name: name, payload: Array(json.utf8), context: context)
                #expect(outcome.status == want.0, "\(name) \(json)")
                #expect(
                    outcome.payload == want.1,
                    "\(name) \(json): \(String(decoding: outcome.payload, as: UTF8.self)) vs \(String(decoding: want.1, as: UTF8.self))"
                )
            }
        }
    }

    // MARK: Encoding

    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    static func compareEncoding<T: Encodable>(
        _ value: T, fast expectFast: Bool? = nil, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let encoder = Self.encoder()
        let expected = try? Array(encoder.encode(value))
        let actual = try? FastJSON.encode(value, fallback: encoder)
        #expect(actual == expected, "\(T.self) \(value)", sourceLocation: sourceLocation)
        let fast = FastJSONEncoder.encode(value)
        if let fast {
            #expect(fast == expected, "\(T.self) \(value): fast path", sourceLocation: sourceLocation)
        }
        if let expectFast {
            #expect((fast != nil) == expectFast, "\(T.self) \(value): fast path taken?", sourceLocation: sourceLocation)
        }
    }

    @Test("integers, booleans and plain strings encode byte for byte as JSONEncoder")
    func encoding() {
        func limits<I: FixedWidthInteger & Encodable>(_: I.Type) {
            for value in [I.min, I.max, 0, 1, I.min / 2, I.max / 3, I.max - 1, I(truncatingIfNeeded: 10), 9, 99, 100] {
                Self.compareEncoding(value, fast: true)
            }
        }
        limits(Int.self)
        limits(Int8.self)
        limits(Int16.self)
        limits(Int32.self)
        limits(Int64.self)
        limits(UInt.self)
        limits(UInt8.self)
        limits(UInt16.self)
        limits(UInt32.self)
        limits(UInt64.self)
        Self.compareEncoding(true, fast: true)
        Self.compareEncoding(false, fast: true)
        for text in [
            "", "3 * 4 = 12", "a/b", " ~!@#$%^&*()_+`-={}|[]:;'<>?,./", "slept 5 ms",
            String(repeating: "x", count: 300),
        ] {
            Self.compareEncoding(text, fast: true)
        }
        for text in ["a\"b", "a\\b", "tab\t", "line\n", "\u{7F}", "é", "😀", "\u{0}", "\u{1F}", "\u{2028}"] {
            Self.compareEncoding(text, fast: false)
        }
        // Not the fast path's: still JSONEncoder's bytes.
        Self.compareEncoding(1.5, fast: false)
        Self.compareEncoding(Optional(3), fast: false)
        Self.compareEncoding([1, 2], fast: false)
        Self.compareEncoding(Pair(a: 1, b: 2), fast: false)
        Self.compareEncoding(TaskRegistry.PrimesOutput(n: 10, count: 4), fast: false)

        var generator = RandomJSON(seed: 99)
        for _ in 0..<500 {
            Self.compareEncoding(Int(bitPattern: UInt(generator.next())))
            Self.compareEncoding(Int32(truncatingIfNeeded: generator.next()))
            Self.compareEncoding(UInt64(generator.next() >> (generator.next() % 64)))
            Self.compareEncoding(generator.rawString())
        }
    }
}

/// Seeded JSON documents (SplitMix64), heavy on the shapes the target types have, with invalid
/// documents, duplicate keys, escapes, unicode and odd whitespace mixed in.
struct RandomJSON {
    private var random: SeededRandom

    init(seed: UInt64) { random = SeededRandom(seed: seed) }

    mutating func next() -> UInt64 { random.next() }

    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }

    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }

    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }

    mutating func space() -> String {
        chance(70) ? "" : pick([" ", "  ", "\n", "\t", "\r\n", " \n\t "])
    }

    mutating func number() -> String {
        switch below(12) {
        case 0: return String(below(10))
        case 1: return String(Int64(bitPattern: next()))
        case 2: return String(next())
        case 3:
            return pick([
                "9223372036854775807", "-9223372036854775808", "9223372036854775808", "18446744073709551615",
                "18446744073709551616", "-9223372036854775809", "99999999999999999999", "-0", "0", "127", "128", "-129",
                "255",
                "256", "9007199254740993", "9007199254740992", "16777217",
            ])
        case 4: return String(below(1000) - 500)
        case 5:
            // A decimal with a handful of digits either side.
            let int = String(below(100_000))
            let fraction = String(repeating: "0", count: below(3)) + String(below(1_000_000))
            return (chance(30) ? "-" : "") + int + "." + fraction
        case 6:
            let mantissa = chance(50) ? String(below(10_000_000)) : "\(below(10)).\(below(100_000))"
            let sign = pick(["", "+", "-"])
            return (chance(20) ? "-" : "") + mantissa + pick(["e", "E"]) + sign + String(below(30))
        case 7:
            return (chance(50) ? "-" : "") + "0." + String(repeating: "0", count: below(8))
                + String(below(1_000_000_000))
        case 8:
            // Long significands, past the exact range.
            return String(next()) + "." + String(next())
        case 9:
            return String(below(20_000_000)) + pick(["", ".0", ".5", ".25", "e1", "e-1", "e10", "e-10", "e11"])
        case 10:
            return pick([
                "1e22", "1e23", "1e-22", "1e-23", "1e308", "1e309", "1e-320", "2.2250738585072014e-308",
                "4.9e-324", "3.4028235e38", "3.4028236e38", "1.4e-45", "0.0", "-0.0", "0e0", "1.0e0", "100e-2",
            ])
        default: return String(Double(Int64(bitPattern: next())) / Double(next() | 1))
        }
    }

    /// Contents for a JSON string literal (escaped or not), without the quotes.
    mutating func stringLiteral() -> String {
        switch below(10) {
        case 0..<5:
            let letters = Array("abcdefghijklmnopqrstuvwxyz ABC0123_-/.:")
            return String((0..<below(12)).map { _ in pick(letters) })
        case 5: return pick(["red", "green", "blue", "a", "b", "x"])
        case 6: return pick(["é", "naïve", "日本", "😀", "e\u{301}", "\u{212A}", "\u{7F}"])
        case 7: return pick([#"\n"#, #"a\"b"#, #"\\"#, #"\/"#, #"\u00e9"#, #"\ud83d\ude00"#, #"\ud800"#, #"\t"#])
        case 8: return pick(["\u{1}", "a\tb", #"\x"#, #"\u12"#])
        default: return ""
        }
    }

    mutating func key() -> String {
        if chance(5) { return pick([#"\u0061"#, "é", "K", "\u{212A}", ""]) }
        return pick([
            "a", "b", "i", "d", "s", "o", "f", "x", "y", "z", "w", "list", "inner", "tags", "more", "obj",
            "color", "when", "extra",
        ])
    }

    mutating func value(depth: Int) -> String {
        switch below(depth > 3 ? 7 : 10) {
        case 0, 1, 2: return number()
        case 3: return "\"" + stringLiteral() + "\""
        case 4: return pick(["true", "false"])
        case 5: return "null"
        case 6: return pick(["[]", "{}", "\"\""])
        case 7, 8: return array(depth: depth + 1)
        default: return object(depth: depth + 1)
        }
    }

    mutating func array(depth: Int) -> String {
        let kind = below(3)
        let elements = (0..<below(5)).map { _ -> String in
            switch kind {
            case 0: return number()
            case 1: return chance(80) ? String(below(300) - 150) : "null"
            default: return value(depth: depth)
            }
        }
        return "[" + space() + elements.map { $0 + space() }.joined(separator: "," + space()) + "]"
    }

    mutating func object(depth: Int) -> String {
        var members: [String] = []
        var keys: [String] = []
        for _ in 0..<below(7) {
            let key = chance(4) && !keys.isEmpty ? pick(keys) : self.key()
            keys.append(key)
            members.append("\"" + key + "\"" + space() + ":" + space() + value(depth: depth) + space())
        }
        return "{" + space() + members.joined(separator: "," + space()) + "}"
    }

    /// Objects shaped like the test types most of the time, anything else some of the time, and
    /// broken now and then.
    mutating func document() -> String {
        var text: String
        switch below(10) {
        case 0..<4:
            // Pair, Mixed, or Small and Wide shaped.
            func integer(_ range: Int, _ offset: Int) -> String {
                chance(90) ? String(below(range) - offset) : number()
            }
            var fields: [String]
            switch below(3) {
            case 0:
                fields = ["\"a\": \(integer(2000, 1000))", "\"b\": \(integer(2000, 1000))"]
            case 1:
                fields = [
                    "\"i\": \(integer(100, 0))",
                    "\"d\": \(chance(50) ? "\(below(2000) - 1000).\(below(1000))" : number())",
                    "\"s\": \"\(chance(50) ? "plain text" : stringLiteral())\"",
                    "\"b\": \(chance(90) ? pick(["true", "false"]) : pick(["1", "null", "\"true\""]))",
                ]
                if chance(40) { fields.append("\"o\": \(pick(["null", "1", "-7", "2.0"]))") }
                if chance(40) { fields.append("\"f\": \(number())") }
            default:
                fields = ["\"x\": \(integer(300, 150))", "\"y\": \(integer(300, 20))"]
                if chance(50) { fields.append("\"z\": \(integer(70000, 35000))") }
                if chance(50) { fields.append("\"w\": \(number())") }
                if chance(50) { fields += ["\"a\": \(number())", "\"b\": \(number())"] }
            }
            var chosen: [String] = []
            for field in fields where chance(93) {
                chosen.append(field)
            }
            if chance(15) { chosen.append("\"\(key())\": \(value(depth: 1))") }
            if chance(5), let first = chosen.first { chosen.append(first) }
            if chance(50) { chosen.shuffle(using: &self) }
            text = "{" + space() + chosen.map { $0 + space() }.joined(separator: "," + space()) + "}"
        case 4, 5:
            // Outer / Loose shaped.
            let inner =
                "{\"x\": \(chance(90) ? String(below(50)) : number())"
                + (chance(50) ? ", \"s\": \"\(stringLiteral())\"" : "") + "}"
            var fields = ["\"inner\": \(chance(90) ? inner : value(depth: 1))", "\"list\": \(array(depth: 1))"]
            if chance(50) { fields.append("\"tags\": [\"\(stringLiteral())\", \"b\"]") }
            if chance(50) { fields.append("\"more\": [\(inner), \(inner)]") }
            if chance(50) { fields.append("\"a\": \(pick(["null", "3", "\"3\""]))") }
            fields.shuffle(using: &self)
            text = "{" + fields.joined(separator: "," + space()) + "}"
        case 6: text = object(depth: 0)
        case 7: text = array(depth: 0)
        default: text = value(depth: 0)
        }
        if chance(8) {
            // Break it: cut it short, or drop in a stray character.
            var bytes = Array(text.utf8)
            if chance(50), !bytes.isEmpty {
                bytes.removeLast(1 + below(min(bytes.count, 4)))
            } else {
                bytes.insert(pick(Array(",:{}[]\"x0 ".utf8)), at: below(bytes.count + 1))
            }
            text = String(decoding: bytes, as: UTF8.self)
        }
        return space() + text + space()
    }

    /// A string value (not JSON) for encoding: mostly printable ASCII, sometimes not.
    mutating func rawString() -> String {
        let printable = (0x20...0x7E).map { Character(Unicode.Scalar(UInt8($0))) }
        var result = String((0..<below(20)).map { _ in pick(printable) })
        if chance(20) { result += pick(["\n", "é", "\u{7F}", "\u{0}", "😀", "\"", "\\"]) }
        return result
    }
}

extension RandomJSON: RandomNumberGenerator {}
