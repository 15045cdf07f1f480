import Foundation
import Testing
import WorkerPool

/// A cluster of network-namespace "hosts" made by `deploy/netns/cluster.sh`, torn down by
/// ``down()`` (called from `defer` in every test, so also after a failure).
final class NetnsCluster {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("deploy/netns/cluster.sh").path

    /// Root, `ip`, and the script: what building hosts needs. CI runs as root.
    static var isAvailable: Bool {
        getuid() == 0
            && ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].contains {
                FileManager.default.isExecutableFile(atPath: $0)
            }
    }

    let tag: String
    let hosts: Int
    /// The producer's address, seen from the hosts.
    let bridgeAddress: String

    init(hosts: Int) throws {
        let letters = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        tag = "t" + String((0..<4).map { _ in letters.randomElement()! })
        self.hosts = hosts
        try Self.run(["up", "--name", tag, "--hosts", "\(hosts)"])
        do {
            bridgeAddress = try Self.run(["addr", "--name", tag, "--bridge"]).trimmingCharacters(
                in: .whitespacesAndNewlines)
        } catch {
            _ = try? Self.run(["down", "--name", tag])
            throw error
        }
    }

    /// Starts `arguments` (a program and its arguments) in the background inside `host` (1-based).
    @discardableResult
    func spawn(host: Int, log: URL, _ arguments: [String]) throws -> Int32 {
        let output = try Self.run(["spawn", "--name", tag, "--host", "\(host)", "--log", log.path, "--"] + arguments)
        return Int32(output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    func netem(host: Int, delayMilliseconds: Int) throws {
        try Self.run(["netem", "--name", tag, "--host", "\(host)", "--delay", "\(delayMilliseconds)"])
    }

    func cut(host: Int) throws { try Self.run(["cut", "--name", tag, "--host", "\(host)"]) }
    func restore(host: Int) throws { try Self.run(["restore", "--name", tag, "--host", "\(host)"]) }

    /// The root side of the bridge, where a capture sees every host's traffic.
    var bridgeInterface: String { "zb-\(tag)" }

    func down() { _ = try? Self.run(["down", "--name", tag, "--grace", "5"]) }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Runs the script and returns its stdout; throws with its stderr when it fails.
    @discardableResult
    static func run(_ arguments: [String]) throws -> String {
        // Files, not pipes: a process `spawn` starts in the background must not hold our read open.
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("cluster-\(UUID().uuidString)")
        let outURL = base.appendingPathExtension("out")
        let errURL = base.appendingPathExtension("err")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: outURL)
            try? FileManager.default.removeItem(at: errURL)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [script] + arguments
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        process.standardInput = FileHandle.nullDevice
        // A semaphore from the termination handler: `waitUntilExit` can miss a quick exit here.
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        try process.run()
        guard exited.wait(timeout: .now() + 120) == .success else {
            process.terminate()
            throw Failure(description: "cluster.sh \(arguments.joined(separator: " ")) did not finish in 120 s")
        }
        let out = (try? String(contentsOf: outURL, encoding: .utf8)) ?? ""
        guard process.terminationStatus == 0 else {
            let err = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
            throw Failure(
                description:
                    "cluster.sh \(arguments.joined(separator: " ")) exited \(process.terminationStatus): \(err)")
        }
        return out
    }
}

/// Several machines, simulated with network namespaces: workers on three "hosts", the producer
/// in the root namespace, links that get slow or break.
@Suite(
    "Many machines (network namespaces)", .serialized, .timeLimit(.minutes(4)),
    .enabled(if: NetnsCluster.isAvailable, "needs root and iproute2 to build network namespaces"))
