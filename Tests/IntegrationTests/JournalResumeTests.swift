import Foundation
import Testing
import WorkerPool

/// A journal resumed against an edited input: refused by position before anything is sent,
/// matched by content with `--resume-by-content`; torn and damaged journals.
@Suite("Journal resume", .serialized, .timeLimit(.minutes(3)))
struct JournalResumeTests {
    /// `multiply` of a by 2: the result names the task, whatever its id.
    static func line(_ a: Int) -> String { #"{"task": "multiply", "args": {"a": \#(a), "b": 2}}"# }
    static func result(_ a: Int) -> String { "\(a) * 2 = \(a * 2)" }

    enum Edit: String, CaseIterable {
        case insertAtTop, deleteLine5, swapLines3And4, duplicateLine2

        func apply(to lines: [Int]) -> [Int] {
            var edited = lines
            switch self {
            case .insertAtTop: edited.insert(100, at: 0)
            case .deleteLine5: edited.remove(at: 4)
            case .swapLines3And4: edited.swapAt(2, 3)
            case .duplicateLine2: edited.insert(edited[1], at: 2)
            }
            return edited
        }

        /// The first input line that no longer matches the journal's record of it.
        var firstDifferingLine: Int {
            switch self {
            case .insertAtTop: 1
            case .deleteLine5: 5
            case .swapLines3And4: 3
            case .duplicateLine2: 3
            }
        }
    }

    /// Runs 20 tasks with a journal and cuts it back to its header and first 10 outcomes (as a
    /// crash would leave it, checkpoints and all); returns the cut journal's outcomes.
    func journaledRun(
        in directory: URL, input: URL, journal: URL, lines: [String] = (1...20).map(Self.line)
    ) throws -> [OutcomeLine] {
        try writeLines(lines, to: input)
        let first = try TestProcess(
            "producer",
            [
                "--input", input.path, "--output", "jsonl", "--journal", journal.path, "--local-workers", "1", "--ipc",
                directory.path,
            ],
            in: directory)
        defer { first.stop() }
        #expect(first.waitForExit() == 0, "\(first.stderr)")
        var kept: [Substring] = []
        var outcomes = 0
        for line in try String(contentsOf: journal, encoding: .utf8).split(separator: "\n") {
            if line.hasPrefix("{\"id\":") {
                guard outcomes < 10 else { break }
                outcomes += 1
            }
            kept.append(line)
        }
        try (kept.joined(separator: "\n") + "\n").write(to: journal, atomically: true, encoding: .utf8)
        return try parseOutcomes(kept.filter { $0.hasPrefix("{\"id\":") }.joined(separator: "\n"))
    }

    func resume(_ arguments: [String], input: URL, journal: URL, in directory: URL) throws -> TestProcess {
        let process = try TestProcess(
            "producer",
            [
                "--input", input.path, "--output", "jsonl", "--journal", journal.path, "--local-workers", "1", "--ipc",
                directory.path,
            ]
                + arguments, in: directory)
        _ = process.waitForExit()
        return process
    }

    @Test(
        "by position, an input edited since the journal was written is refused (65) naming the first differing line; nothing is sent",
        arguments: Edit.allCases)
    func editedInputRefused(edit: Edit) throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("tasks.jsonl")
        let journal = directory.appendingPathComponent("journal.jsonl")
        let journaled = try journaledRun(in: directory, input: input, journal: journal)
        #expect(Set(journaled.map(\.id)) == Set(1...10), "one worker thread ends tasks in order")
        let before = try Data(contentsOf: journal)
        try writeLines(edit.apply(to: Array(1...20)).map(Self.line), to: input)

        let second = try resume([], input: input, journal: journal, in: directory)
        defer { second.stop() }
        #expect(second.process.terminationStatus == 65, "\(second.stderr)")
        #expect(
            second.stderr.contains("input line \(edit.firstDifferingLine) differs from the journal"), "\(second.stderr)"
        )
        #expect(second.stdout.isEmpty, "no task ended")
        #expect(!second.stderr.contains("producer bound"), "refused before the sockets were bound or workers started")
        #expect(!second.stderr.contains("Creating 1 local worker"))
        #expect(try Data(contentsOf: journal) == before, "a refused run leaves the journal as it was")
    }

    @Test(
        "by content (--resume-by-content), every task of the edited input ends exactly once across both runs",
        arguments: Edit.allCases)
    func editedInputByContent(edit: Edit) throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("tasks.jsonl")
        let journal = directory.appendingPathComponent("journal.jsonl")
        let journaled = try journaledRun(in: directory, input: input, journal: journal)
        let edited = edit.apply(to: Array(1...20))
        try writeLines(edited.map(Self.line), to: input)

        let second = try resume(["--resume-by-content"], input: input, journal: journal, in: directory)
        defer { second.stop() }
        #expect(second.process.terminationStatus == 0, "\(second.stderr)")
        let ran = try parseOutcomes(second.stdout)
        #expect(ran.allSatisfy { $0.status == "ok" })
        // As multisets: what the journal had (that the input still has) plus what ran is the input.
        var wanted = Dictionary(edited.map { (Self.result($0), 1) }, uniquingKeysWith: +)
        var done: [String: Int] = [:]
        for outcome in journaled {
            guard case .string(let text) = outcome.result, wanted[text, default: 0] > done[text, default: 0] else {
                continue
            }
            done[text, default: 0] += 1
        }
        for outcome in ran {
            guard case .string(let text) = outcome.result else { continue }
            done[text, default: 0] += 1
        }
        wanted = wanted.filter { $0.value > 0 }
        #expect(done == wanted, "each input task ran once: in the first run or the second")
        // New ids are the tasks' new lines.
        for outcome in ran {
            guard case .string(let text) = outcome.result else { continue }
            let a = edited[Int(outcome.id) - 1]
            #expect(text == Self.result(a), "outcome \(outcome.id) is input line \(outcome.id)")
        }
        let skipped = edited.count - ran.count
        #expect(second.stderr.contains("\(skipped) already done (journal)"), "\(second.stderr)")
    }

    /// `multiply` of a by 2 in a long line: arguments of several keys, out of order, with a
    /// `pad` string of `length` bytes (`escaped`: with an escape in it, which only Foundation reads).
    static func longLine(_ a: Int, length: Int, escaped: Bool) -> String {
        let pad = String(repeating: "x", count: length) + (escaped ? #"\u0041"# : "")
        return #"{"task": "multiply", "args": {"b": 2, "pad": "\#(pad)", "a": \#(a), "c": 3}}"#
    }

    @Test(
        "an unchanged input of long lines resumes by position: the journal's tasks are not run again, the rest are"
    )
    func longLinesResume() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("tasks.jsonl")
        let journal = directory.appendingPathComponent("journal.jsonl")
        // Before 7f26d73 each of these lines was hashed as Foundation re-encoded it, its keys in an
        // order that changed from one process to the next: the resumed run found line 1 "changed".
        let lines = (1...20).map { Self.longLine($0, length: [600, 70_000][$0 % 2], escaped: $0 % 3 == 0) }
        let journaled = try journaledRun(in: directory, input: input, journal: journal, lines: lines)
        #expect(journaled.count == 10)

        let second = try resume([], input: input, journal: journal, in: directory)
        defer { second.stop() }
        #expect(second.process.terminationStatus == 0, "\(second.stderr)")
        let ran = try parseOutcomes(second.stdout)
        #expect(Set(ran.map(\.id)) == Set(1...20).subtracting(journaled.map(\.id)))
        for outcome in ran {
            #expect(outcome.result == .string(Self.result(Int(outcome.id))), "line \(outcome.id) ran as written")
        }
        #expect(second.stderr.contains("10 already done (journal)"), "\(second.stderr)")
    }

    @Test(
        "a torn last journal line is cut off and the resume completes; garbage in the middle is refused, then accepted when asked"
    )
    func tornAndDamagedJournal() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("tasks.jsonl")
        let journal = directory.appendingPathComponent("journal.jsonl")
        _ = try journaledRun(in: directory, input: input, journal: journal)
        var lines = try String(contentsOf: journal, encoding: .utf8).split(separator: "\n").map(String.init)
        let cut = lines

        // Torn: the start of an 11th record, without its newline.
        try (cut.joined(separator: "\n") + "\n" + #"{"id":11,"task":"multiply","sta"#).write(
            to: journal, atomically: true, encoding: .utf8)
        let torn = try resume([], input: input, journal: journal, in: directory)
        defer { torn.stop() }
        #expect(torn.process.terminationStatus == 0, "\(torn.stderr)")
        #expect(torn.stderr.contains("last line was torn"), "\(torn.stderr)")
        #expect(Set(try parseOutcomes(torn.stdout).map(\.id)) == Set(11...20))

        // Damaged: a line of garbage at line 4 of the cut journal.
        lines = cut
        lines.insert("this is not a record", at: 3)
        try writeLines(lines, to: journal)
        let refused = try resume([], input: input, journal: journal, in: directory)
        defer { refused.stop() }
        #expect(refused.process.terminationStatus == 65, "\(refused.stderr)")
        #expect(refused.stderr.contains("line 4 is damaged"), "\(refused.stderr)")
        #expect(refused.stdout.isEmpty)

        let accepted = try resume(["--journal-ignore-damage"], input: input, journal: journal, in: directory)
        defer { accepted.stop() }
        #expect(accepted.process.terminationStatus == 0, "\(accepted.stderr)")
        #expect(Set(try parseOutcomes(accepted.stdout).map(\.id)) == Set(11...20))
        #expect(accepted.stderr.contains("line 4 is damaged; ignored"))
    }

    @Test("an older producer's journal (no task hashes) is refused, saying so")
    func oldFormatRefused() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = try writeTaskFile((1...3).map(Self.line), in: directory)
        let journal = directory.appendingPathComponent("journal.jsonl")
        try writeLines([#"{"id":1,"task":"multiply","status":"ok","result":"1 * 2 = 2","run_us":3}"#], to: journal)
        let run = try resume([], input: input, journal: journal, in: directory)
        defer { run.stop() }
        #expect(run.process.terminationStatus == 65, "\(run.stderr)")
        #expect(run.stderr.contains("older producer"), "\(run.stderr)")
    }

    @Test("a run killed mid-way, then a line inserted at the top: refused by position; by content each task ends once")
    func killedRunThenInsert() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("tasks.jsonl")
        let journal = directory.appendingPathComponent("journal.jsonl")
        let line = { (n: Int) in #"{"task": "sleep", "args": {"ms": 1, "n": \#(n)}}"# }
        try writeLines((1...2_000).map(line), to: input)
        let worker = try TestProcess("worker", ["--ipc", directory.path, "--processes", "2"], in: directory)
        defer { worker.stop() }
        let arguments = [
            "--ipc", directory.path, "--input", input.path, "--output", "jsonl", "--journal", journal.path,
            "--wait-workers", "2",
        ]
        let first = try TestProcess("producer", arguments, in: directory)
        defer { first.stop() }
        #expect(first.waitForStdout(lines: 300), "\(first.stderr)")
        kill(first.pid, SIGKILL)
        _ = first.waitForExit()
        let journaled = try journalOutcomes(journal)
        #expect(journaled.count < 2_000, "the first run was cut short")
        try writeLines([line(0)] + (1...2_000).map(line), to: input)

        let refused = try TestProcess("producer", arguments + ["--keep-workers"], in: directory)
        defer { refused.stop() }
        #expect(refused.waitForExit() == 65, "\(refused.stderr)")
        #expect(refused.stderr.contains("input line 1 differs from the journal"), "\(refused.stderr)")
        #expect(refused.stdout.isEmpty && !refused.stderr.contains("producer bound"))

        let second = try TestProcess("producer", arguments + ["--resume-by-content"], in: directory)
        defer { second.stop() }
        #expect(second.waitForExit() == 0, "\(second.stderr)")
        let ran = try parseOutcomes(second.stdout)
        #expect(ran.allSatisfy { $0.status == "ok" }, "\(ran.first { $0.status != "ok" }.map { "\($0)" } ?? "")")
        // Old ids are the old lines (n = id), new ids the new lines (n = id - 1).
        let done = journaled.map { Int($0.id) } + ran.map { Int($0.id) - 1 }
        #expect(done.sorted() == Array(0...2_000), "every task of the new input ran once, in one run or the other")
        #expect(worker.waitForExit(timeout: 30) == 0)
    }
}
