import Foundation
import Logging
import Testing

@testable import WorkerPool

@Suite("Task registry")
struct TaskRegistryTests {
    let registry = TaskRegistry.builtin

    let events = PoolEvents(forward: { _ in })

    func run(_ name: String, _ json: String) -> TaskRegistry.Outcome {
        let context = TaskContext(
            workerName: "Worker-1", host: "test", events: events, logger: Logger(label: "test"), attempt: 1,
            taskID: 1)
        return registry.run(name: name, payload: Array(json.utf8), context: context)
    }

    @Test("multiply answers like the lecture's Task")
    func multiply() {
        let outcome = run("multiply", #"{"a": 3, "b": 3}"#)
        #expect(outcome.status == .ok)
        #expect(String(decoding: outcome.payload, as: UTF8.self) == #""3 * 3 = 9""#)
    }

    @Test(
        "multiply's fast path answers exactly as its Codable handler, or leaves the task to it",
        arguments: [
            #"{"a":3,"b":3}"#, #"{"a": 3, "b": 3}"#, #"{ "b" : -7 , "a" : 6 }"#, #"{"a":0,"b":123456789012345678}"#,
            #"{"a":-0,"b":5}"#, #"{"a":1.0,"b":2}"#, #"{"a":"3","b":2}"#, #"{"a":3}"#, #"{"a":3,"b":3,"c":1}"#,
            #"{"a":3,"a":4,"b":1}"#, #"{"a":03,"b":1}"#, #"{"a":3e2,"b":1}"#, #"{"a":9223372036854775807,"b":2}"#,
            #"{"a":4611686018427387904,"b":2}"#, #"{"a":1234567890123456789,"b":1}"#, #"{"a":3,"b":3} x"#, "[]", "",
            #"{"a":3,"b":3,}"#, #"{"a":-,"b":3}"#,
        ])
    func multiplyFastPath(json: String) {
        var answer: [UInt8] = []
        let fast = Array(json.utf8).withUnsafeBufferPointer { TaskRegistry.Multiply.fast($0, into: &answer) }
        var plain = TaskRegistry()
        plain.register("multiply") { (input: TaskRegistry.Multiply, _) -> String in
            let (product, overflow) = input.a.multipliedReportingOverflow(by: input.b)
            guard !overflow else { throw TaskError("overflow") }
            return "\(input.a) * \(input.b) = \(product)"
        }
        let context = TaskContext(workerName: "W", host: "h", events: events, logger: Logger(label: "test"))
        let slow = plain.run(name: "multiply", payload: Array(json.utf8), context: context)
        if fast {
            #expect(slow.status == .ok && answer == slow.payload, "\(json)")
        } else {
            // Left to the handler: the registry's answer is the handler's.
            let answer = run("multiply", json)
            #expect(answer.status == slow.status || slow.status == .failed, "\(json)")
        }
    }

    @Test("an unknown task name fails and lists the known ones")
    func unknownTask() {
        let outcome = run("divide", "{}")
        #expect(outcome.status == .unknownTask)
        #expect(
            String(decoding: outcome.payload, as: UTF8.self)
                == "unknown task 'divide'; this worker knows: blob, crash, fail-first, flaky, locked, multiply, primes, set-event, sleep, spin, wait-event"
        )
    }

