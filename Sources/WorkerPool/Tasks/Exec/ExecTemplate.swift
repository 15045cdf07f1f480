import Foundation

/// A command line with GNU parallel's replacement strings, turned into one `exec` task per
/// input line (`producer exec -- gzip -9 {}`).
///
/// `{}` the line, `{.}` without its extension, `{/}` its last path component, `{//}` its
/// directory, `{/.}` the last component without extension, `{#}` the job's number (from 1).
/// A command with none of them gets the line as one more argument, as parallel does. Each word
/// stays one argument (no shell, so no quoting bugs); with `shell`, the words are joined by
/// spaces into a `/bin/sh -c` script and each replacement is single-quoted into it.
public struct ExecTemplate: Sendable, Equatable {
    public let words: [String]
    public let shell: Bool
    /// Whether any word holds a replacement string.
    public let hasReplacements: Bool

    public init(command: [String], shell: Bool) throws(TaskError) {
        guard let first = command.first, !first.isEmpty else {
            throw TaskError("give the command to run after 'exec --', e.g. producer exec -- gzip -9 {}")
        }
        self.words = command
        self.shell = shell
        self.hasReplacements = command.contains { Self.containsReplacement($0) }
    }

    /// The `exec` task's arguments for input `line`, job `sequence`: `{"argv": [...]}` or
    /// `{"shell": "..."}`.
    public func payload(line: String, sequence: Int) -> [UInt8] {
        var json = ExecResultJSON()
        json.open()
        if shell {
            json.field("shell", string: script(line: line, sequence: sequence))
        } else {
            json.field("argv", strings: arguments(line: line, sequence: sequence))
        }
        json.close()
        return json.bytes
    }

    /// The argv for `line` (without `shell`).
    public func arguments(line: String, sequence: Int) -> [String] {
        var argv = words.map { Self.substitute($0, line: line, sequence: sequence, quoting: false) }
        if !hasReplacements { argv.append(line) }
        return argv
    }

    /// The `/bin/sh -c` script for `line` (with `shell`).
    public func script(line: String, sequence: Int) -> String {
        var script = words.map { Self.substitute($0, line: line, sequence: sequence, quoting: true) }
            .joined(separator: " ")
        if !hasReplacements { script += " " + Self.shellQuoted(line) }
        return script
    }

    static let replacements = ["{//}", "{/.}", "{/}", "{.}", "{#}", "{}"]

    static func containsReplacement(_ word: String) -> Bool { replacements.contains { word.contains($0) } }

    /// `word` with each replacement string expanded for `line`.
    static func substitute(_ word: String, line: String, sequence: Int, quoting: Bool) -> String {
        guard word.contains("{") else { return word }
        var out = ""
        var rest = Substring(word)
        while let open = rest.firstIndex(of: "{") {
            out += rest[..<open]
            let tail = rest[open...]
            guard let token = replacements.first(where: { tail.hasPrefix($0) }) else {
                out.append("{")
                rest = rest[rest.index(after: open)...]
                continue
            }
            let value = expand(token, line: line, sequence: sequence)
            out += quoting && token != "{#}" ? shellQuoted(value) : value
            rest = tail.dropFirst(token.count)
        }
        return out + rest
    }

    /// One replacement string's value, as GNU parallel computes it.
    public static func expand(_ token: String, line: String, sequence: Int) -> String {
        switch token {
        case "{}": line
        case "{.}": withoutExtension(line)
        case "{/}": basename(line)
        case "{//}": dirname(line)
        case "{/.}": withoutExtension(basename(line))
        case "{#}": "\(sequence)"
        default: token
        }
    }

    /// parallel's `s:\.[^/.]*$::`: the last `.` of the last path component and what follows.
    static func withoutExtension(_ path: String) -> String {
        guard let dot = path.lastIndex(of: "."), !path[dot...].contains("/") else { return path }
        return String(path[..<dot])
    }

    /// parallel's `s:^.*/::`: everything after the last `/`.
    static func basename(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    /// Perl's `File::Basename::dirname`, which parallel uses: `a/b` is `a`, `b` is `.`, `/b` is `/`.
    static func dirname(_ path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return "." }
        var directory = trimmed[..<slash]
        while directory.count > 1 && directory.hasSuffix("/") { directory = directory.dropLast() }
        return directory.isEmpty ? "/" : String(directory)
    }

    /// `text` as one shell word: bare when it is made of safe characters, else single-quoted.
    public static func shellQuoted(_ text: String) -> String {
        let safe = text.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || "-_./,:+=@%".utf8.contains(byte)
        }
        if safe && !text.isEmpty { return text }
        return "'" + text.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
    }
}