struct NetworkTests {
    /// Starts a producer bound on the cluster's bridge (ports chosen by the system) and returns
    /// it with the endpoints workers connect to.
    static func startProducer(
        cluster: NetnsCluster, arguments: [String], in directory: URL
    ) throws -> (TestProcess, [String]) {
        let address = cluster.bridgeAddress
        let producer = try TestProcess(
            "producer",
            [
                "--tasks", "tcp://\(address):*", "--results", "tcp://\(address):*", "--events", "tcp://\(address):*",
                "--output", "jsonl", "--progress", "never",
            ] + arguments, in: directory)
        guard producer.waitForStderr(containing: "producer bound"),
            let bound = producer.stderr.firstMatch(of: /tasks (\S+), results (\S+), events (\S+)/)
        else {
            producer.stop()
            throw NetnsCluster.Failure(description: "producer did not bind: \(producer.stderr)")
        }
        return (producer, ["--tasks", String(bound.1), "--results", String(bound.2), "--events", String(bound.3)])
    }

    static var worker: String { TestProcess.binDirectory.appendingPathComponent("worker").path }

    /// Two worker processes on every host, named h1, h2, ... after their host.
    static func startWorkers(on cluster: NetnsCluster, endpoints: [String], logs directory: URL) throws {
        for host in 1...cluster.hosts {
            try cluster.spawn(
                host: host, log: directory.appendingPathComponent("h\(host).log"),
                [worker, "--processes", "2", "--host-name", "h\(host)"] + endpoints)
        }
    }

    /// Tasks done per host, from the producer's jsonl output; checks every id ended once, ok.
    static func perHost(_ outcomes: [OutcomeLine], expected count: Int) -> [String: Int] {
        #expect(outcomes.count == count, "one outcome per task")
        #expect(Set(outcomes.map(\.id)) == Set((1...count).map(UInt64.init)), "every task exactly once")
        #expect(outcomes.allSatisfy { $0.status == "ok" }, "\(outcomes.filter { $0.status != "ok" }.prefix(3))")
        return outcomes.reduce(into: [:]) { counts, outcome in counts[outcome.host ?? "?", default: 0] += 1 }
    }

