import Foundation
import Logging
import Testing

@testable import WorkerPool

@Suite("Exec: replacement strings")
struct ExecTemplateTests {
    @Test(
        "each replacement string as GNU parallel computes it",
        arguments: [
            ("dir/sub/a.tar.gz", "dir/sub/a.tar.gz", "dir/sub/a.tar", "a.tar.gz", "dir/sub", "a.tar"),
            ("plain", "plain", "plain", "plain", ".", "plain"),
            ("/abs/file.txt", "/abs/file.txt", "/abs/file", "file.txt", "/abs", "file"),
            ("/top", "/top", "/top", "top", "/", "top"),
            ("dir.d/noext", "dir.d/noext", "dir.d/noext", "noext", "dir.d", "noext"),
            ("trailing/", "trailing/", "trailing/", "", ".", ""),
            (".bashrc", ".bashrc", "", ".bashrc", ".", ""),
            ("a//b.c", "a//b.c", "a//b", "b.c", "a", "b"),
        ])
    func expansions(line: String, all: String, noExtension: String, base: String, directory: String, baseNoExt: String)
    {
        #expect(ExecTemplate.expand("{}", line: line, sequence: 7) == all)
        #expect(ExecTemplate.expand("{.}", line: line, sequence: 7) == noExtension)
        #expect(ExecTemplate.expand("{/}", line: line, sequence: 7) == base)
        #expect(ExecTemplate.expand("{//}", line: line, sequence: 7) == directory)
        #expect(ExecTemplate.expand("{/.}", line: line, sequence: 7) == baseNoExt)
        #expect(ExecTemplate.expand("{#}", line: line, sequence: 7) == "7")
    }

    @Test("replacements inside words, several per word, and braces that are not replacements stay")
    func insideWords() throws {
        let template = try ExecTemplate(
            command: ["gzip", "-c", "{}", "-o", "{.}.gz", "x{#}y{/}", "{z}", "{"], shell: false)
        #expect(
            template.arguments(line: "d/f.log", sequence: 3)
                == ["gzip", "-c", "d/f.log", "-o", "d/f.gz", "x3yf.log", "{z}", "{"])
    }

    @Test("with no replacement string the line is appended as one argument")
    func appended() throws {
        let template = try ExecTemplate(command: ["echo", "got"], shell: false)
        #expect(!template.hasReplacements)
        #expect(template.arguments(line: "a b", sequence: 1) == ["echo", "got", "a b"])
    }

    @Test("--shell quotes each replacement into the script, so the line cannot break out of it")
    func shellQuoting() throws {
        let template = try ExecTemplate(command: ["wc", "-c", "<", "{}"], shell: true)
        #expect(template.script(line: "it's; rm -rf x", sequence: 1) == #"wc -c < 'it'\''s; rm -rf x'"#)
        #expect(template.script(line: "plain.txt", sequence: 1) == "wc -c < plain.txt")
        let appended = try ExecTemplate(command: ["echo"], shell: true)
        #expect(appended.script(line: "$HOME", sequence: 1) == "echo '$HOME'")
        #expect(ExecTemplate.shellQuoted("") == "''")
    }

    @Test("the task payload is the exec task's JSON, and an empty command is refused")
    func payload() throws {
        let argv = try ExecTemplate(command: ["echo", "{}"], shell: false)
        #expect(
            String(decoding: argv.payload(line: "say \"hi\"\t", sequence: 1), as: UTF8.self)
                == #"{"argv":["echo","say \"hi\"\t"]}"#)
        let shell = try ExecTemplate(command: ["echo {}"], shell: true)
        #expect(String(decoding: shell.payload(line: "x", sequence: 1), as: UTF8.self) == #"{"shell":"echo x"}"#)
        #expect(throws: TaskError.self) { try ExecTemplate(command: [], shell: false) }
        #expect(throws: TaskError.self) { try ExecTemplate(command: [""], shell: false) }
    }

    @Test("one job per non-empty line, numbered in order; a line that is not UTF-8 is bad input of its own")
    func source() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let bytes: [UInt8] = Array("a\n\nb\r\n".utf8) + [0xFF, 0x0A] + Array("c".utf8)
        bytes.withUnsafeBytes { _ = write(fds[1], $0.baseAddress, $0.count) }
        close(fds[1])
        defer { close(fds[0]) }
        let template = try ExecTemplate(command: ["echo", "{#}", "{}"], shell: false)
        var items: [SourceItem] = []
        TaskSource.execLines(fileDescriptor: fds[0], template: template).produce { item in
            items.append(item)
            return true
        }
        #expect(
            items == [
                .task(name: "exec", payload: template.payload(line: "a", sequence: 1)),
                .task(name: "exec", payload: template.payload(line: "b", sequence: 2)),
                .invalid(reason: "line 4 is not UTF-8 text"),
                .task(name: "exec", payload: template.payload(line: "c", sequence: 4)),
            ])
    }
}

