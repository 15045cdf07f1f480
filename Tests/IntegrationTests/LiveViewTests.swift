import Foundation
import Testing
import WorkerPool

/// `producer --progress full` in a real terminal: tmux runs it in a detached session of a fixed
/// size, and the test reads the screen with `capture-pane`.
@Suite("Live view", .serialized, .timeLimit(.minutes(2)))
struct LiveViewTests {
    static let tmuxPath = ["/usr/bin/tmux", "/usr/local/bin/tmux", "/bin/tmux"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    /// A tmux server of this test's own (its socket in the test's directory), ended in `defer`
    /// with `kill-server`.
    struct Terminal {
        let path: String
        let directory: URL
        var socket: String { directory.appendingPathComponent("tmux.socket").path }

        /// Runs a tmux command and returns what it printed. Through `posix_spawn` with a clean
        /// signal mask and default handlers: the tmux server inherits them, and with the test
        /// runner's it would not leave on `kill-server`. Output goes through a file, which the
        /// server (forked by `new-session`) may keep open without making anyone wait.
        @discardableResult
        func run(_ arguments: [String]) throws -> String {
            let output = directory.appendingPathComponent("tmux-\(UUID().uuidString.prefix(8)).out")
            let fd = open(output.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw POSIXError(.EIO) }
            let null = open("/dev/null", O_WRONLY | O_CLOEXEC)
            defer {
                close(fd)
                close(null)
                try? FileManager.default.removeItem(at: output)
            }
            let child = try ChildProcess.spawn(
                executable: path, arguments: ["-S", socket] + arguments, inherit: [(fd, 1), (null, 2)])
            _ = child.wait()
            return (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        }

        /// The screen, wrapped lines joined (a line wider than the window shows as one).
        func screen() -> [String] {
            let text = (try? run(["capture-pane", "-p", "-J", "-t", "view"])) ?? ""
            var lines = text.components(separatedBy: "\n")
            while lines.last?.isEmpty == true { lines.removeLast() }
            return lines
        }

        func value(_ format: String) -> String {
            ((try? run(["display-message", "-p", "-t", "view", format])) ?? "").trimmingCharacters(
                in: .whitespacesAndNewlines)
        }

        /// Polls the screen until `condition` holds; returns the last screen and whether it held.
        func waitFor(timeout: Double = 30, _ condition: ([String]) -> Bool) -> (screen: [String], held: Bool) {
            let deadline = Date(timeIntervalSinceNow: timeout)
            var lines = screen()
            while !condition(lines) {
                guard Date() < deadline else { return (lines, false) }
                usleep(50_000)
                lines = screen()
            }
            return (lines, true)
        }

        func stop() { _ = try? run(["kill-server"]) }
    }

    /// The panel's row for each worker on `screen` (name → its row).
    static func rows(_ screen: [String]) -> [String: [String]] {
        Dictionary(grouping: screen.filter { $0.wholeMatch(of: /Worker-\d+ +\S+( +\d+){5,6} +\S+.*/) != nil }) {
            String($0.prefix { $0 != " " })
        }
    }

    static func panelShown(_ screen: [String], workers: Int) -> Bool {
        screen.filter { $0.hasPrefix("worker ") && $0.contains("restarts") && $0.contains("seen") }.count == 1
            && screen.contains { $0.hasPrefix("done ") } && screen.contains { $0.hasPrefix("rate ") }
            && (1...workers).allSatisfy { rows(screen)["Worker-\($0)"]?.count == 1 }
    }

    @Test(
        "a panel with a row per worker, redrawn in place; at 60 columns it still fits; USR1 prints the table above it; at the end the summary"
    )
    func panelInTmux() throws {
        guard let path = Self.tmuxPath else {
            // CI installs tmux (scripts/setup.sh as root); a developer without it skips this.
            if ProcessInfo.processInfo.environment["CI"] != nil { Issue.record("tmux is not installed") }
            return
        }
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = try writeTaskFile(
            (1...60).map { _ in #"{"task": "sleep", "args": {"ms": 300}}"# }, in: directory)
        let poolLog = directory.appendingPathComponent("pool.jsonl")
        let producer = TestProcess.binDirectory.appendingPathComponent("producer").path
        let command =
            [
                producer, "--ipc", directory.path, "--input", input.path, "--local-workers", "3", "--progress", "full",
                "--log-level", "warning", "--pool-log", poolLog.path,
            ].map { "'\($0)'" }.joined(separator: " ")
            // The pane's shell says how the producer ended, then waits (on the terminal) until
            // the server is killed, so the last screen stays readable.
            + "; echo \"exit status $?\"; exec cat"
        let terminal = Terminal(path: path, directory: directory)
        defer { terminal.stop() }
        try terminal.run(
            ["-f", "/dev/null", "new-session", "-d", "-s", "view", "-x", "80", "-y", "30", command],
        )

        // Running at 80 columns: one panel, one row per worker, each with its numbers.
        let running = terminal.waitFor { Self.panelShown($0, workers: 3) }
        #expect(running.held, "the panel with 3 rows: \(running.screen.joined(separator: "\n"))")
        #expect(running.screen.allSatisfy { $0.count <= 80 })
        #expect(terminal.value("#{cursor_flag}") == "0", "the cursor is hidden while the panel is up")
        // Results scroll above it; the panel is drawn once, not left behind in copies.
        let later = terminal.waitFor {
            Self.panelShown($0, workers: 3) && $0.filter { $0.hasPrefix("Result: slept 300 ms") }.count >= 6
        }
        #expect(later.held, "\(later.screen.joined(separator: "\n"))")
        #expect(later.screen.filter { $0.hasPrefix("rate ") }.count == 1)

        // Narrowed to 60 columns: redrawn to fit, rows still there.
        try terminal.run(["resize-window", "-t", "view", "-x", "60", "-y", "30"])
        let narrow = terminal.waitFor {
            Self.panelShown($0, workers: 3) && $0.allSatisfy { $0.count <= 60 }
        }
        #expect(narrow.held, "at 60 columns: \(narrow.screen.map { "\($0.count): \($0)" }.joined(separator: "\n"))")
        #expect(terminal.value("#{window_width}") == "60")

        // USR1: the worker table above the panel, the panel still below it.
        let lines = try PoolLogTests.lines(of: poolLog)
        let pid = try #require(lines.first?["pid"] as? Int)
        kill(Int32(pid), SIGUSR1)
        let table = terminal.waitFor {
            $0.contains { $0.hasPrefix("worker     host") && $0.contains("state") } && Self.panelShown($0, workers: 3)
        }
        #expect(table.held, "\(table.screen.joined(separator: "\n"))")

        // The end: the panel is gone, the summary and the table are there, the cursor is back.
        let ended = terminal.waitFor { $0.contains { $0.hasPrefix("Summary: 60 tasks, 0 failed") } }
        #expect(ended.held, "\(ended.screen.joined(separator: "\n"))")
        #expect(!ended.screen.contains { $0.hasPrefix("rate ") }, "the panel was erased")
        for name in ["Worker-1", "Worker-2", "Worker-3"] {
            #expect(ended.screen.contains { $0.hasPrefix(name) && $0.hasSuffix("left") }, "\(name) in the final table")
        }
        #expect(terminal.waitFor(timeout: 10) { $0.contains("exit status 0") }.held)
        #expect(terminal.value("#{cursor_flag}") == "1", "the cursor is shown again")
    }

    @Test("--progress full with stderr piped prints no panel and no escape codes: the output of a plain run")
    func pipedStaysPlain() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let producer = try TestProcess(
            "producer", ["--ipc", directory.path, "--demo", "--local-workers", "2", "--progress", "full"], in: directory
        )
        defer { producer.stop() }
        #expect(producer.waitForExit() == 0, "\(producer.stderr)")
        #expect(!producer.stderr.contains("\u{1B}"), "no terminal codes in a pipe")
        #expect(!producer.stderr.contains("rate "))
        #expect(producer.stderr.contains("Summary: 10 tasks, 0 failed"))
        #expect(producer.stdout.split(separator: "\n").count == 10)
    }
}
