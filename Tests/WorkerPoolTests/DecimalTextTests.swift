import Testing

@testable import WorkerPool

struct DecimalTextTests {
    @Test("integers are written as Swift prints them, at every digit count and sign")
    func matchesDescription() {
        var values = [0, 9, 10, 99, 100, 101, 999, 1000, -1, -9, -10, -99, -100, Int.max, Int.min, Int.min + 1]
        var power = 1
        for _ in 0..<18 {
            power *= 10
            values += [power - 1, power, power + 1, -power]
        }
        // Seeded, so a failing value comes back on every run.
        var generator = SeededRandom(seed: 0xDEC1_3A1)
        for _ in 0..<2000 {
            values.append(
                Int.random(in: Int.min...Int.max, using: &generator) >> Int.random(in: 0..<63, using: &generator))
        }
        for value in values {
            var bytes: [UInt8] = Array("x".utf8)
            DecimalText.append(value, to: &bytes)
            #expect(String(decoding: bytes, as: UTF8.self) == "x\(value)", "value \(value)")
        }
    }
}
