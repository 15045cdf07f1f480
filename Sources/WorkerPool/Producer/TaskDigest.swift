import COpenSSL

/// The SHA-256 of one input item as the producer parsed it: what the journal records beside each
/// outcome, so a resumed run can tell whether its input is still the one the journal was
/// written for. Thirty-two bytes held inline (four words), so an entry carries it without a
/// heap allocation; written as 64 lowercase hex digits.
struct TaskDigest: Hashable, Sendable, CustomStringConvertible {
    private var w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64

    /// All zero bytes: the digest of no task (entries read without a journal carry it).
    static let zero = TaskDigest(w0: 0, w1: 0, w2: 0, w3: 0)

    private init(w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64) {
        (self.w0, self.w1, self.w2, self.w3) = (w0, w1, w2, w3)
    }

    /// The first 32 bytes of `bytes` (a SHA-256 digest); nil when there are fewer.
    init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= 32 else { return nil }
        self = .zero
        withUnsafeMutableBytes(of: &self) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0..<32])) }
    }

    /// The SHA-256 of `bytes`: one call into libcrypto, no allocation.
    init(sha256 bytes: UnsafeRawBufferPointer) {
        self = .zero
        withUnsafeMutableBytes(of: &self) { out in
            pool_sha256(bytes.baseAddress, bytes.count, out.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
    }

    /// The digest of `item`. A task hashes its name, its arguments without the whitespace JSON
    /// ignores (so re-indenting the input changes nothing) and its time limit; invalid input
    /// hashes its reason. A task's `retries` is not hashed: it changes how often a failure is
    /// tried again, not what the task is (a journal resumed with other retries still fits). Each field is length-prefixed, so no two items share their bytes.
    init(of item: borrowing SourceItem) {
        switch item {
        case .task(let name, let payload, let timeLimit, _):
            var name = name
            self = name.withUTF8 { name in
                Self.withCompacted(payload) { arguments in
                    if let timeLimit {
                        withUnsafeBytes(of: timeLimit.bitPattern.littleEndian) { limit in
                            Self.hash((1, UnsafeRawBufferPointer(name)), (2, arguments), (3, limit))
                        }
                    } else {
                        Self.hash((1, UnsafeRawBufferPointer(name)), (2, arguments))
                    }
                }
            }
        case .invalid(let reason):
            var reason = reason
            self = reason.withUTF8 { Self.hash((4, UnsafeRawBufferPointer($0))) }
        }
    }

    /// SHA-256 of each field as a tag byte, its length (8 bytes, little-endian) and its bytes,
    /// laid out in one buffer and hashed in one call: most tasks fit on the stack, and one call
    /// costs a fraction of one per field.
    private typealias Field = (tag: UInt8, bytes: UnsafeRawBufferPointer)

    private static func hash(_ first: Field, _ second: Field? = nil, _ third: Field? = nil) -> TaskDigest {
        let size =
            9 + first.bytes.count + (second.map { 9 + $0.bytes.count } ?? 0) + (third.map { 9 + $0.bytes.count } ?? 0)
        return withUnsafeTemporaryAllocation(byteCount: size, alignment: 8) { buffer in
            var offset = 0
            @inline(__always)
            func put(_ field: Field?) {
                guard let field else { return }
                buffer[offset] = field.tag
                buffer.storeBytes(of: UInt64(field.bytes.count).littleEndian, toByteOffset: offset + 1, as: UInt64.self)
                if let source = field.bytes.baseAddress, let target = buffer.baseAddress, field.bytes.count > 0 {
                    (target + offset + 9).copyMemory(from: source, byteCount: field.bytes.count)
                }
                offset += 9 + field.bytes.count
            }
            put(first)
            put(second)
            put(third)
            return TaskDigest(sha256: UnsafeRawBufferPointer(buffer))
        }
    }

    /// Eight bytes at a time: a word with no byte below 0x21 (what all four JSON spaces are) is
    /// passed at once; only a word with one is looked at byte by byte.
    private static func hasWhitespace(_ json: [UInt8]) -> Bool {
        json.withUnsafeBytes { bytes in
            var offset = 0
            while offset + 8 <= bytes.count {
                let word = bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
                // Sets a byte's high bit where it is below 0x21 (bytes of 0x80 and up never).
                let low = (word &- 0x2121_2121_2121_2121) & ~word & 0x8080_8080_8080_8080
                if low != 0, isSpace(in: bytes, from: offset, to: offset + 8) { return true }
                offset += 8
            }
            return isSpace(in: bytes, from: offset, to: bytes.count)
        }
    }

    private static func isSpace(in bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) -> Bool {
        for index in start..<end {
            let byte = bytes[index]
            if byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { return true }
        }
        return false
    }

    /// `body` on `json` without the whitespace outside strings: the bytes in place when there is
    /// none, else a compacted copy on the stack (a new array, filled a byte at a time through
    /// `append`, was 7.6 % of a journaled input thread's samples).
    static func withCompacted<R>(_ json: [UInt8], _ body: (UnsafeRawBufferPointer) -> R) -> R {
        guard hasWhitespace(json) else { return json.withUnsafeBytes(body) }
        return json.withUnsafeBufferPointer { source in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: source.count) { out in
                var count = 0
                var inString = false
                var escaped = false
                for byte in source {
                    if inString {
                        if escaped {
                            escaped = false
                        } else if byte == UInt8(ascii: "\\") {
                            escaped = true
                        } else if byte == UInt8(ascii: "\"") {
                            inString = false
                        }
                    } else {
                        switch byte {
                        case 0x20, 0x09, 0x0A, 0x0D: continue
                        case UInt8(ascii: "\""): inString = true
                        default: break
                        }
                    }
                    out[count] = byte
                    count += 1
                }
                return body(UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: out[..<count])))
            }
        }
    }

    /// 64 lowercase hex digits.
    var hex: String { String(decoding: ByteCursor.bytes(capacity: 64) { writeHex(to: &$0) }, as: UTF8.self) }

    /// Writes the 64 lowercase hex digits, each byte's two as one 16-bit store from a table.
    func writeHex(to cursor: inout ByteCursor) {
        let digits = UnsafeRawPointer(Self.hexPairs.utf8Start)
        cursor.writeRaw(count: 64) { target in
            withUnsafeBytes(of: self) { raw in
                for index in 0..<32 {
                    let pair = digits.loadUnaligned(fromByteOffset: Int(raw[index]) &* 2, as: UInt16.self)
                    target.storeBytes(of: pair, toByteOffset: index &* 2, as: UInt16.self)
                }
            }
        }
    }

    /// "00" through "ff", side by side.
    private static let hexPairs: StaticString = """
        000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\
        202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f\
        404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f\
        606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f\
        808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f\
        a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf\
        c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf\
        e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff
        """

    /// Parses 64 hex digits (either case); nil for anything else.
    init?<Bytes: Collection>(hex: Bytes) where Bytes.Element == UInt8 {
        guard hex.count == 64 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        var high: UInt8?
        for character in hex {
            let value: UInt8
            switch character {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = character - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = character - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): value = character - UInt8(ascii: "A") + 10
            default: return nil
            }
            if let first = high {
                bytes.append(first << 4 | value)
                high = nil
            } else {
                high = value
            }
        }
        guard let digest = bytes.withUnsafeBytes({ TaskDigest(bytes: $0) }) else { return nil }
        self = digest
    }

    var description: String { hex }
}

