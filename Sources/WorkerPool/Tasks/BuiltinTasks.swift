import Foundation

/// The lecture's tasks and a few for measuring.
extension TaskRegistry {
    /// `multiply`, `sleep`, `primes`, `wait-event`, `set-event`, and `crash` (takes its process
    /// down, to see the pool recover).
    public static var builtin: TaskRegistry {
        var registry = TaskRegistry()
        registry.register("multiply", describe: { (input: Multiply) in "\(input.a) * \(input.b)" }) { input, _ in
            let (product, overflow) = input.a.multipliedReportingOverflow(by: input.b)
            guard !overflow else { throw TaskError("\(input.a) * \(input.b) overflows a 64-bit integer") }
            return "\(input.a) * \(input.b) = \(product)"
        }
        registry.addFastPath(
            "multiply",
            inPlace: { payload, context, outcome in
                // At debug level the handler logs each task, as the lecture's consumers do.
                context.logLevel > .debug && Multiply.fast(payload, into: &outcome.payload)
            })
        registry.register("sleep", describe: { (input: Sleep) in "sleep \(input.ms) ms" }) { input, _ in
            guard input.ms >= 0, input.ms <= 86_400_000 else { throw TaskError("ms must be between 0 and 86400000") }
            Thread.sleep(forTimeInterval: Double(input.ms) / 1000)
            return "slept \(input.ms) ms"
        }
        registry.register("primes", describe: { (input: Primes) in "primes below \(input.n)" }) { input, _ in
            guard input.n >= 0, input.n <= 1 << 32 else { throw TaskError("n must be between 0 and 2^32") }
            return PrimesOutput(n: input.n, count: countPrimes(below: input.n))
        }
        registry.register("wait-event", describe: { (input: WaitEvent) in "wait for event '\(input.event)'" }) {
            input, context in
            let started = ContinuousClock.now
            let isSet = context.events.wait(input.event, timeout: input.timeout)
            let waited = started.duration(to: .now)
            return WaitEventOutput(
                event: input.event, isSet: isSet,
                waitedSeconds: (Double(waited.components.seconds) + Double(waited.components.attoseconds) / 1e18)
                    .rounded(toPlaces: 3))
        }
        registry.register("set-event", describe: { (input: SetEvent) in "set event '\(input.event)'" }) {
            input, context in
            guard !input.event.isEmpty, input.event.utf8.count <= WireFormat.maxNameLength else {
                throw TaskError("event names are 1-\(WireFormat.maxNameLength) bytes")
            }
            if input.clear == true {
                context.events.clear(input.event)
                return "cleared \(input.event)"
            }
            context.events.set(input.event)
            return "set \(input.event)"
        }
        registry.register("crash", describe: { (input: Crash) in "crash (\(input.how ?? "fatal"))" }) {
            input, _ -> String in
            // For testing what the pool does when a task takes its process down.
            switch input.how ?? "fatal" {
            case "exit": exit(3)
            case "abort": abort()
            case "fatal": fatalError("the crash task crashed its worker, as asked")
            default: throw TaskError("how must be fatal, exit or abort")
            }
        }
        registry.registerBenchmarkTasks()
        registry.registerFailFirstTask()
        return registry
    }

    struct Crash: Codable, Sendable {
        /// `fatal` (a trap), `exit` (exit code 3) or `abort` (SIGABRT).
        var how: String?
    }

    struct SetEvent: Codable, Sendable {
        var event: String
        /// Clear instead of set.
        var clear: Bool?
    }

    struct Multiply: Codable, Sendable {
        var a: Int
        var b: Int

        /// `{"a": INT, "b": INT}` (either order, spaces allowed) multiplied without `Codable`:
        /// the JSON string `"a * b = product"` appended to `answer`. False (nothing appended) for
        /// anything else, or an overflow, which the `Codable` handler then answers with its own words.
        static func fast(_ bytes: UnsafeBufferPointer<UInt8>, into answer: inout [UInt8]) -> Bool {
            guard let (a, b) = compactOperands(bytes) ?? operands(bytes) else { return false }
            let (product, overflow) = a.multipliedReportingOverflow(by: b)
            guard !overflow else { return false }
            ByteCursor.append(to: &answer, capacity: 8 + 3 * DecimalText.maxLength) { cursor in
                cursor.write(UInt8(ascii: "\""))
                cursor.writeDecimal(a)
                cursor.write(" * ")
                cursor.writeDecimal(b)
                cursor.write(" = ")
                cursor.writeDecimal(product)
                cursor.write(UInt8(ascii: "\""))
            }
            return true
        }

