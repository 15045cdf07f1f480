extension TaskSource {
    /// One `exec` task per line read from `fileDescriptor`, made by `template` (`producer exec`).
    /// Empty lines are skipped, as xargs does; `{#}` counts the jobs made. A line that is not
    /// UTF-8, or is too long, ends as a `bad-input` failure of its own.
    public static func execLines(
        fileDescriptor: Int32, template: ExecTemplate, maxLineLength: Int = WireFormat.defaultMaxMessageSize
    ) -> TaskSource {
        TaskSource(announcingWaits: { emit, willWait in
            var reader = LineReader(fileDescriptor: fileDescriptor, maxLineLength: maxLineLength)
            var lineNumber = 0
            var sequence = 0
            while let line = reader.nextLine(beforeRead: willWait) {
                lineNumber += 1
                let item: SourceItem
                switch line {
                case .tooLong(let length):
                    sequence += 1
                    item = .invalid(reason: "line \(lineNumber) is longer than \(maxLineLength) bytes (\(length)+)")
                case .line(var bytes):
                    if bytes.last == 0x0D { bytes = bytes.dropLast() }
                    if bytes.isEmpty { continue }
                    sequence += 1
                    if let text = String(validating: bytes, as: UTF8.self) {
                        item = .task(name: "exec", payload: template.payload(line: text, sequence: sequence))
                    } else {
                        item = .invalid(reason: "line \(lineNumber) is not UTF-8 text")
                    }
                }
                if !emit(item) { return }
            }
            if let error = reader.readError {
                _ = emit(.invalid(reason: "reading input failed after line \(lineNumber): \(error)"))
            }
        })
    }
}
