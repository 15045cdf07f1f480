import Foundation
import Testing
import WorkerPool
import ZeroMQ

/// CURVE: keys, the allowlist, and clear failures for workers that do not belong.
@Suite("Security", .serialized, .timeLimit(.minutes(3)))
struct SecurityTests {
    /// Runs `producer keygen NAME` in `directory` and returns the public key it printed.
    static func keygen(_ name: String, in directory: URL) throws -> CurveKey {
        let process = try TestProcess("producer", ["keygen", name, "--directory", directory.path], in: directory)
        defer { process.stop() }
        #expect(process.waitForExit() == 0, "\(process.stderr)")
        let printed = try #require(process.stdout.firstMatch(of: /public key (\S{40})/)?.1)
        return try #require(CurveKey(z85: printed))
    }

    @Test("keygen writes NAME.pub and an owner-only NAME.key that hold one pair, and never overwrites")
    func keygen() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let printed = try Self.keygen("producer", in: directory)
        let secretPath = directory.appendingPathComponent("producer.key").path
        let publicPath = directory.appendingPathComponent("producer.pub").path
        let mode = try #require(FileManager.default.attributesOfItem(atPath: secretPath)[.posixPermissions] as? Int)
        #expect(mode == 0o600)
        let pair = try CurveKeyFile.loadKeyPair(path: secretPath)
        #expect(pair.publicKey == printed)
        #expect(try CurveKeyFile.loadPublicKey(publicPath) == printed)
        #expect(!(try String(contentsOfFile: publicPath, encoding: .utf8)).contains(pair.secretKey.z85))