        /// `{"a":INT,"b":INT}` exactly, as generated tasks are written: half the work of the
        /// general reading below, which needs a look for spaces before every token.
        private static func compactOperands(_ bytes: UnsafeBufferPointer<UInt8>) -> (Int, Int)? {
            var scanner = PlainScanner(bytes)
            guard scanner.literal(#"{"a":"#), let a = scanner.integer(), scanner.literal(#","b":"#),
                let b = scanner.integer(), scanner.literal("}"), scanner.index == bytes.count
            else { return nil }
            return (a, b)
        }

        /// `{"a": INT, "b": INT}` in either order, spaces allowed.
        private static func operands(_ bytes: UnsafeBufferPointer<UInt8>) -> (Int, Int)? {
            var scanner = PlainScanner(bytes)
            guard scanner.take(UInt8(ascii: "{")) else { return nil }
            var a: Int?
            var b: Int?
            repeat {
                guard let key = scanner.singleLetterKey(), scanner.take(UInt8(ascii: ":")),
                    let value = scanner.integer()
                else { return nil }
                switch key {
                case UInt8(ascii: "a") where a == nil: a = value
                case UInt8(ascii: "b") where b == nil: b = value
                default: return nil
                }
            } while scanner.take(UInt8(ascii: ","))
            guard scanner.take(UInt8(ascii: "}")), scanner.atEnd, let a, let b else { return nil }
            return (a, b)
        }
    }

    /// Reads the few JSON shapes a fast path accepts; any surprise is nil.
    struct PlainScanner {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

        var atEnd: Bool {
            mutating get {
                skipSpaces()
                return index == bytes.count
            }
        }

        mutating func skipSpaces() {
            // Most bytes are no space, and one comparison says so: the four are all below 0x21.
            while index < bytes.count, bytes[index] <= 0x20,
                bytes[index] == 0x20 || bytes[index] == 0x09 || bytes[index] == 0x0A || bytes[index] == 0x0D
            {
                index += 1
            }
        }

        /// `text` next, with no space before it.
        mutating func literal(_ text: StaticString) -> Bool {
            let count = text.utf8CodeUnitCount
            guard bytes.count - index >= count else { return false }
            for offset in 0..<count where bytes[index &+ offset] != text.utf8Start[offset] { return false }
            index &+= count
            return true
        }

        mutating func take(_ byte: UInt8) -> Bool {
            skipSpaces()
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        /// `"x"`: a one-letter key, returned as its byte.
        mutating func singleLetterKey() -> UInt8? {
            guard take(UInt8(ascii: "\"")), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "\"") else {
                return nil
            }
            defer { index += 2 }
            return bytes[index]
        }

        /// An integer of up to 18 digits (no overflow possible), without a leading zero, fraction
        /// or exponent: exactly what `Int`'s `Decodable` accepts the same way.
        mutating func integer() -> Int? {
            skipSpaces()
            var negative = false
            if index < bytes.count, bytes[index] == UInt8(ascii: "-") {
                negative = true
                index += 1
            }
            let start = index
            let limit = min(bytes.count, start + 18)
            var value = 0
            // At most 18 digits: the wrapping arithmetic cannot wrap.
            while index < limit, bytes[index] &- 0x30 < 10 {
                value = value &* 10 &+ Int(bytes[index] &- 0x30)
                index += 1
            }
            let digits = index - start
            guard digits > 0, !(digits > 1 && bytes[start] == 0x30) else { return nil }
            if index < bytes.count,
                bytes[index] &- 0x30 < 10 || bytes[index] == 0x2E || bytes[index] == 0x65 || bytes[index] == 0x45
            {
                return nil
            }
            return negative ? -value : value
        }
    }

    struct Sleep: Codable, Sendable {
        var ms: Int
    }

    struct Primes: Codable, Sendable {
        var n: Int
    }

    struct PrimesOutput: Codable, Sendable {
        var n: Int
        var count: Int
    }

    struct WaitEvent: Codable, Sendable {
        var event: String
        /// Seconds; absent waits until the event is set.
        var timeout: Double?
    }

    struct WaitEventOutput: Codable, Sendable {
        var event: String
        var isSet: Bool
        var waitedSeconds: Double

        enum CodingKeys: String, CodingKey {
            case event
            case isSet = "is_set"
            case waitedSeconds = "waited_s"
        }
    }

