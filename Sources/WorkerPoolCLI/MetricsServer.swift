import Dispatch
import FlyingFox
import FlyingSocks
import Foundation
import Metrics
import Prometheus
import Synchronization
import WorkerPool

/// Serves the process's metrics in the Prometheus text format at `/metrics`, over FlyingFox (a
/// small HTTP server on Swift concurrency and its own epoll thread, nowhere near the dispatch
/// thread). Starting one bootstraps swift-metrics with swift-prometheus for the whole process.
final class MetricsServer: Sendable {
    /// Where it listens, the port resolved once listening (`127.0.0.1:0` picks one).
    let host: String
    var port: UInt16 { boundPort.load(ordering: .acquiring) }
    private let boundPort = Atomic<UInt16>(0)
    private let server: HTTPServer
    private let registry: PrometheusCollectorRegistry
    private let scrapes = Mutex(Scrapes())
    private let scraped = DispatchSemaphore(value: 0)
    private let startFailure = Mutex<String?>(nil)

    private struct Scrapes {
        var count = 0
        /// Set at the end of the run: scrapes from then on read the final figures.
        var final = false
        var afterFinal = 0
    }

    var url: String { "http://\(host.contains(":") ? "[\(host)]" : host):\(port)/metrics" }

    /// Binds `address` and serves until ``stop()``; throws ``MetricsServerError`` when it cannot.
    static func start(_ address: MetricsAddress) throws -> MetricsServer {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // The same bounds as the pool's own histograms, so each bucket holds exactly its count.
        factory.defaultDurationHistogramBuckets = PoolMetricNames.durationBucketsSeconds.map {
            .nanoseconds(Int64(($0 * 1e9).rounded()))
        }
        MetricsSystem.bootstrap(factory)
        // FlyingFox's default logger prints to stdout, where results go.
        let server: HTTPServer
        do {
            if address.host.contains(":") {
                server = HTTPServer(
                    address: try sockaddr_in6.inet6(ip6: address.host, port: address.port),
                    logger: DisabledLogger.disabled)
            } else {
                server = HTTPServer(
                    address: try sockaddr_in.inet(ip4: address.host, port: address.port),
                    logger: DisabledLogger.disabled)
            }
        } catch {
            throw MetricsServerError("--metrics \(address): not an IP address and port (\(error))")
        }
        let metrics = MetricsServer(server: server, registry: registry, host: address.host)
        try metrics.listen()
        return metrics
    }

    private init(server: HTTPServer, registry: PrometheusCollectorRegistry, host: String) {
        self.server = server
        self.registry = registry
        self.host = host
    }

    /// The body of one scrape.
    private func scrape() -> HTTPResponse {
        // Marked before the figures are read: a scrape counted after the end reads them all.
        let afterFinal = scrapes.withLock { state -> Bool in
            state.count += 1
            if state.final { state.afterFinal += 1 }
            return state.final
        }
        let body = Data(Self.withHelp(registry.emitToBuffer()))
        if afterFinal { scraped.signal() }
        return HTTPResponse(
            statusCode: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"], body: body)
    }

    /// The pool's help text for each metric, by name.
    private static let help: [String: String] = Dictionary(
        (PoolMetricNames.producer + PoolMetricNames.worker).map { ($0.name, $0.help) }, uniquingKeysWith: { a, _ in a })

    /// The exposition with a `# HELP` line before each metric's `# TYPE` line: swift-metrics has
    /// no place for help text, so swift-prometheus writes none, and Prometheus' lint wants it.
    static func withHelp(_ exposition: [UInt8]) -> [UInt8] {
        var annotated: [UInt8] = []
        annotated.reserveCapacity(exposition.count + 8_192)
        for line in exposition.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            if line.starts(with: "# TYPE ".utf8) {
                let name = String(decoding: line.dropFirst(7).prefix(while: { $0 != UInt8(ascii: " ") }), as: UTF8.self)
                if let help = help[name] { annotated += Array("# HELP \(name) \(help)\n".utf8) }
            }
            annotated += line
            annotated.append(UInt8(ascii: "\n"))
        }
        if exposition.last == UInt8(ascii: "\n") || exposition.isEmpty { annotated.removeLast() }
        return annotated
    }

    /// Starts serving and waits until the socket listens (or failed to).
    private func listen() throws {
        let done = DispatchSemaphore(value: 0)
        Task.detached { [self] in
            await server.appendRoute("GET /metrics") { [self] _ in scrape() }
            Task.detached { [self] in
                do {
                    try await server.run()
                } catch {
                    startFailure.withLock { $0 = $0 ?? "\(error)" }
                    done.signal()
                }
            }
            do {
                try await server.waitUntilListening(timeout: 10)
                switch await server.listeningAddress {
                case .ip4(_, let port), .ip6(_, let port): boundPort.store(port, ordering: .releasing)
                default: startFailure.withLock { $0 = $0 ?? "it listens on no IP address" }
                }
            } catch {
                startFailure.withLock { $0 = $0 ?? "\(error)" }
            }
            done.signal()
        }
        done.wait()
        if let failure = startFailure.withLock({ $0 }) {
            throw MetricsServerError("cannot serve metrics on \(host): \(failure)")
        }
    }

    /// After the run's last figures were published: serves until one scrape has read them, at
    /// most `seconds`, so a Prometheus scraping every few seconds still sees how the run ended.
    /// Returns whether a scrape came.
    @discardableResult
    func linger(seconds: Double) -> Bool {
        scrapes.withLock { $0.final = true }
        guard seconds > 0 else { return false }
        let deadline = DispatchTime.now() + seconds
        while scrapes.withLock({ $0.afterFinal }) == 0 {
            if scraped.wait(timeout: deadline) == .timedOut { return false }
        }
        return true
    }

    /// Stops serving: a response being written is finished, idle connections are closed.
    func stop() {
        let server = self.server
        let done = DispatchSemaphore(value: 0)
        Task.detached {
            await server.stop(timeout: 2)
            done.signal()
        }
        done.wait()
    }
}

/// `--metrics` could not be served.
struct MetricsServerError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// `HOST:PORT` for `--metrics`: an IPv4 address, or an IPv6 one in brackets; port 0 picks one.
struct MetricsAddress: Sendable, CustomStringConvertible {
    var host: String
    var port: UInt16

    init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else {
            return nil
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        self.host = host
        self.port = port
    }

    var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