        let again = try TestProcess("producer", ["keygen", "producer", "--directory", directory.path], in: directory)
        defer { again.stop() }
        #expect(again.waitForExit() != 0)
        #expect(again.stderr.contains("exists; not overwriting"), "\(again.stderr)")
        #expect(try CurveKeyFile.loadKeyPair(path: secretPath) == pair)
    }

    @Test("an allowlist of bare Z85 keys keeps every key, also those with '=' (a Z85 character)")
    func bareKeys() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // About 38 % of keys contain '='. ('#' is Z85 too, but can never start a key: a first
        // digit of 84 would exceed 32 bits.)
        var keys = try (0..<12).map { _ in try CurveKeyPair.generate().publicKey }
        while !keys.contains(where: { $0.z85.contains("=") }) { keys.append(try CurveKeyPair.generate().publicKey) }
        let file = directory.appendingPathComponent("allowed.txt")
        try writeLines(["# workers, one key a line"] + keys.map(\.z85), to: file)
        #expect(try CurveKeyFile.loadAllowlist(file.path) == Set(keys))
        // A bare secret key file works as --curve-key too.
        let pair = try CurveKeyPair.generate()
        let secret = directory.appendingPathComponent("bare.key")
        try writeLines([pair.secretKey.z85], to: secret)
        #expect(try CurveKeyFile.loadKeyPair(path: secret.path) == pair)
    }

    @Test(
        "only an allowed key gets work: an unknown key exits 77, a plaintext worker 78, and the producer logs both"
    )
    func allowlist() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try Self.keygen("producer", in: directory)
        _ = try Self.keygen("allowed", in: directory)
        let stranger = try Self.keygen("stranger", in: directory)
        let path = { (name: String) in directory.appendingPathComponent(name).path }
        let input = try writeTaskFile(
            (1...200).map { #"{"task": "multiply", "args": {"a": \#($0), "b": 3}}"# }, in: directory)
        let endpoints = PoolEndpoints.ipc(directory: directory.path)
        let producer = try TestProcess(
            "producer",
            [
                "--ipc", directory.path, "--input", input.path, "--output", "jsonl", "--wait-workers", "1",
                "--curve-key", path("producer.key"), "--curve-allow", path("allowed.pub"),
            ], in: directory)
        defer { producer.stop() }
        #expect(producer.waitForStderr(containing: "producer bound"))

        let unknown = try TestProcess(
            "worker",
            [
                "--ipc", directory.path, "--curve-key", path("stranger.key"), "--curve-server-key",
                path("producer.pub"),
            ], in: directory)
        defer { unknown.stop() }
        #expect(unknown.waitForExit(timeout: 30) == 77, "\(unknown.stderr)")
        #expect(unknown.stderr.contains("the producer refused this worker's CURVE key"))
        #expect(producer.waitForStderr(containing: "refused worker key \(stranger.z85)"), "\(producer.stderr)")

        let plaintext = try TestProcess("worker", ["--ipc", directory.path], in: directory)
        defer { plaintext.stop() }
        #expect(plaintext.waitForExit(timeout: 30) == 78, "\(plaintext.stderr)")
        #expect(plaintext.stderr.contains("the producer requires CURVE encryption"))
        #expect(producer.waitForStderr(containing: "a plaintext worker tried to connect"), "\(producer.stderr)")

        // A stranger that writes straight to the results socket: ZAP refuses the connection, so
        // its message never reaches the producer, not even as a rejected one.
        let context = try Context()
        let forger = try Socket(context, .push)
        try forger.makeCurveClient(
            try CurveKeyFile.loadKeyPair(path: path("stranger.key")),
            serverKey: try CurveKeyFile.loadPublicKey(path("producer.pub")))
        try forger.startMonitor("inproc://forger", events: .handshakeFailedAuthentication)
        let monitor = try SocketMonitor(context, endpoint: "inproc://forger")
        try monitor.socket.setReceiveTimeout(milliseconds: 20_000)
        try forger.connect(endpoints.results)
        _ = try forger.send([UInt8](repeating: 0xAB, count: 64), dontWait: true)
        #expect(try monitor.next()?.kind == .handshakeFailedAuthentication)

        #expect(producer.stdout.isEmpty, "no task went to a refused or plaintext worker")
        let allowed = try TestProcess(
            "worker",
            ["--ipc", directory.path, "--curve-key", path("allowed.key"), "--curve-server-key", path("producer.pub")],
            in: directory)
        defer { allowed.stop() }
        #expect(producer.waitForExit() == 0, "\(producer.stderr)")
        #expect(allowed.waitForExit(timeout: 30) == 0, "\(allowed.stderr)")
        let outcomes = try parseOutcomes(producer.stdout)
        #expect(outcomes.count == 200)
        #expect(outcomes.allSatisfy { $0.status == "ok" })
        #expect(Set(outcomes.compactMap(\.pid)).count == 1, "one allowed worker process ran everything")
        #expect(!producer.stderr.contains("rejected a message"), "the forged message never arrived")
    }

    @Test("a worker holding the wrong producer key exits 78 and says which option is wrong")
    func wrongServerKey() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try Self.keygen("producer", in: directory)
        _ = try Self.keygen("worker", in: directory)
        let path = { (name: String) in directory.appendingPathComponent(name).path }
        let producer = try TestProcess(
            "producer",
            [
                "--ipc", directory.path, "--generate", "10", "--output", "none", "--wait-workers", "1",
                "--curve-key", path("producer.key"), "--curve-allow", path("worker.pub"),
            ], in: directory)
        defer { producer.stop() }
        #expect(producer.waitForStderr(containing: "producer bound"))
        // The worker's own public key in place of the producer's.
        let started = Date()
        let worker = try TestProcess(
            "worker",
            [
                "--ipc", directory.path, "--curve-key", path("worker.key"), "--curve-server-key", path("worker.pub"),
                "--handshake-give-up", "2",
            ], in: directory)
        defer { worker.stop() }
        #expect(worker.waitForExit(timeout: 60) == 78, "\(worker.stderr)")
        #expect(Date().timeIntervalSince(started) >= 2, "it kept trying for --handshake-give-up first")
        #expect(worker.stderr.contains("--curve-server-key is probably not the producer's public key"))
        #expect(producer.waitForStderr(containing: "a worker has the wrong --curve-server-key"), "\(producer.stderr)")
    }

    @Test("with --curve-key and --local-workers the producer makes its workers a key of their own")
    func localWorkers() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try Self.keygen("producer", in: directory)
        let producer = try TestProcess(
            "producer",
            [
                "--ipc", directory.path, "--generate", "500", "--output", "jsonl", "--local-workers", "2",
                "--curve-key", directory.appendingPathComponent("producer.key").path,
            ], in: directory)
        defer { producer.stop() }
        #expect(producer.waitForExit() == 0, "\(producer.stderr)")
        #expect(producer.stderr.contains("CURVE on; 1 worker keys allowed"))
        #expect(try parseOutcomes(producer.stdout).count == 500)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory())
        #expect(!leftovers.contains { $0.hasPrefix("producer-keys-\(producer.pid)-") }, "the run's keys are removed")
    }
}
