import Testing

@testable import WorkerPool
@testable import WorkerPoolCLI

/// The live view's text, from a run's progress and a width: what `--progress full` draws.
@Suite("Live panel")
struct LivePanelTests {
    static let now = PoolTime.milliseconds(60_000)

    static func worker(
        _ name: String, host: String = "vm", pid: UInt32, done: UInt64 = 10, state: String = "running",
        seenAgo: Int = 300, restarts: UInt32 = 0, running: Int = 1, threads: UInt16 = 1
    ) -> WorkerSummary {
        WorkerSummary(
            name: name, host: host, pid: pid, tasksDone: done, tasksFailed: 1, restarts: restarts, state: state,
            threads: threads, running: running,
            lastSeen: PoolTime(nanoseconds: now.nanoseconds - UInt64(seenAgo) * 1_000_000))
    }

    static func progress(_ rows: [WorkerSummary], finished: Bool = true) -> RunProgress {
        RunProgress(
            submitted: 4_000, succeeded: 1_830, failed: 10, inFlight: 12, workers: rows.count { $0.state == "running" },
            inputFinished: finished, elapsedSeconds: 3.04, workerRows: rows, time: now)
    }

    @Test("80 columns: totals, rate and ETA, a header, and one row per worker with every column")
    func fullWidth() {
        let rows = [
            Self.worker("Worker-2", pid: 4243, done: 900, restarts: 2, threads: 4),
            Self.worker("Worker-1", pid: 4242, done: 940, seenAgo: 12_000),
        ]
        let lines = LivePanel.render(Self.progress(rows), rate: 612.4, width: 80, maxWorkerRows: 10)
        #expect(lines[0] == "done 1840/4000  failed 10  in flight 12  workers 2")
        #expect(lines[1] == "rate 612/s  ETA 3.5 s  elapsed 3.0 s")
        #expect(lines[2] == "worker   host  pid thr run done failed restarts  seen state")
        #expect(lines[3] == "Worker-1 vm   4242   1   1  940      1        0   12s running")
        #expect(lines[4] == "Worker-2 vm   4243   4   1  900      1        2  0.3s running")
        #expect(lines.count == 5)
        #expect(lines.allSatisfy { $0.count <= 80 })
    }

    @Test("narrower terminals drop the pid and state, then shrink the host; nothing is wider than asked")
    func narrow() {
        let rows = [
            Self.worker("Worker-1", host: "worker-host-with-a-long-name.example.org", pid: 4_194_303),
            Self.worker("Worker-2", host: "b", pid: 2, state: "lost"),
        ]
        for width in [80, 60, 50, 40, 30, 20, 8] {
            let lines = LivePanel.render(Self.progress(rows), rate: 10, width: width, maxWorkerRows: 10)
            #expect(lines.allSatisfy { $0.count <= width }, "width \(width): \(lines)")
            #expect(lines.count == 5, "every row is still there at \(width)")
        }
        let sixty = LivePanel.render(Self.progress(rows), rate: 10, width: 60, maxWorkerRows: 10)
        #expect(!sixty[2].contains("pid") && sixty[2].contains("restarts") && sixty[2].contains("seen"))
        #expect(sixty[3].hasPrefix("Worker-1 worker-host-wit… "), "\(sixty[3])")
        let eighty = LivePanel.render(Self.progress(rows), rate: 10, width: 80, maxWorkerRows: 10)
        #expect(eighty[2].contains("pid") && eighty[2].contains("state"), "everything fits at 80 with a long host")
        let forty = LivePanel.render(Self.progress(rows), rate: 10, width: 40, maxWorkerRows: 10)
        #expect(forty[3].hasPrefix("Worke… wor… "), "host and name down to their minimum: \(forty[3])")
    }

    @Test("many workers: the running ones first, a bounded number of rows, and a line counting the rest")
    func manyWorkers() {
        var rows = (1...30).map { Self.worker("Worker-\($0)", host: "h\($0 % 3)", pid: UInt32($0)) }
        rows += (31...35).map { Self.worker("Worker-\($0)", pid: UInt32($0), state: "lost") }
        rows.append(Self.worker("Worker-36", pid: 36, state: "left"))
        let lines = LivePanel.render(Self.progress(rows), rate: 10, width: 80, maxWorkerRows: 8)
        #expect(lines.count == 2 + 1 + 8 + 1)
        #expect(lines[3].hasPrefix("Worker-12 h0"), "sorted by host, then name")
        #expect(lines.last == "+28 more (22 running, 1 left, 5 lost)")
        #expect(lines[3...10].allSatisfy { $0.hasSuffix("running") })
    }

    @Test("the pace line says when it waits for workers, and gives no ETA while input still comes")
    func pace() {
        var waiting = Self.progress([])
        waiting.workers = 0
        #expect(LivePanel.render(waiting, rate: 0, width: 80, maxWorkerRows: 5)[1].contains("waiting for workers"))
        let streaming = Self.progress([Self.worker("W", pid: 1)], finished: false)
        let lines = LivePanel.render(streaming, rate: 50, width: 80, maxWorkerRows: 5)
        #expect(lines[0].hasPrefix("done 1840/4000+"))
        #expect(!lines[1].contains("ETA"))
        #expect(LivePanel.duration(75) == "1 m 15 s" && LivePanel.duration(7_300) == "2 h 01 m")
        #expect(LivePanel.age(0.25) == "0.2s" && LivePanel.age(45) == "45s" && LivePanel.age(600) == "10m")
    }

    @Test("the rate is taken over the last seconds, not the whole run")
    func rateWindow() {
        var window = RateWindow()
        window.add(elapsed: 0, ended: 0)
        window.add(elapsed: 10, ended: 10_000)  // a fast start...
        window.add(elapsed: 14, ended: 10_400)
        #expect(window.perSecond(elapsed: 14, ended: 10_400) == 100, "...then 100/s over the last 4 s")
        var young = RateWindow()
        young.add(elapsed: 0.5, ended: 50)
        #expect(young.perSecond(elapsed: 0.5, ended: 50) == 100, "under a second: the whole run's rate")
    }
}
