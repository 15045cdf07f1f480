import Foundation
import Testing
import WorkerPool

/// `producer exec` across network-namespace hosts, as `parallel --sshlogin` across machines.
@Suite(
    "Running programs on many machines (network namespaces)", .serialized, .timeLimit(.minutes(3)),
    .enabled(if: NetnsCluster.isAvailable, "needs root and iproute2 to build network namespaces"))
struct ExecNetworkTests {
    @Test("the same jobs on 3 hosts over CURVE, one host's worker killed mid-run: every job ends exactly once")
    func threeHostsOneKilled() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let cluster = try NetnsCluster(hosts: 3)
        defer { cluster.down() }
        _ = try SecurityTests.keygen("producer", in: directory)
        _ = try SecurityTests.keygen("worker", in: directory)
        let path = { (name: String) in directory.appendingPathComponent(name).path }
        let count = 600
        let input = directory.appendingPathComponent("lines.txt")
        try writeLines((1...count).map { "line-\($0)" }, to: input)
        let address = cluster.bridgeAddress
        let producer = try TestProcess(
            "producer",
            [
                "--tasks", "tcp://\(address):*", "--results", "tcp://\(address):*", "--events", "tcp://\(address):*",
                "--input", input.path, "--output", "jsonl", "--progress", "never", "--wait-workers", "6",
                "--curve-key", path("producer.key"), "--curve-allow", path("worker.pub"),
                "exec", "--", "sh", "-c", "sleep 0.02; echo $1 $2", "sh", "{#}", "{}",
            ], in: directory)
        defer { producer.stop() }
        guard producer.waitForStderr(containing: "producer bound"),
            let bound = producer.stderr.firstMatch(of: /tasks (\S+), results (\S+), events (\S+)/)
        else {
            Issue.record("producer did not bind: \(producer.stderr)")
            return
        }
        let endpoints = ["--tasks", String(bound.1), "--results", String(bound.2), "--events", String(bound.3)]
        var supervisors: [Int: Int32] = [:]
        for host in 1...3 {
            // No --allow-exec-insecure: over tcp to another host, exec needs CURVE, and has it.
            supervisors[host] = try cluster.spawn(
                host: host, log: directory.appendingPathComponent("h\(host).log"),
                [
                    NetworkTests.worker, "--processes", "2", "--host-name", "h\(host)", "--allow-exec",
                    "--curve-key", path("worker.key"), "--curve-server-key", path("producer.pub"),
                ] + endpoints)
        }
        #expect(producer.waitForStdout(lines: 150, timeout: 60), "the run got going: \(producer.stderr)")
        // The whole worker on h2, supervisor and processes, dies at once (a machine lost).
        let children = producer.stderr.matches(of: /joined from h2 \(pid (\d+)/).compactMap { Int32($0.1) }
        #expect(children.count == 2, "\(producer.stderr)")
        for pid in children + [supervisors[2] ?? -1] where pid > 0 { kill(pid, SIGKILL) }
        #expect(producer.waitForExit(timeout: 120) == 0, "\(producer.stderr)")
        let jobs = try ExecLine.parse(producer.stdout)
        #expect(jobs.count == count, "one outcome per job")
        #expect(Set(jobs.map(\.job)) == Set(1...UInt64(count)), "every job exactly once")
        #expect(jobs.allSatisfy { $0.status == "ok" && $0.stdout == "\($0.job) line-\($0.job)\n" })
        #expect(producer.stderr.contains("sent again"), "h2's jobs went to the other hosts: \(producer.stderr)")
        let hosts = Set(producer.stdout.matches(of: /"host":"(h\d)"/).map { String($0.1) })
        #expect(hosts == ["h1", "h2", "h3"], "every host ran jobs: \(hosts)")
    }
}
