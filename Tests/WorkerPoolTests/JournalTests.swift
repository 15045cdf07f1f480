import Foundation
import Synchronization
import Testing

@testable import WorkerPool

@Suite("Journal", .timeLimit(.minutes(3)))
struct JournalTests {
    static func task(_ a: Int) -> SourceItem {
        .task(name: "multiply", payload: Array(#"{"a":\#(a),"b":2}"#.utf8))
    }

    static func outcome(_ id: UInt64, _ item: SourceItem, status: ResultStatus = .ok) -> TaskOutcome {
        TaskOutcome(
            id: id, name: "multiply", status: status, payloadStorage: Array(#""ok""#.utf8), runMicroseconds: 1,
            digest: TaskDigest(of: item))
    }

    /// A journal file in a fresh directory, removed by the caller.
    static func temporaryPath() throws -> (directory: URL, path: String) {
        let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent(
            "journal-tests-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return (directory, directory.appendingPathComponent("journal.jsonl").path)
    }

    @Test("a task's digest is pinned, ignores JSON whitespace, and tells name, args, time limit and reasons apart")
    func digestStability() {
        let plain = TaskDigest(of: .task(name: "multiply", payload: Array(#"{"a":3,"b":3}"#.utf8)))
        // Pinned (SHA-256 of 0x01, len u64le, "multiply", 0x02, len, args; checked with Python hashlib):
        // a change here breaks every journal already written.
        #expect(plain.hex == TaskDigest(of: Self.taskLine(#"{"task":"multiply","args":{"a":3,"b":3}}"#)).hex)
        #expect(plain.hex == "1e6a024b43c142acc503a8d8cce3165a0a5a2cedbdbaed57ec279eeccc1d9bc8")
        let spaced = Self.taskLine(#"  { "args" : { "a" : 3 ,  "b": 3 } , "task": "multiply" }  "#)
        #expect(TaskDigest(of: spaced) == plain)
        #expect(TaskDigest(of: .task(name: "multiply", payload: Array(#"{"a":3,"b":4}"#.utf8))) != plain)
        #expect(TaskDigest(of: .task(name: "multiplY", payload: Array(#"{"a":3,"b":3}"#.utf8))) != plain)
        #expect(
            TaskDigest(of: .task(name: "multiply", payload: Array(#"{"a":3,"b":3}"#.utf8), timeLimitSeconds: 1))
                != plain)
        // Whitespace inside a string is data.
        #expect(
            TaskDigest(of: .task(name: "echo", payload: Array(#"{"s":"a b"}"#.utf8)))
                != TaskDigest(of: .task(name: "echo", payload: Array(#"{"s":"ab"}"#.utf8))))
        // An escaped quote does not end its string: the space after it is data, the ones around
        // the string are not.
        let escapedQuote = TaskDigest(of: .task(name: "echo", payload: Array(#"{"s":"a\" b"}"#.utf8)))
        #expect(escapedQuote != TaskDigest(of: .task(name: "echo", payload: Array(#"{"s":"a\"b"}"#.utf8))))
        #expect(escapedQuote == TaskDigest(of: .task(name: "echo", payload: Array(#"{ "s" : "a\" b" }"#.utf8))))
        // Whitespace anywhere between tokens of a long payload (the look goes eight bytes at a
        // time), beside bytes of 0x80 and up inside a string, is not hashed.
        let compact = Array(#"{"name":"größe","values":[1,2,3,4,5,6,7,8,9,10],"x":{"y":true}}"#.utf8)
        let compactDigest = TaskDigest(of: .task(name: "echo", payload: compact))
        let between = compact.indices.filter { index in
            // Outside strings: an even number of quotes before it.
            compact[..<index].filter { $0 == UInt8(ascii: "\"") }.count % 2 == 0
        }
        for index in between {
            for space: UInt8 in [0x20, 0x09, 0x0A, 0x0D] {
                var spaced = compact
                spaced.insert(space, at: index)
                #expect(TaskDigest(of: .task(name: "echo", payload: spaced)) == compactDigest, "at \(index)")
            }
        }
        #expect(TaskDigest(of: .invalid(reason: "x")) != TaskDigest(of: .invalid(reason: "y")))
        #expect(TaskDigest(hex: Array(plain.hex.utf8)) == plain)
        #expect(TaskDigest(hex: Array(plain.hex.uppercased().utf8)) == plain)
        #expect(TaskDigest(hex: Array("12".utf8)) == nil)
        #expect(MemoryLayout<TaskDigest>.size == 32)
    }

    @Test("the input chain is the SHA-256 of its items' digests in order, at any count, and a copy goes on alone")
    func inputChain() {
        let digests = (0..<200).map { TaskDigest(of: .invalid(reason: "item \($0)")) }
        func expected(_ count: Int) -> TaskDigest {
            Array(digests.prefix(count)).withUnsafeBytes { TaskDigest(sha256: $0) }
        }
        var chain = InputChain()
        #expect(chain.digest == expected(0))
        #expect(chain.digest.hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        var copy: InputChain?
        for (index, digest) in digests.enumerated() {
            chain.append(digest)
            if [1, 63, 64, 65, 128, 199].contains(index + 1) { #expect(chain.digest == expected(index + 1)) }
            if index == 99 { copy = chain }
        }
        #expect(chain.count == 200)
        // The copy took the first 100; fed the rest again, it reaches the same digest.
        guard var copy else { return }
        for digest in digests[100...] { copy.append(digest) }
        #expect(copy.digest == chain.digest)
        copy.append(digests[0])
        #expect(copy.digest != chain.digest)
        #expect(chain.digest == expected(200))
    }

    static func taskLine(_ text: String) -> SourceItem {
        TaskSource.parseTaskLine(Array(text.utf8)[...], lineNumber: 1)
    }

    @Test("records, checkpoints and the header round-trip through the file")
    func roundTrip() throws {
        let (directory, path) = try Self.temporaryPath()
        defer { try? FileManager.default.removeItem(at: directory) }
        let journal = try Journal(path: path, mode: .byPosition, ignoreDamage: false)
        #expect(journal.index.recordCount == 0)
        var chain = InputChain()
        for a in 1...3 {
            journal.append(Self.outcome(UInt64(a), Self.task(a)))
            chain.append(TaskDigest(of: Self.task(a)))
        }
        journal.append(InputCheckpoint(tasks: 3, digest: chain.digest))
        try journal.commit()
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.hasPrefix(Journal.header + "\n"))
        // Every line is JSON, and an outcome line is still the outcome's jsonLine plus its hash.
        for line in text.split(separator: "\n") {
            #expect(try JSONSerialization.jsonObject(with: Data(line.utf8)) is [String: Any])
        }

        let reopened = try Journal(path: path, mode: .byPosition, ignoreDamage: false)
        let index = reopened.index
        #expect(index.recordCount == 3)
        #expect(index.highestID == 3)
        #expect(index.digestsByID[2] == TaskDigest(of: Self.task(2)))
        #expect(index.checkpoint == InputCheckpoint(tasks: 3, digest: chain.digest))
        #expect(index.damagedLines.isEmpty && !index.tornTail)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == text, "reopening by position adds nothing")
    }

    @Test(
        "the file holds exactly what was committed, across block edges, reopened at any length, direct or not",
        arguments: [NSTemporaryDirectory(), "/dev/shm/"], [true, false])
    func fileCommitsAcrossBlocks(under root: String, direct: Bool) throws {
        let directory = URL(fileURLWithPath: root).appendingPathComponent("journal-file-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("journal").path
        var random = SeededRandom(seed: 7)
        var expected: [UInt8] = []
        // Commits of 0 bytes to several blocks, so each edge falls inside, on and between commits;
        // the file is reopened (its partial last block read back in) between some of them.
        for round in 0..<6 {
            let file = try JournalFile(path: path, length: expected.count, direct: direct)
            for _ in 0..<40 {
                let size = [0, 1, 17, 4_095, 4_096, 4_097, 9_000][Int.random(in: 0..<7, using: &random)]
                let bytes = (0..<size).map { _ in UInt8.random(in: 0x20...0x7E, using: &random) }
                bytes.withUnsafeBytes { file.append($0) }
                try file.commit()
                expected += bytes
                #expect(FileManager.default.contents(atPath: path).map(Array.init) == expected, "round \(round)")
            }
        }
        // Reopened shorter: what follows is cut off, and appends go on from there.
        expected.removeLast(5_000)
        let file = try JournalFile(path: path, length: expected.count, direct: direct)
        Array("tail".utf8).withUnsafeBytes { file.append($0) }
        try file.commit()
        expected += Array("tail".utf8)
        #expect(FileManager.default.contents(atPath: path).map(Array.init) == expected)
    }

    @Test("a torn last line is cut off; the rest is kept")
    func tornLastLine() throws {
        let (directory, path) = try Self.temporaryPath()
        defer { try? FileManager.default.removeItem(at: directory) }
        let journal = try Journal(path: path, mode: .byPosition, ignoreDamage: false)
        journal.append(Self.outcome(1, Self.task(1)))
        try journal.commit()
        let whole = try String(contentsOfFile: path, encoding: .utf8)
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data(#"{"id":2,"task":"multi"#.utf8))
        try handle.close()

        let reopened = try Journal(path: path, mode: .byPosition, ignoreDamage: false)
        #expect(reopened.index.tornTail)
        #expect(reopened.index.recordCount == 1)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == whole)
    }

    @Test("a damaged line in the middle is reported with its line number, and accepted only when asked")
    func damagedLine() throws {
        let lines = [
            Journal.header, Self.outcome(1, Self.task(1)).jsonLineWithDigest, "garbage",
            Self.outcome(2, Self.task(2)).jsonLineWithDigest,
        ]
        let bytes = Array((lines.joined(separator: "\n") + "\n").utf8)
        let (directory, path) = try Self.temporaryPath()
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: JournalError.self) {
            _ = try Journal(path: path, mode: .byPosition, ignoreDamage: false)
        }
        #expect(error?.code == .damaged)
        #expect(error?.description.contains("line 3 is damaged") == true, "\(String(describing: error))")
        #expect(error?.isDataError == true)

        let accepted = try Journal(path: path, mode: .byPosition, ignoreDamage: true)
        #expect(accepted.index.damagedLines == [3])
        #expect(accepted.index.recordCount == 2)
    }

    @Test("an older producer's journal (no hashes) and a file that is no journal are refused, saying which")
    func unsupportedFormats() throws {
        let old = Array((#"{"id":1,"task":"multiply","status":"ok","result":"1","run_us":3}"# + "\n").utf8)
        let error = #expect(throws: JournalError.self) {
            _ = try JournalIndex.parse(old, mode: .byPosition, path: "j")
        }
        #expect(error?.code == .unsupportedFormat)
        #expect(error?.description.contains("older producer") == true)
        let other = #expect(throws: JournalError.self) {
            _ = try JournalIndex.parse(Array("hello\n".utf8), mode: .byPosition, path: "j")
        }
        #expect(other?.description.contains("not a journal") == true)
        // Empty, or only a header torn by a crash: a new journal.
        #expect(try JournalIndex.parse([], mode: .byPosition, path: "j").validLength == 0)
        #expect(try JournalIndex.parse(Array("{\"jour".utf8), mode: .byPosition, path: "j").validLength == 0)
    }

    @Test("resuming by position: finished lines are skipped, a changed one stops, nothing is released before the check")
    func positionFilter() throws {
        var chain = InputChain()
        var lines = [Journal.header]
        for a in [1, 3] { lines.append(Self.outcome(UInt64(a), Self.task(a)).jsonLineWithDigest) }
        for a in 1...4 { chain.append(TaskDigest(of: Self.task(a))) }
        lines.append("{\"input\":{\"tasks\":4,\"sha256\":\"\(chain.digest.hex)\"}}")
        let index = try JournalIndex.parse(
            Array((lines.joined(separator: "\n") + "\n").utf8), mode: .byPosition, path: "j")
        var filter = ResumeFilter(index: index, mode: .byPosition)
        #expect(filter.verifyThrough == 4)
        #expect(filter.admit(id: 1, digest: TaskDigest(of: Self.task(1))) == .skip)
        #expect(filter.admit(id: 2, digest: TaskDigest(of: Self.task(2))) == .run)
        #expect(filter.isVerifying, "line 2 waits until lines 1-4 are checked")
        #expect(filter.admit(id: 3, digest: TaskDigest(of: Self.task(3))) == .skip)
        #expect(filter.admit(id: 4, digest: TaskDigest(of: Self.task(4))) == .run)
        #expect(!filter.isVerifying)
        #expect(filter.admit(id: 5, digest: TaskDigest(of: Self.task(5))) == .run, "lines added at the end run")

        var changed = ResumeFilter(index: index, mode: .byPosition)
        guard case .stop(let code, let reason) = changed.admit(id: 1, digest: TaskDigest(of: Self.task(9))) else {
            Issue.record("a changed line 1 must stop the run")
            return
        }
        #expect(code == .inputChanged)
        #expect(reason.hasPrefix("input line 1 differs from the journal"))

        // Line 2 had no outcome, but the checkpoint covers it.
        var unfinishedChanged = ResumeFilter(index: index, mode: .byPosition)
        _ = unfinishedChanged.admit(id: 1, digest: TaskDigest(of: Self.task(1)))
        _ = unfinishedChanged.admit(id: 2, digest: TaskDigest(of: Self.task(7)))
        _ = unfinishedChanged.admit(id: 3, digest: TaskDigest(of: Self.task(3)))
        #expect(unfinishedChanged.admit(id: 4, digest: TaskDigest(of: Self.task(4))) != .run)

        var shrunk = ResumeFilter(index: index, mode: .byPosition)
        _ = shrunk.admit(id: 1, digest: TaskDigest(of: Self.task(1)))
        guard case .stop(.inputShrank, let shrankReason) = shrunk.inputEnded() else {
            Issue.record("an input shorter than the journal must stop the run")
            return
        }
        #expect(shrankReason.contains("shrank"))
    }

    @Test("resuming by content skips each journaled task once, wherever it now stands (a multiset)")
    func contentFilter() throws {
        let lines = [
            Journal.header, Self.outcome(4, Self.task(1)).jsonLineWithDigest,
            Self.outcome(9, Self.task(2)).jsonLineWithDigest,
        ]
        let index = try JournalIndex.parse(
            Array((lines.joined(separator: "\n") + "\n").utf8), mode: .byContent, path: "j")
        var filter = ResumeFilter(index: index, mode: .byContent)
        #expect(!filter.isVerifying)
        let verdicts = [3, 1, 1, 2, 2].enumerated().map { offset, a in
            filter.admit(id: UInt64(offset + 1), digest: TaskDigest(of: Self.task(a)))
        }
        #expect(verdicts == [.run, .skip, .run, .skip, .run])
        #expect(filter.inputEnded() == .run, "resuming by content never stops for a shorter input")
    }

    @Test("a journal resumed by content is refused by position, and marked when it is")
    func contentMarker() throws {
        let (directory, path) = try Self.temporaryPath()
        defer { try? FileManager.default.removeItem(at: directory) }
        let journal = try Journal(path: path, mode: .byPosition, ignoreDamage: false)
        journal.append(Self.outcome(1, Self.task(1)))
        try journal.commit()
        _ = try Journal(path: path, mode: .byContent, ignoreDamage: false)
        #expect(try String(contentsOfFile: path, encoding: .utf8).hasSuffix(Journal.contentResumeMarker + "\n"))
        let error = #expect(throws: JournalError.self) {
            _ = try Journal(path: path, mode: .byPosition, ignoreDamage: false)
        }
        #expect(error?.code == .resumedByContent)
    }

    static func index(finished: [Int]) throws -> JournalIndex {
        let lines = [Journal.header] + finished.map { Self.outcome(UInt64($0), Self.task($0)).jsonLineWithDigest }
        return try JournalIndex.parse(Array((lines.joined(separator: "\n") + "\n").utf8), mode: .byPosition, path: "j")
    }

    /// Everything the feed hands over, until it is drained.
    static func drain(_ feed: TaskFeed) -> [TaskFeed.Entry] {
        var entries: [TaskFeed.Entry] = []
        let deadline = ContinuousClock.now + .seconds(20)
        while !feed.isDrained && ContinuousClock.now < deadline {
            if let taken = feed.take() { entries += taken.joined() } else { usleep(1_000) }
        }
        return entries
    }

    @Test(
        "the feed hands over only unfinished lines, hashed, and counts the skipped ones; a mismatch hands over nothing")
    func feedFilters() throws {
        let index = try Self.index(finished: [1, 2, 4])
        // Capacity 1: held lines are released past it, and the source still waits for room.
        let feed = TaskFeed(capacity: 1, wakeup: Wakeup(), resume: ResumeFilter(index: index, mode: .byPosition))
        feed.start(.items((1...6).map(Self.task)))
        #expect(feed.waitUntilChecked(cancelled: { false }) == nil)
        let entries = Self.drain(feed)
        #expect(entries.map(\.id) == [3, 5, 6])
        #expect(entries.map(\.digest) == [3, 5, 6].map { TaskDigest(of: Self.task($0)) })
        #expect(feed.resumed == 3)
        #expect(feed.failure == nil)

        let changed = TaskFeed(capacity: 1, wakeup: Wakeup(), resume: ResumeFilter(index: index, mode: .byPosition))
        changed.start(.items([1, 2, 3, 9, 5, 6].map(Self.task)))
        #expect(changed.waitUntilChecked(cancelled: { false })?.code == .inputChanged)
        #expect(Self.drain(changed).isEmpty, "line 3 was held back, never handed over")
        #expect(changed.failure?.description.hasPrefix("input line 4 differs") == true)

        // Without a journal nothing is hashed.
        let plain = TaskFeed(capacity: 4, wakeup: Wakeup())
        plain.start(.items((1...3).map(Self.task)))
        #expect(Self.drain(plain).map(\.digest) == [.zero, .zero, .zero])
    }

    @Test("resuming a large journal by position is linear: its tables are not copied per line")
    func largeResume() throws {
        let count = 50_000
        let index = try Self.index(finished: Array(1...count))
        let feed = TaskFeed(capacity: 4_096, wakeup: Wakeup(), resume: ResumeFilter(index: index, mode: .byPosition))
        feed.start(.items((1...count + 1).map(Self.task)))
        // Quadratic copying would take minutes here; the test's time limit catches it.
        #expect(Self.drain(feed).map(\.id) == [UInt64(count + 1)])
        #expect(feed.resumed == UInt64(count))
    }

    @Test("the pipeline journals before it reports, in order, and never journals a cancelled outcome")
    func pipelineOrder() throws {
        let (directory, path) = try Self.temporaryPath()
        defer { try? FileManager.default.removeItem(at: directory) }
        let journal = try Journal(path: path, mode: .byPosition, ignoreDamage: false)
        let reported = Mutex<[UInt64]>([])
        let pipeline = OutcomePipeline(journal: journal, batchLimit: 3) { outcome in
            // Reported only once durable: the record is already in the file.
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            if outcome.status != .cancelled { #expect(text.contains("{\"id\":\(outcome.id),")) }
            reported.withLock { $0.append(outcome.id) }
        }
        pipeline.submit((1...5).map { Self.outcome(UInt64($0), Self.task($0)) })
        pipeline.submit([Self.outcome(6, Self.task(6), status: .cancelled)])
        pipeline.submit((7...10).map { Self.outcome(UInt64($0), Self.task($0)) })
        try pipeline.finish()
        #expect(reported.withLock { $0 } == Array(1...10))
        let index = try JournalIndex.parse(
            Array(try Data(contentsOf: URL(fileURLWithPath: path))), mode: .byPosition, path: path)
        #expect(index.recordCount == 9)
        #expect(index.digestsByID[6] == nil)
    }
}

extension TaskOutcome {
    /// The line the journal writes for this outcome.
    fileprivate var jsonLineWithDigest: String {
        String(jsonLine.dropLast()) + ",\"sha256\":\"\((digest ?? .zero).hex)\"}"
    }
}
