import ArgumentParser
import Logging

/// `--metrics` and `--metrics-linger`, shared by `producer` and `worker`.
struct MetricsOptions: ParsableArguments {
    @Option(
        name: .customLong("metrics"),
        help: ArgumentHelp(
            "Serve Prometheus metrics at http://ADDRESS:PORT/metrics (off by default).",
            discussion: "127.0.0.1:0 picks a free port and logs it; 0.0.0.0:9464 serves every interface.",
            valueName: "address:port"))
    var address: String?

    @Option(
        help: ArgumentHelp(
            "With --metrics: after the end, keep serving until one scrape has read the final figures, at most this many seconds.",
            discussion: "So a Prometheus scraping every few seconds sees how a short run ended."))
    var metricsLinger: Double = 0

    func validate() throws {
        if let address, MetricsAddress(address) == nil {
            throw ValidationError("--metrics '\(address)' must be ADDRESS:PORT, e.g. 127.0.0.1:0 or [::1]:9464")
        }
        guard metricsLinger >= 0, metricsLinger <= 3_600 else {
            throw ValidationError("--metrics-linger must be 0-3600 seconds")
        }
    }

    /// Starts the server when asked for, logging where it listens.
    func start(logger: Logger) throws -> MetricsServer? {
        guard let text = address, let address = MetricsAddress(text) else { return nil }
        do {
            let server = try MetricsServer.start(address)
            logger.info("metrics on \(server.url)")
            return server
        } catch let error as MetricsServerError {
            logger.critical("\(error)")
            throw ExitCode(2)
        }
    }

    /// The run is over: serve the final figures for up to --metrics-linger, then stop.
    func finish(_ server: MetricsServer?, logger: Logger) {
        guard let server else { return }
        if metricsLinger > 0 {
            logger.debug("metrics: waiting up to \(metricsLinger) s for a scrape of the final figures")
            if !server.linger(seconds: metricsLinger) {
                logger.info("metrics: no scrape of the final figures within --metrics-linger \(metricsLinger) s")
            }
        }
        server.stop()
    }
}
