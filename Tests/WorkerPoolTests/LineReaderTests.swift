import Foundation
import Testing

@testable import WorkerPool

@Suite("Line reader")
struct LineReaderTests {
    enum Read: Equatable {
        case line(String)
        case tooLong(Int)
    }

    /// Every line `LineReader` reads from a file holding `text`.
    static func lines(of text: String, maxLineLength: Int) throws -> [Read] {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("lines-\(UUID().uuidString)")
        try Data(text.utf8).write(to: path)
        defer { try? FileManager.default.removeItem(at: path) }
        let descriptor = open(path.path, O_RDONLY)
        try #require(descriptor >= 0)
        defer { close(descriptor) }
        var reader = LineReader(fileDescriptor: descriptor, maxLineLength: maxLineLength)
        var read: [Read] = []
        while let line = reader.nextLine() {
            switch line {
            case .line(let bytes): read.append(.line(String(decoding: bytes, as: UTF8.self)))
            case .tooLong(let length): read.append(.tooLong(length))
            }
        }
        #expect(reader.readError == nil)
        return read
    }

    @Test(
        "lines come back whole, whatever their length against the 64 KiB reads: empty ones, one spanning several reads, a last one without a newline",
        arguments: [0, 1, 65_535, 65_536, 65_537, 200_000])
    func wholeLines(longLength: Int) throws {
        let long = String(repeating: "x", count: longLength)
        let text = "a\n\n" + long + "\nb\n" + long + "\nlast"
        let read = try Self.lines(of: text, maxLineLength: 1 << 20)
        #expect(read == [.line("a"), .line(""), .line(long), .line("b"), .line(long), .line("last")])
    }

    @Test("a line longer than the limit is reported with its length, and the lines around it are read")
    func tooLongLine() throws {
        let text = "a\n" + String(repeating: "y", count: 150_000) + "\nb\n" + String(repeating: "z", count: 99) + "\n"
        let read = try Self.lines(of: text, maxLineLength: 100_000)
        #expect(read == [.line("a"), .tooLong(150_000), .line("b"), .line(String(repeating: "z", count: 99))])
    }
}
