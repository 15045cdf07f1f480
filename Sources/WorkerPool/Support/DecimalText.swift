/// Integers written in decimal straight into bytes, two digits per division: the generated tasks,
/// `multiply`'s results and every JSON record print numbers on the hot path.
enum DecimalText {
    /// "00" through "99": the two digits of each value below 100, side by side.
    private static let pairs: StaticString = """
        00010203040506070809101112131415161718192021222324252627282930313233343536373839\
        40414243444546474849505152535455565758596061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899
        """

    /// The most bytes a value takes: 19 digits and a sign (`Int.min`).
    static let maxLength = 20

    /// Appends `value` in decimal (a leading `-` when negative), without building a String.
    static func append(_ value: Int, to bytes: inout [UInt8]) {
        if value >= 0 && value < 10 {
            bytes.append(0x30 &+ UInt8(truncatingIfNeeded: value))
            return
        }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: maxLength) { buffer in
            let length = write(value, at: buffer.baseAddress!)
            bytes.append(contentsOf: UnsafeBufferPointer(start: buffer.baseAddress, count: length))
        }
    }

    /// Writes `value` at `start`, which has room for ``maxLength`` bytes; returns how many it wrote.
    static func write(_ value: Int, at start: UnsafeMutablePointer<UInt8>) -> Int {
        var magnitude = value.magnitude
        var length = value < 0 ? 2 : 1
        var rest = magnitude
        while rest >= 10 {
            rest /= 10
            length &+= 1
        }
        if value < 0 { start.pointee = UInt8(ascii: "-") }
        let pairs = Self.pairs.utf8Start
        var end = start + length
        while magnitude >= 100 {
            let pair = Int(truncatingIfNeeded: magnitude % 100) &* 2
            magnitude /= 100
            end -= 2
            end[0] = pairs[pair]
            end[1] = pairs[pair &+ 1]
        }
        if magnitude >= 10 {
            let pair = Int(truncatingIfNeeded: magnitude) &* 2
            end[-2] = pairs[pair]
            end[-1] = pairs[pair &+ 1]
        } else {
            end[-1] = 0x30 &+ UInt8(truncatingIfNeeded: magnitude)
        }
        return length
    }
}

/// Writes bytes forward from a pointer into room its owner reserved, for the few hot-path texts
/// whose longest form is known (a generated task, `multiply`'s answer): one allocation for the
/// array, no capacity or uniqueness check per piece.
struct ByteCursor {
    private(set) var position: UnsafeMutablePointer<UInt8>

    init(_ start: UnsafeMutablePointer<UInt8>) { position = start }

    @inline(__always)
    mutating func write(_ text: StaticString) {
        position.update(from: text.utf8Start, count: text.utf8CodeUnitCount)
        position += text.utf8CodeUnitCount
    }

    mutating func write(_ byte: UInt8) {
        position.pointee = byte
        position += 1
    }

    mutating func write(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let source = bytes.baseAddress else { return }
        position.update(from: source, count: bytes.count)
        position += bytes.count
    }

    mutating func writeDecimal(_ value: Int) { position += DecimalText.write(value, at: position) }

    /// `count` bytes written by `body` at the cursor, through a raw pointer (any alignment).
    mutating func writeRaw(count: Int, _ body: (UnsafeMutableRawPointer) -> Void) {
        body(UnsafeMutableRawPointer(position))
        position += count
    }

    /// `[UInt8]` of at most `capacity` bytes, written by `body` through a cursor on the stack and
    /// copied once. (Not `Array(unsafeUninitializedCapacity:)`: unspecialised, it looks up the
    /// array's type metadata on every call, some 400 instructions.)
    static func bytes(capacity: Int, _ body: (inout ByteCursor) -> Void) -> [UInt8] {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: capacity) { buffer in
            var cursor = ByteCursor(buffer.baseAddress!)
            body(&cursor)
            // `Array(_:)` of a buffer is the cheapest copy into a new array: a third of
            // `append(contentsOf:)`'s cost.
            return Array(UnsafeBufferPointer(start: buffer.baseAddress, count: cursor.position - buffer.baseAddress!))
        }
    }

    /// ``bytes(capacity:_:)`` appended to `bytes`: no allocation when it has the room.
    static func append(to bytes: inout [UInt8], capacity: Int, _ body: (inout ByteCursor) -> Void) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: capacity) { buffer in
            var cursor = ByteCursor(buffer.baseAddress!)
            body(&cursor)
            bytes.append(
                contentsOf: UnsafeBufferPointer(start: buffer.baseAddress, count: cursor.position - buffer.baseAddress!)
            )
        }
    }
}
