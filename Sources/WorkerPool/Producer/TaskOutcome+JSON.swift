import Foundation

extension TaskOutcome {
    /// One JSON object on one line, as `producer --output jsonl` prints and the journal stores:
    /// `{"id":1,"task":"multiply","status":"ok","result":"3 * 3 = 9","worker":"Worker-1",...}`.
    public var jsonLine: String {
        var line = "{\"id\":\(id),\"task\":\(Self.quoted(name)),\"status\":\"\(status)\""
        if status == .ok {
            line += ",\"result\":" + String(decoding: payload, as: UTF8.self)
        } else {
            line += ",\"error\":" + Self.quoted(message)
        }
        if let worker {
            line += ",\"worker\":\(Self.quoted(worker.name)),\"host\":\(Self.quoted(worker.host)),\"pid\":\(worker.pid)"
        }
        line += ",\"run_us\":\(runMicroseconds)}"
        return line
    }

    static func quoted(_ text: String) -> String {
        // Names, hosts and most messages are plain ASCII: quoting them needs no serializer.
        if let plain = FastJSONEncoder.string(text) { return String(decoding: plain, as: UTF8.self) }
        guard
            let data = try? JSONSerialization.data(
                withJSONObject: text, options: [.fragmentsAllowed, .withoutEscapingSlashes])
        else { return "\"\"" }
        return String(decoding: data, as: UTF8.self)
    }
}
