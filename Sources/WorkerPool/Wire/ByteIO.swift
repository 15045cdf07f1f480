/// Appends little-endian integers and length-prefixed fields to a growing byte buffer.
///
/// The buffer is zero-filled room, and the message is its first ``count`` bytes: an append is
/// one copy into that room. (`Array.append(contentsOf:)` costs some 130 instructions for a
/// 23-byte record, and the worker appends two per result, the producer one per task.)
struct ByteWriter {
    private var storage: [UInt8]
    /// Bytes written.
    private(set) var count = 0

    init(capacity: Int = 64) { storage = Array(repeating: 0, count: max(capacity, 16)) }

    /// Forgets what was written, keeping the room.
    mutating func removeAll() { count = 0 }

    /// The bytes written.
    func withBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try storage.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
    }

    /// The bytes written, as an array (the room after them let go).
    consuming func finished() -> [UInt8] {
        storage.removeLast(storage.count - count)
        return storage
    }

    @inline(__always)
    mutating func append(_ source: UnsafeRawBufferPointer) {
        guard let base = source.baseAddress, source.count > 0 else { return }
        if count + source.count > storage.count { grow(to: count + source.count) }
        let offset = count
        storage.withUnsafeMutableBytes { target in
            (target.baseAddress! + offset).copyMemory(from: base, byteCount: source.count)
        }
        count += source.count
    }

    @inline(__always)
    mutating func append(_ source: UnsafeBufferPointer<UInt8>) { append(UnsafeRawBufferPointer(source)) }

    mutating func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { append($0) }
    }

    @inline(never)
    private mutating func grow(to needed: Int) {
        var size = storage.count * 2
        while size < needed { size *= 2 }
        storage.append(contentsOf: repeatElement(0, count: size - storage.count))
    }

    /// Writes `value` over the integer at `offset`, for counts known only at the end.
    mutating func patch<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        precondition(offset + MemoryLayout<T>.size <= count)
        withUnsafeBytes(of: value.littleEndian) { source in
            for index in 0..<source.count { storage[offset + index] = source[index] }
        }
    }

    /// A UTF-8 string after a one-byte length; callers check the length fits.
    mutating func appendShortString(_ string: String) {
        var string = string
        string.withUTF8 { utf8 in
            append(UInt8(truncatingIfNeeded: utf8.count))
            append(utf8)
        }
    }
}

/// Reads what ``ByteWriter`` wrote from untrusted bytes: every read is bounds-checked and
/// fails with a ``WireError`` instead of trapping.
struct ByteReader {
    let buffer: UnsafeRawBufferPointer
    private(set) var offset = 0

    init(_ buffer: UnsafeRawBufferPointer) { self.buffer = buffer }

    var remaining: Int { buffer.count - offset }

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: StaticString) throws(WireError) -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { throw truncated(what, needed: size) }
        let value = buffer.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += size
        return T(littleEndian: value)
    }

    mutating func readBytes(_ count: Int, _ what: StaticString) throws(WireError) -> UnsafeRawBufferPointer {
        guard count >= 0, remaining >= count else { throw truncated(what, needed: count) }
        // Checked just above: no slice (and its bounds checks again) needed.
        let bytes = UnsafeRawBufferPointer(start: buffer.baseAddress.map { $0 + offset }, count: count)
        offset += count
        return bytes
    }

    /// Out of line: the reads stay small enough to inline into the decoders' loops.
    @inline(never)
    private func truncated(_ what: StaticString, needed: Int) -> WireError {
        .truncated(what: "\(what)", needed: needed, available: remaining)
    }

    mutating func readString(length: Int, _ what: StaticString) throws(WireError) -> String {
        let raw = try readBytes(length, what)
        guard let string = Self.string(raw) else { throw .invalidUTF8(what: "\(what)") }
        return string
    }

    /// `raw` as a String if it is valid UTF-8. ASCII, the usual case for names, needs no
    /// validation (which costs a generic metadata lookup per call).
    static func string(_ raw: UnsafeRawBufferPointer) -> String? {
        let bytes = raw.bindMemory(to: UInt8.self)
        if isASCII(bytes) { return String(decoding: bytes, as: UTF8.self) }
        return String(validating: bytes, as: UTF8.self)
    }

    /// Whether `raw` is valid UTF-8, without making a String of it when it is ASCII.
    static func isValidUTF8(_ raw: UnsafeRawBufferPointer) -> Bool {
        let bytes = raw.bindMemory(to: UInt8.self)
        return isASCII(bytes) || String(validating: bytes, as: UTF8.self) != nil
    }

    /// Eight bytes per step: a name is checked for every task a worker receives.
    private static func isASCII(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        let raw = UnsafeRawPointer(base)
        var offset = 0
        var high: UInt64 = 0
        while offset &+ 8 <= bytes.count {
            high |= raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            offset &+= 8
        }
        while offset < bytes.count {
            high |= UInt64(base[offset])
            offset &+= 1
        }
        return high & 0x8080_8080_8080_8080 == 0
    }

    mutating func readShortString(_ what: StaticString) throws(WireError) -> String {
        let length = try read(UInt8.self, what)
        return try readString(length: Int(length), what)
    }

    func expectEnd() throws(WireError) {
        if remaining != 0 { throw .trailingBytes(remaining) }
    }
}
