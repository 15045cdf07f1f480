import Foundation
import WorkerPool

/// Simulated hosts from `deploy/netns/cluster.sh`: one network namespace per host on a bridge
/// in this namespace. The producer binds on the bridge's address; each worker process runs
/// in a host of its own (`worker --processes 1` in hosts h1..hP).
final class NetnsCluster: @unchecked Sendable {
    let script: String
    let tag: String
    let hosts: Int
    private(set) var bridgeAddress = ""
    private(set) var isUp = false
    private(set) var addedRTTMs: Double = 0

    init(script: String, hosts: Int) {
        self.script = script
        self.hosts = hosts
        // 1-5 characters [a-z0-9]; the pid keeps two benchmarks apart.
        tag = "bn\(getpid() % 1000)"
    }

    /// Why the mode cannot run here, or nil.
    static func unavailableReason(script: String) -> String? {
        if getuid() != 0 { return "netns needs root (network namespaces, veth links, tc); run as root or with sudo" }
        if !FileManager.default.isExecutableFile(atPath: script) { return "no executable \(script)" }
        if Command.which("ip") == nil { return "'ip' (iproute2) is not installed" }
        return nil
    }

    private func call(_ arguments: [String]) throws -> String {
        let output = try Command.run(script, arguments, captureStderr: true)
        guard output.ok else {
            throw BenchError(
                "cluster.sh \(arguments.prefix(3).joined(separator: " ")) failed (\(output.status)): "
                    + output.stderr.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return output.stdout
    }

    func up() throws {
        // A cluster left by an earlier benchmark with this pid's tag.
        _ = try? Command.run(script, ["down", "--name", tag], captureStderr: true)
        isUp = true
        _ = try call(["up", "--name", tag, "--hosts", "\(hosts)"])
        bridgeAddress = try call(["addr", "--name", tag, "--bridge"]).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !bridgeAddress.isEmpty else { throw BenchError("cluster.sh addr printed no bridge address") }
    }

    /// Adds `rttMs` of round-trip time to every host: netem delays each direction by half
    /// (cluster.sh's `--delay MS` applies MS to every packet to and from the host).
    func setAddedRTT(_ rttMs: Double) throws {
        guard rttMs != addedRTTMs else { return }
        for host in 1...hosts {
            if rttMs > 0 {
                _ = try call(["netem", "--name", tag, "--host", "\(host)", "--delay", Report.number(rttMs / 2)])
            } else {
                _ = try call(["netem", "--name", tag, "--host", "\(host)", "--clear"])
            }
        }
        addedRTTMs = rttMs
    }

    /// Starts `command` in host `host`; returns its pid (the process itself: cluster.sh execs
    /// it through `ip netns exec` and `setsid`).
    func spawn(host: Int, log: String, command: [String]) throws -> pid_t {
        let text = try call(["spawn", "--name", tag, "--host", "\(host)", "--log", log, "--"] + command)
        guard let pid = text.split(whereSeparator: \.isWhitespace).last.flatMap({ pid_t($0) }) else {
            throw BenchError("cluster.sh spawn printed no pid: \(text)")
        }
        return pid
    }

    /// Tears the cluster down (stops what spawn started); safe to call twice.
    func down() {
        guard isUp else { return }
        isUp = false
        do {
            let output = try Command.run(script, ["down", "--name", tag], captureStderr: true)
            if !output.ok {
                Log.line(
                    "bench: cluster.sh down --name \(tag) exited with \(output.status): "
                        + output.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
                        + " (check `ip netns list` and /run/zwp-netns/\(tag))")
            }
        } catch {
            Log.line("bench: cluster.sh down --name \(tag) could not run: \(error)")
        }
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