    @Test(
        "bad arguments name the field",
        arguments: [
            (#"{"a": 3}"#, "bad arguments for 'multiply': missing field 'b'"),
            (#"{"a": "x", "b": 1}"#, "bad arguments for 'multiply': field 'a' must be an integer"),
            (#"[1, 2]"#, "bad arguments for 'multiply': expected"),
            (#"{"a": 1, "#, "bad arguments for 'multiply': not valid JSON"),
        ])
    func badArguments(json: String, message: String) {
        let outcome = run("multiply", json)
        #expect(outcome.status == .badArguments)
        #expect(String(decoding: outcome.payload, as: UTF8.self).hasPrefix(message))
    }

    @Test("a handler's TaskError becomes a failure with its message")
    func handlerError() {
        let outcome = run("multiply", #"{"a": 9223372036854775807, "b": 2}"#)
        #expect(outcome.status == .failed)
        #expect(String(decoding: outcome.payload, as: UTF8.self).contains("overflows"))
    }

    @Test("primes counts correctly")
    func primes() {
        #expect(TaskRegistry.countPrimes(below: 100) == 25)
        #expect(TaskRegistry.countPrimes(below: 2) == 0)
        #expect(TaskRegistry.countPrimes(below: 3) == 1)
    }

    @Test("wait-event with a timeout returns false when the event is unset, true once set")
    func waitEvent() {
        let unset = run("wait-event", #"{"event": "go", "timeout": 0.05}"#)
        #expect(String(decoding: unset.payload, as: UTF8.self).contains(#""is_set":false"#))
        // set-event, as another task would, then the same wait returns at once, set.
        #expect(run("set-event", #"{"event": "go"}"#).status == .ok)
        let set = run("wait-event", #"{"event": "go", "timeout": 30}"#)
        #expect(String(decoding: set.payload, as: UTF8.self).contains(#""is_set":true"#))
        #expect(run("set-event", #"{"event": "go", "clear": true}"#).status == .ok)
        #expect(!events.isSet("go"))
    }

    @Test("a custom task registers in a line and runs")
    func customTask() {
        var registry = TaskRegistry()
        registry.register("greet") { (name: String, _) in "hello, \(name)" }
        let context = TaskContext(
            workerName: "Worker-1", host: "test", events: PoolEvents(forward: { _ in }),
            logger: Logger(label: "test"), attempt: 1, taskID: 1)
        let outcome = registry.run(name: "greet", payload: Array(#""Dan""#.utf8), context: context)
        #expect(String(decoding: outcome.payload, as: UTF8.self) == #""hello, Dan""#)
    }
}

@Suite("Events")
struct EventTests {
    @Test("wait blocks until another thread sets the event")
    func waitUntilSet() async throws {
        let events = PoolEvents(forward: { _ in })
        #expect(!events.isSet("go"))
        #expect(!events.wait("go", timeout: 0.01))
        let waiter = Task.detached { events.wait("go", timeout: 10) }
        events.set("go")
        #expect(await waiter.value)
        events.clear("go")
        #expect(!events.isSet("go"))
    }

    @Test("an older snapshot does not undo a newer one")
    func snapshotOrder() {
        let table = EventTable()
        #expect(table.adopt(EventSnapshot(sequence: 5, shutdown: false, setEvents: ["a"])))
        #expect(!table.adopt(EventSnapshot(sequence: 4, shutdown: false, setEvents: [])))
        #expect(table.isSet("a"))
    }
}

@Suite("Task input")
struct TaskInputTests {
    @Test(
        "JSON lines become tasks; garbage lines become explicit failures",
        arguments: [
            (#"{"task": "multiply", "args": {"a": 3, "b": 3}}"#, true),
            (#"{"task": "sleep"}"#, true),
            (#"not json"#, false),
            (#"[1, 2]"#, false),
            (#"{"args": {}}"#, false),
            (#"{"task": 5}"#, false),
        ])
    func parse(line: String, valid: Bool) {
        let item = TaskSource.parseTaskLine(ArraySlice(line.utf8), lineNumber: 1)
        if case .task = item { #expect(valid) } else { #expect(!valid) }
    }

    @Test("args are passed through as written")
    func argsPassThrough() throws {
        let item = TaskSource.parseTaskLine(ArraySlice(#"{"task": "multiply", "args": {"a": 3}}"#.utf8), lineNumber: 1)
        #expect(item == .task(name: "multiply", payload: Array(#"{"a": 3}"#.utf8), timeLimitSeconds: nil))
    }

    @Test(
        "the fast line reader agrees with Foundation's, or leaves the line to it",
        arguments: [
            #"{"task": "multiply", "args": {"a": 3, "b": 3}}"#,
            #"  {"args": [1, 2.5, "x", null, true], "task": "sum"}  "#,
            #"{"task": "sleep"}"#,
            #"{"task": "sleep", "args": {"ms": 1}, "time_limit": 0.5, "note": {"deep": [{"x": -1e3}]}}"#,
            #"{"task": "tAsk", "args": {}}"#,
            #"{"task": "sleep", "args": 5}"#,
            #"{"task": "sleep", "args": null}"#,
            #"{"task": "a", "task": "b"}"#,
            #"{"task": "sleep", "time_limit": true}"#,
            #"{"task": "sleep", "time_limit": -1}"#,
            #"{"task": "", "args": {}}"#,
            #"{"task": "é", "args": {"s": "ünïcode"}}"#,
            #"{"task": "x", "args": {"a": 1}"#,
            #"{"task": "x", "args": {"a": 1}} trailing"#,
            #"{"task": "x", "args": {}, "retries": 3}"#,
            #"{"task": "x", "retries": 0, "time_limit": 2}"#,
            #"{"task": "x", "retries": 2.0}"#,
            #"{"task": "x", "retries": 2.5}"#,
            #"{"task": "x", "retries": -1}"#,
            #"{"task": "x", "retries": 1001}"#,
            #"{"task": "x", "retries": "3"}"#,
            #"{"task": "x", "retries": false}"#,
        ])
    func fastLinesMatchFoundation(line: String) throws {
        let general = TaskSource.parseTaskLineWithFoundation(ArraySlice(line.utf8), lineNumber: 3)
        let chosen = TaskSource.parseTaskLine(ArraySlice(line.utf8), lineNumber: 3)
        switch (general, chosen) {
        case (
            .task(let name, let payload, let limit, let retries),
            .task(let fastName, let fastPayload, let fastLimit, let fastRetries)
        ):
            #expect(name == fastName)
            #expect(limit == fastLimit)
            #expect(retries == fastRetries)
            let expected = try JSONSerialization.jsonObject(with: Data(payload), options: .fragmentsAllowed)
            let got = try JSONSerialization.jsonObject(with: Data(fastPayload), options: .fragmentsAllowed)
            #expect(
                NSDictionary(dictionary: ["v": expected]).isEqual(to: ["v": got]),
                "\(String(decoding: fastPayload, as: UTF8.self))")
        default:
            #expect(general == chosen)
        }
    }

    @Test("a long line's arguments are read as written, however long, not re-encoded")
    func longLinePassesThrough() {
        let args = #"{"z": 1, "data": ""# + String(repeating: "y", count: 70_000) + #"", "a": [1, 2]}"#
        let item = TaskSource.parseTaskLine(ArraySlice(#"{"task": "blob", "args": \#(args)}"#.utf8), lineNumber: 1)
        guard case .task(let name, let payload, nil, nil) = item else {
            Issue.record("not a task: \(item)")
            return
        }
        #expect(name == "blob")
        // Compared whole, reported by its ends: the bytes themselves would fill the log.
        let asWritten = payload.elementsEqual(args.utf8)
        #expect(
            asWritten,
            "\(payload.count) bytes: \(String(decoding: payload.prefix(24), as: UTF8.self))…\(String(decoding: payload.suffix(24), as: UTF8.self))"
        )
    }

    @Test("a line left to Foundation gives the same arguments in every run: its keys sorted")
    func foundationLineSortsKeys() {
        // The escape sends it to Foundation, which re-encodes the arguments.
        let line = #"{"task": "t", "args": {"c": 3, "b": "\u0041", "a": {"y": 1, "x": 2}}}"#
        let item = TaskSource.parseTaskLine(ArraySlice(line.utf8), lineNumber: 1)
        #expect(
            item == .task(name: "t", payload: Array(#"{"a":{"x":2,"y":1},"b":"A","c":3}"#.utf8), timeLimitSeconds: nil))
    }

    @Test("a task may carry its own time limit; a bad one is bad input")
    func timeLimit() {
        let limited = TaskSource.parseTaskLine(
            ArraySlice(#"{"task": "sleep", "args": {"ms": 1}, "time_limit": 0.5}"#.utf8), lineNumber: 1)
        #expect(limited == .task(name: "sleep", payload: Array(#"{"ms": 1}"#.utf8), timeLimitSeconds: 0.5))
        let bad = TaskSource.parseTaskLine(ArraySlice(#"{"task": "sleep", "time_limit": "soon"}"#.utf8), lineNumber: 7)
        #expect(bad == .invalid(reason: #"line 7: "time_limit" must be a positive number of seconds"#))
    }

    @Test("a task may carry its own retries, a whole number 0-1000; anything else is bad input")
    func retries() {
        let retried = TaskSource.parseTaskLine(ArraySlice(#"{"task": "sleep", "retries": 4}"#.utf8), lineNumber: 1)
        #expect(retried == .task(name: "sleep", payload: Array("{}".utf8), retries: 4))
        let none = TaskSource.parseTaskLine(ArraySlice(#"{"task": "sleep", "retries": 0}"#.utf8), lineNumber: 1)
        #expect(none == .task(name: "sleep", payload: Array("{}".utf8), retries: 0), "0 overrides --retries")
        let reason = #"line 2: "retries" must be a whole number from 0 to 1000"#
        for value in ["-1", "1.5", "1001", "\"2\"", "true", "null", "[1]"] {
            let line = #"{"task": "sleep", "retries": "# + value + "}"
            #expect(
                TaskSource.parseTaskLine(ArraySlice(line.utf8), lineNumber: 2) == .invalid(reason: reason), "\(value)")
        }
    }
}

@Suite("Generated tasks")
struct GeneratedTaskTests {
    @Test("--generate payloads are the JSON a string would give, for any operands")
    func multiplyPayloads() {
        let operands = [(0, 0), (-1, 7), (Int.min, Int.max), (123_456_789, -987_654_321), (9, 10)]
        let source = TaskSource.multiply(count: operands.count) { operands[$0] }
        var items: [SourceItem] = []
        source.produce { item in
            items.append(item)
            return true
        }
        #expect(
            items
                == operands.map { a, b in
                    .task(name: "multiply", payload: Array("{\"a\":\(a),\"b\":\(b)}".utf8))
                })
    }
}

@Suite("Result lines")
struct ResultLineTests {
    @Test(
        "strings in jsonl lines are quoted exactly as JSONSerialization quotes them",
        arguments: [
            "Worker-1", "vm", "", "a/b", "say \"hi\"", "back\\slash", "tab\there", "line\nbreak", "ünï", "\u{1}",
        ])
    func quoting(text: String) throws {
        let expected = try JSONSerialization.data(
            withJSONObject: text, options: [.fragmentsAllowed, .withoutEscapingSlashes])
        #expect(TaskOutcome.quoted(text) == String(decoding: expected, as: UTF8.self))
    }

    @Test("a result line is one JSON object with the outcome's fields")
    func line() throws {
        let outcome = TaskOutcome(
            id: 7, name: "multiply", status: .ok, payloadStorage: Array(#""3 * 4 = 12""#.utf8), runMicroseconds: 5,
            worker: WorkerInfo(id: 1, name: "Worker-2", host: "host \"b\"", pid: 42, threads: 1))
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(outcome.jsonLine.utf8)) as? [String: Any])
        #expect(object["id"] as? Int == 7)
        #expect(object["result"] as? String == "3 * 4 = 12")
        #expect(object["worker"] as? String == "Worker-2")
        #expect(object["host"] as? String == "host \"b\"")
        #expect(object["pid"] as? Int == 42)
        #expect(object["run_us"] as? Int == 5)
        let failed = TaskOutcome(
            id: 8, name: "ünï", status: .failed, payloadStorage: Array("bad \"input\"\n".utf8), runMicroseconds: 0)
        let failure = try #require(
            try JSONSerialization.jsonObject(with: Data(failed.jsonLine.utf8)) as? [String: Any])
        #expect(failure["error"] as? String == "bad \"input\"\n" && failure["task"] as? String == "ünï")
        #expect(failure["worker"] == nil)
    }

    @Test(
        "a result reads as its text when it is a JSON string, as its JSON otherwise",
        arguments: [
            (#""3 * 4 = 12""#, "3 * 4 = 12"), (#""say \"hi\"""#, "say \"hi\""), (#""a\nb""#, "a\nb"),
            ("\"\"", ""), (#"{"count":9592}"#, #"{"count":9592}"#), ("42", "42"),
        ])
    func resultText(payload: String, text: String) {
        let outcome = TaskOutcome(
            id: 1, name: "t", status: .ok, payloadStorage: Array(payload.utf8), runMicroseconds: 0)
        #expect(outcome.resultText == text)
    }
}