    /// Trial division, deliberately simple: its cost grows with `n` (~n·√n / log n).
    static func countPrimes(below n: Int) -> Int {
        guard n > 2 else { return 0 }
        var count = 1
        var candidate = 3
        while candidate < n {
            var isPrime = true
            var divisor = 3
            while divisor * divisor <= candidate {
                if candidate % divisor == 0 {
                    isPrime = false
                    break
                }
                divisor += 2
            }
            if isPrime { count += 1 }
            candidate += 2
        }
        return count
    }
}

extension Double {
    fileprivate func rounded(toPlaces places: Int) -> Double {
        let scale = pow(10, Double(places))
        return (self * scale).rounded() / scale
    }
}

// MARK: - Tasks for the benchmark (`bench`): spin, blob, flaky, locked

extension TaskRegistry {
    /// `spin` (`{"us": 100}`: CPU work), `blob` (`{"data": "..."}`: a large payload), `flaky`
    /// (`{"p": 0.01}`: takes its process down with probability p) and `locked` (`{"us": 100}`:
    /// spins holding a process-wide lock, standing for code that is not thread-safe).
    ///
    /// `spin` and `locked` run a fixed loop (xorshift64 steps, a dependency chain the compiler
    /// cannot shorten), not a clock check: the work is the same whatever else the machine does.
    /// `"us"` is turned into steps with this process's calibration (the fastest of a few short
    /// trials, measured once); `"iterations"` gives the step count exactly, so every process of
    /// a run does identical work (the benchmark calibrates once and sends it).
    mutating func registerBenchmarkTasks() {
        register("spin", describe: { (input: Spin) in "spin \(input.us ?? 0) us" }) { input, _ in
            let steps = try input.steps()
            return SpinOutput(iterations: steps, state: Self.spinLoop(iterations: steps, seed: UInt64(steps)))
        }
        register("blob", describe: { (input: Blob) in "blob of \(input.data.utf8.count) bytes" }) { input, _ in
            var data = input.data
            let checksum = data.withUTF8 { bytes -> UInt32 in
                // FNV-1a: touches every byte.
                var hash: UInt32 = 2_166_136_261
                for byte in bytes { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
                return hash
            }
            return BlobOutput(length: data.utf8.count, checksum: checksum)
        }
        register("flaky", describe: { (input: Flaky) in "flaky p=\(input.p)" }) { input, _ -> String in
            guard input.p >= 0, input.p <= 1 else { throw TaskError("p must be between 0 and 1") }
            if input.us != nil || input.iterations != nil {
                _ = Self.spinLoop(iterations: try Spin(us: input.us, iterations: input.iterations).steps(), seed: 1)
            }
            if Double.random(in: 0..<1) < input.p {
                // For the benchmark's crash workload: what a crash costs the pool.
                abort()
            }
            return "survived"
        }
        register("locked", describe: { (input: Spin) in "locked spin \(input.us ?? 0) us" }) { input, _ in
            let steps = try input.steps()
            Self.benchmarkLock.lock()
            defer { Self.benchmarkLock.unlock() }
            return SpinOutput(iterations: steps, state: Self.spinLoop(iterations: steps, seed: UInt64(steps)))
        }
    }

    /// The process-wide lock `locked` holds while it spins.
    private static let benchmarkLock = NSLock()

    struct Spin: Codable, Sendable {
        /// Microseconds of work on this machine (with this process's calibration).
        var us: Double?
        /// Exact loop steps; wins over `us`.
        var iterations: Int?

        func steps() throws -> Int {
            if let iterations {
                guard iterations >= 0, iterations <= 1 << 40 else { throw TaskError("iterations must be 0-2^40") }
                return iterations
            }
            guard let us, us >= 0, us <= 3_600_000_000 else {
                throw TaskError("give \"us\" (0-3600000000) or \"iterations\"")
            }
            return Int((us * TaskRegistry.spinStepsPerMicrosecond).rounded())
        }
    }

    struct SpinOutput: Codable, Sendable {
        var iterations: Int
        var state: UInt64
    }

    struct Blob: Codable, Sendable {
        var data: String
    }

    struct BlobOutput: Codable, Sendable {
        var length: Int
        var checksum: UInt32
    }

    struct Flaky: Codable, Sendable {
        /// Probability of crashing the process.
        var p: Double
        /// Optional work before the draw, as for `spin`.
        var us: Double?
        var iterations: Int?
    }

    /// `iterations` xorshift64 steps from `seed`; returns the final state (so the loop is not
    /// optimised away).
    @inline(never)
    static func spinLoop(iterations: Int, seed: UInt64) -> UInt64 {
        var state = seed | 1
        for _ in 0..<max(iterations, 0) {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
        }
        return state
    }

    /// Loop steps per microsecond in this process: the fastest of five 2 ms trials, so a busy
    /// machine slows the work down rather than shrinking it.
    static let spinStepsPerMicrosecond: Double = {
        let steps = 200_000
        var best = Duration.seconds(1)
        var sink: UInt64 = 0
        for _ in 0..<5 {
            let started = ContinuousClock.now
            sink ^= spinLoop(iterations: steps, seed: sink)
            best = min(best, started.duration(to: .now))
        }
        let micros = Double(best.components.attoseconds) / 1e12 + Double(best.components.seconds) * 1e6
        // The sink takes part, so the trials cannot be optimised away.
        return Double(steps) / max(micros, 1) * (sink == 0x5EED ? 1.000_001 : 1)
    }()
}