    @Test("3 hosts with 2 worker processes each: 5,000 tasks end exactly once and every host worked")
    func threeHosts() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let cluster = try NetnsCluster(hosts: 3)
        defer { cluster.down() }
        let (producer, endpoints) = try Self.startProducer(
            cluster: cluster, arguments: ["--generate", "5000", "--wait-workers", "6"], in: directory)
        defer { producer.stop() }
        try Self.startWorkers(on: cluster, endpoints: endpoints, logs: directory)
        #expect(producer.waitForExit(timeout: 120) == 0, "\(producer.stderr)")
        let counts = Self.perHost(try parseOutcomes(producer.stdout), expected: 5000)
        #expect(Set(counts.keys) == ["h1", "h2", "h3"], "\(counts)")
        #expect(counts.values.allSatisfy { $0 > 0 })
    }

    @Test("40 ms of delay each way on one host's link: the run completes and that host does less of the work")
    func slowLink() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let cluster = try NetnsCluster(hosts: 3)
        defer { cluster.down() }
        // Windows are sized by round trip, so a slow host catches up once warm; what it loses is
        // the start (80 ms and more of a run of about half a second), which this delay makes plain.
        try cluster.netem(host: 3, delayMilliseconds: 40)
        let input = try writeTaskFile((1...3000).map { _ in #"{"task": "sleep", "args": {"ms": 1}}"# }, in: directory)
        let (producer, endpoints) = try Self.startProducer(
            cluster: cluster, arguments: ["--input", input.path, "--wait-workers", "6"], in: directory)
        defer { producer.stop() }
        try Self.startWorkers(on: cluster, endpoints: endpoints, logs: directory)
        #expect(producer.waitForExit(timeout: 120) == 0, "\(producer.stderr)")
        let counts = Self.perHost(try parseOutcomes(producer.stdout), expected: 3000)
        let slow = counts["h3", default: 0]
        let others = Double(counts["h1", default: 0] + counts["h2", default: 0]) / 2
        #expect(slow > 0, "the slow host still takes part: \(counts)")
        #expect(Double(slow) < others, "the slow host does less than the others' mean: \(counts)")
    }

    @Test("a host cut off for 5 s mid-run: its tasks go elsewhere and every task ends exactly once")
    func cutLink() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let cluster = try NetnsCluster(hosts: 3)
        defer { cluster.down() }
        let count = 12_000
        let input = try writeTaskFile((1...count).map { _ in #"{"task": "sleep", "args": {"ms": 2}}"# }, in: directory)
        let (producer, endpoints) = try Self.startProducer(
            cluster: cluster, arguments: ["--input", input.path, "--wait-workers", "6"], in: directory)
        defer { producer.stop() }
        try Self.startWorkers(on: cluster, endpoints: endpoints, logs: directory)
        #expect(producer.waitForStdout(lines: 1_500), "the run got going")
        try cluster.cut(host: 2)
        let cutAt = producer.stdout.utf8.count(where: { $0 == UInt8(ascii: "\n") })
        // The scenario: the link stays down for 5 s, then comes back.
        Thread.sleep(forTimeInterval: 5)
        let duringCut = producer.stdout.utf8.count(where: { $0 == UInt8(ascii: "\n") }) - cutAt
        try cluster.restore(host: 2)
        #expect(producer.waitForExit(timeout: 120) == 0, "\(producer.stderr)")
        #expect(duringCut > 1_000, "the other hosts kept working while h2 was cut off (\(duringCut) results)")
        let counts = Self.perHost(try parseOutcomes(producer.stdout), expected: count)
        #expect(Set(counts.keys) == ["h1", "h2", "h3"], "\(counts)")
        #expect(producer.stderr.contains("sent again"), "h2's tasks were sent again: \(producer.stderr)")
    }

    @Test("CURVE over a real link: a capture on the bridge sees the task payload in plaintext, never with CURVE")
    func captureShowsNoPlaintext() throws {
        let tcpdump = ["/usr/bin/tcpdump", "/usr/sbin/tcpdump"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
        try #require(tcpdump != nil, "tcpdump is needed (scripts/setup.sh installs it)")
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let cluster = try NetnsCluster(hosts: 1)
        defer { cluster.down() }
        _ = try SecurityTests.keygen("producer", in: directory)
        _ = try SecurityTests.keygen("worker", in: directory)
        let marker = "zwp-marker-\(UUID().uuidString.prefix(8))"
        let input = try writeTaskFile(
            (1...200).map { #"{"task": "multiply", "args": {"a": \#($0), "b": 2, "note": "\#(marker)"}}"# },
            in: directory)

        /// Runs the pool once under a capture and returns what the capture holds.
        func capturedRun(curve: Bool) throws -> Data {
            let capture = directory.appendingPathComponent("capture-\(curve).pcap")
            let dump = try TestProcess(
                tcpdump!, ["-i", cluster.bridgeInterface, "-U", "-w", capture.path, "tcp"], in: directory)
            defer { dump.stop() }
            #expect(dump.waitForStderr(containing: "listening on"), "\(dump.stderr)")
            let path = { (name: String) in directory.appendingPathComponent(name).path }
            let producerKeys = curve ? ["--curve-key", path("producer.key"), "--curve-allow", path("worker.pub")] : []
            let workerKeys =
                curve ? ["--curve-key", path("worker.key"), "--curve-server-key", path("producer.pub")] : []
            let (producer, endpoints) = try Self.startProducer(
                cluster: cluster, arguments: ["--input", input.path, "--wait-workers", "1"] + producerKeys,
                in: directory)
            defer { producer.stop() }
            try cluster.spawn(
                host: 1, log: directory.appendingPathComponent("worker-\(curve).log"),
                [Self.worker, "--host-name", "h1"] + endpoints + workerKeys)
            #expect(producer.waitForExit(timeout: 60) == 0, "\(producer.stderr)")
            _ = Self.perHost(try parseOutcomes(producer.stdout), expected: 200)
            dump.stop()
            return try Data(contentsOf: capture)
        }

        let plain = try capturedRun(curve: false)
        #expect(plain.range(of: Data(marker.utf8)) != nil, "the capture works: plaintext shows the payload")
        let encrypted = try capturedRun(curve: true)
        #expect(encrypted.count > 10_000, "the CURVE run was captured too (\(encrypted.count) bytes)")
        #expect(encrypted.range(of: Data(marker.utf8)) == nil, "no task payload in clear with CURVE")
        #expect(encrypted.range(of: Data("multiply".utf8)) == nil, "not even the task name")
    }
}