@Suite("Exec: the task on a worker thread")
struct ExecTaskTests {
    let context: TaskContext = {
        var context = TaskContext(workerName: "Worker-1", host: "test", logger: Logger(label: "test"))
        context.timeLimitMilliseconds = 0
        return context
    }()

    func run(_ arguments: String, policy: ExecPolicy = ExecPolicy(), limit: UInt32 = 0) -> TaskRegistry.Outcome {
        var registry = TaskRegistry()
        registry.enableExec(policy)
        var context = self.context
        context.timeLimitMilliseconds = limit
        return registry.run(name: "exec", payload: Array(arguments.utf8), context: context)
    }

    func fields(_ outcome: TaskRegistry.Outcome) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(outcome.payload))) as? [String: Any] ?? [:]
    }

    @Test("megabytes through stdin, stdout and stderr at once: no deadlock, every byte counted")
    func pipesAtOnce() {
        let input = String(repeating: "0123456789abcdef", count: 200_000)  // 3.2 MB
        let outcome = run(#"{"shell": "cat; head -c 3000000 /dev/zero >&2", "stdin": "\#(input)"}"#)
        let result = fields(outcome)
        #expect(outcome.status == .ok, "\(String(decoding: outcome.payload.prefix(300), as: UTF8.self))")
        #expect(result["stdout_bytes"] as? Int == input.utf8.count)
        #expect(result["stderr_bytes"] as? Int == 3_000_000)
        #expect(result["stdout_truncated"] as? Bool == true && result["stderr_truncated"] as? Bool == true)
    }

    @Test("output cut inside a UTF-8 character stays text, without the partial character")
    func truncatedText() {
        var policy = ExecPolicy()
        policy.outputLimit = 5
        let outcome = run(#"{"argv": ["printf", "aaaaü"]}"#, policy: policy)
        #expect(fields(outcome)["stdout"] as? String == "aaaa")
        #expect(fields(outcome)["stdout_encoding"] as? String == "utf-8")
        #expect(ExecResultJSON.utf8Prefix([0x61, 0xE2, 0x82], truncated: true) == [0x61][...])
        #expect(ExecResultJSON.utf8Prefix([0x61, 0xFF], truncated: false) == nil)
    }

    @Test("the allowlist compares programs by their directory's real path, and names resolve through PATH")
    func allowlist() throws {
        var policy = ExecPolicy()
        try policy.allow(["echo"])
        let echo = try #require(policy.allowed?.first)
        #expect(echo.hasSuffix("/echo"))
        #expect(run(#"{"argv": ["echo", "hi"]}"#, policy: policy).status == .ok)
        let refused = run(#"{"argv": ["ls"]}"#, policy: policy)
        #expect(refused.status == .failed)
        #expect((fields(refused)["error"] as? String)?.contains("--exec-allow list") == true)
        #expect(throws: TaskError.self) { try policy.allow(["/no/such/program"]) }
    }

    @Test("a time limit ends the command in time, reported time-limit, with what it wrote so far")
    func deadline() {
        let started = ContinuousClock.now
        let outcome = run(#"{"shell": "echo partial; sleep 30"}"#, limit: 300)
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(outcome.status == .timeLimit)
        #expect(fields(outcome)["stdout"] as? String == "partial\n")
        #expect(fields(outcome)["signal"] as? Int == Int(SIGTERM))
    }

    @Test("exec over plaintext: loopback and ipc are this host, anything else is not")
    func remote() {
        #expect(!ExecPolicy.isRemote("tcp://127.0.0.1:5557"))
        #expect(!ExecPolicy.isRemote("tcp://localhost:5557"))
        #expect(!ExecPolicy.isRemote("tcp://[::1]:5557"))
        #expect(!ExecPolicy.isRemote("ipc:///tmp/pool/tasks"))
        #expect(ExecPolicy.isRemote("tcp://10.0.0.2:5557"))
        #expect(ExecPolicy.isRemote("tcp://producer.example.org:5557"))
    }

    @Test("without exec, the task is unknown and the message names --allow-exec")
    func disabled() {
        let outcome = TaskRegistry.builtin.run(name: "exec", payload: Array("{}".utf8), context: context)
        #expect(outcome.status == .unknownTask)
        #expect(String(decoding: outcome.payload, as: UTF8.self).contains("--allow-exec"))
    }
}
