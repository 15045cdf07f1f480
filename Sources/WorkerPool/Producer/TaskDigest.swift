import Crypto

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

    init(_ digest: SHA256Digest) {
        self = .zero
        digest.withUnsafeBytes { raw in
            withUnsafeMutableBytes(of: &self) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[0..<32])) }
        }
    }

    /// The digest of `item`. A task hashes its name, its arguments without the whitespace JSON
    /// ignores (so re-indenting the input changes nothing) and its time limit; invalid input
    /// hashes its reason. A task's `retries` is not hashed: it changes how often a failure is
    /// tried again, not what the task is (a journal resumed with other retries still fits). Each field is length-prefixed, so no two items share their bytes.
    init(of item: SourceItem) {
        var hasher = SHA256()
        switch item {
        case .task(let name, let payload, let timeLimit, _):
            var name = name
            name.withUTF8 { Self.update(&hasher, tag: 1, UnsafeRawBufferPointer($0)) }
            if Self.hasWhitespace(payload) {
                Self.compacted(payload).withUnsafeBytes { Self.update(&hasher, tag: 2, $0) }
            } else {
                payload.withUnsafeBytes { Self.update(&hasher, tag: 2, $0) }
            }
            if let timeLimit {
                withUnsafeBytes(of: timeLimit.bitPattern.littleEndian) { Self.update(&hasher, tag: 3, $0) }
            }
        case .invalid(let reason):
            var reason = reason
            reason.withUTF8 { Self.update(&hasher, tag: 4, UnsafeRawBufferPointer($0)) }
        }
        self.init(hasher.finalize())
    }

    /// Feeds a tag byte, the length (8 bytes, little-endian) and the bytes, without allocating.
    private static func update(_ hasher: inout SHA256, tag: UInt8, _ bytes: UnsafeRawBufferPointer) {
        var header: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &header) { raw in
            raw[0] = tag
            raw.storeBytes(of: UInt64(bytes.count).littleEndian, toByteOffset: 1, as: UInt64.self)
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: raw[0..<9]))
        }
        hasher.update(bufferPointer: bytes)
    }

    private static func hasWhitespace(_ json: [UInt8]) -> Bool {
        json.contains { $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }
    }

    /// JSON text without the whitespace outside strings; the bytes unchanged when there is none.
    static func compacted(_ json: [UInt8]) -> [UInt8] {
        guard hasWhitespace(json) else { return json }
        var out: [UInt8] = []
        out.reserveCapacity(json.count)
        var inString = false
        var escaped = false
        for byte in json {
            if inString {
                out.append(byte)
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
                continue
            }
            switch byte {
            case 0x20, 0x09, 0x0A, 0x0D: continue
            case UInt8(ascii: "\""): inString = true
            default: break
            }
            out.append(byte)
        }
        return out
    }

    /// 64 lowercase hex digits.
    var hex: String {
        var text: [UInt8] = []
        text.reserveCapacity(64)
        appendHex(to: &text)
        return String(decoding: text, as: UTF8.self)
    }

    /// Appends the 64 lowercase hex digits to `bytes`.
    func appendHex(to bytes: inout [UInt8]) {
        // Into 64 bytes on the stack, then one copy.
        var text: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeBytes(of: self) { raw in
            withUnsafeMutableBytes(of: &text) { out in
                for (index, byte) in raw.enumerated() {
                    out[2 * index] = Self.hexDigit(byte >> 4)
                    out[2 * index + 1] = Self.hexDigit(byte & 0x0F)
                }
                bytes.append(contentsOf: out)
            }
        }
    }

    private static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10
    }

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
    private var hasher = SHA256()
    private(set) var count: UInt64 = 0

    mutating func append(_ digest: TaskDigest) {
        withUnsafeBytes(of: digest) { hasher.update(bufferPointer: $0) }
        count += 1
    }

    /// The chain's digest at `count` items; the chain goes on.
    var digest: TaskDigest { TaskDigest(hasher.finalize()) }
}
