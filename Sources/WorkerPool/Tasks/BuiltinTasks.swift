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
