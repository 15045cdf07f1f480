import Testing

@testable import WorkerPoolCLI

/// A Z85 key may start with "-". Passed as its own argument it reads as an option ("Missing value
/// for '--curve-server-key'"): the producer and a supervisor pass keys to the workers they start
/// as `--option=value`, which this checks the worker reads back whole.
struct CurveArgumentTests {
    static let dashKey = "-J9t6M!xmHUZ>Z89(H=RxhTCSlV^G/16[3]Pslo"

    @Test("a server key starting with '-' reaches a worker whole as --curve-server-key=KEY, not as two arguments")
    func dashedKey() throws {
        let command = try WorkerCommand.parse(["--curve-key=/keys/worker.key", "--curve-server-key=\(Self.dashKey)"])
        #expect(command.curveServerKey == Self.dashKey)
        #expect(command.curveKey == "/keys/worker.key")
        #expect(throws: (any Error).self) { try WorkerCommand.parse(["--curve-server-key", Self.dashKey]) }
    }
}