/// The digest of a whole input so far: SHA-256 over its items' digests in order. The journal
/// records it now and then with the count, so a resumed run also notices a changed line that
/// had not finished, or an input that shrank.
struct InputChain {
    /// libcrypto's SHA-256 state, a plain C struct: copying the chain copies it.
    private var context = SHA256_CTX()
    /// Digests not yet fed to `context` (32 bytes each, no padding): fed 64 at a time, one call
    /// rather than one per item.
    private var pending: [TaskDigest] = []
    private(set) var count: UInt64 = 0
    private static let batch = 64

    init() {
        pool_sha256_start(&context)
        pending.reserveCapacity(Self.batch)
    }

    mutating func append(_ digest: TaskDigest) {
        pending.append(digest)
        count += 1
        if pending.count >= Self.batch {
            pending.withUnsafeBytes { pool_sha256_update(&context, $0.baseAddress, $0.count) }
            pending.removeAll(keepingCapacity: true)
        }
    }

    /// The chain's digest at `count` items; the chain goes on.
    var digest: TaskDigest {
        var copy = context
        pending.withUnsafeBytes { pool_sha256_update(&copy, $0.baseAddress, $0.count) }
        var digest = TaskDigest.zero
        withUnsafeMutableBytes(of: &digest) {
            pool_sha256_finish(&copy, $0.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        return digest
    }
}
