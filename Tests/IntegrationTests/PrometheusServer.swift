import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A real Prometheus (Debian's `prometheus` package) on loopback, scraping the given targets
/// every 200 ms into a storage directory of its own. `stop()` ends it.
final class PrometheusServer {
    let process: TestProcess
    let port: UInt16
    var baseURL: String { "http://127.0.0.1:\(port)" }

    static var binary: String? {
        ["/usr/bin/prometheus", "/usr/local/bin/prometheus"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// - Parameter jobs: job name to `host:port` targets.
    init(jobs: [String: [String]], in directory: URL) throws {
        guard let binary = Self.binary else { throw TestFailure("prometheus is not installed (scripts/setup.sh)") }
        var config = "global:\n  scrape_interval: 200ms\n  scrape_timeout: 200ms\nscrape_configs:\n"
        for (job, targets) in jobs.sorted(by: { $0.key < $1.key }) {
            config +=
                "  - job_name: \(job)\n    static_configs:\n      - targets: [\(targets.map { "'\($0)'" }.joined(separator: ", "))]\n"
        }
        let configURL = directory.appendingPathComponent("prometheus.yml")
        try config.write(to: configURL, atomically: true, encoding: .utf8)
        port = try freeLoopbackPort()
        process = try TestProcess(
            binary,
            [
                "--config.file=\(configURL.path)",
                "--storage.tsdb.path=\(directory.appendingPathComponent("tsdb").path)",
                "--web.listen-address=127.0.0.1:\(port)", "--log.level=warn",
            ], in: directory)
    }

    func stop() { process.stop() }

    /// Waits until Prometheus answers `/-/ready`.
    func waitUntilReady(timeout: Double = 30) -> Bool {
        waitFor(timeout: timeout) { httpGet("\(baseURL)/-/ready")?.status == 200 }
    }

    /// An instant query's vector: each sample's labels and value.
    func query(_ expression: String) -> [(labels: [String: String], value: Double)]? {
        var components = URLComponents(string: "\(baseURL)/api/v1/query")!
        components.queryItems = [URLQueryItem(name: "query", value: expression)]
        guard let url = components.url?.absoluteString, let (status, body) = httpGet(url), status == 200,
            let json = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
            let data = json["data"] as? [String: Any], let result = data["result"] as? [[String: Any]]
        else { return nil }
        return result.compactMap { sample in
            guard let labels = sample["metric"] as? [String: String], let pair = sample["value"] as? [Any],
                pair.count == 2, let text = pair[1] as? String, let value = Double(text)
            else { return nil }
            return (labels, value)
        }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A port free on 127.0.0.1 now (for a program that cannot be told to pick its own and say which).
func freeLoopbackPort() throws -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket: \(errno)") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
        }
    }
    guard bound else { throw TestFailure("bind: \(errno)") }
    return UInt16(bigEndian: address.sin_port)
}

/// A GET with a 5 s timeout: status and body, or nil when nothing answered.
func httpGet(_ url: String) -> (status: Int, body: Data)? {
    guard let url = URL(string: url) else { return nil }
    var request = URLRequest(url: url)
    request.timeoutInterval = 5
    let done = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var answer: (Int, Data)?
    URLSession.shared.dataTask(with: request) { data, response, _ in
        if let response = response as? HTTPURLResponse { answer = (response.statusCode, data ?? Data()) }
        done.signal()
    }.resume()
    guard done.wait(timeout: .now() + 10) == .success else { return nil }
    return answer
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes.
func waitFor(timeout: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date(timeIntervalSinceNow: timeout)
    while Date() < deadline {
        if condition() { return true }
        usleep(50_000)
    }
    return condition()
}
