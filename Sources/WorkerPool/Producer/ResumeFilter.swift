/// Decides, item by item and on the feed's thread, what a journaled run does with its input:
/// run it, skip it (the journal holds its outcome), or stop because the input is not the one
/// the journal was written for. No I/O: the feed does the holding back and the handing over.
///
/// Resuming by position, item N must hash to what the journal recorded for task N, and the
/// first ``InputCheckpoint/tasks`` items must chain to the recorded digest. Items up to
/// ``verifyThrough`` are all checked before any of them may be sent (``isVerifying``), so a
/// changed input stops the run before a task leaves. Resuming by content, an item is skipped
/// while the journal holds an unmatched record with its digest.
struct ResumeFilter {
    enum Verdict: Equatable {
        case run
        case skip
        case stop(JournalError.Code, String)
    }

    private let mode: JournalResumeMode
    private var digestsByID: [UInt64: TaskDigest]
    private var remaining: [TaskDigest: Int]
    private let checkpoint: InputCheckpoint?
    /// The input items checked before any is released: the journal's highest id, or its last
    /// checkpoint if that went further.
    let verifyThrough: UInt64
    private(set) var chain = InputChain()

    /// A filter for a new journal: everything runs.
    init() {
        self.init(index: JournalIndex(), mode: .byPosition)
    }

    init(index: JournalIndex, mode: JournalResumeMode) {
        self.mode = mode
        digestsByID = index.digestsByID
        remaining = index.countsByDigest
        checkpoint = mode == .byPosition ? index.checkpoint : nil
        verifyThrough = mode == .byPosition ? max(index.highestID, index.checkpoint?.tasks ?? 0) : 0
    }

    /// Whether items read now must wait: the journal's part of the input is not yet all checked.
    var isVerifying: Bool { chain.count < verifyThrough }

    /// Items read so far.
    var count: UInt64 { chain.count }

    /// The input read so far, as the journal's header records it.
    var readSoFar: InputCheckpoint { InputCheckpoint(tasks: count, digest: chain.digest) }

    /// The next input item (ids count from 1 without gaps).
    mutating func admit(id: UInt64, digest: TaskDigest) -> Verdict {
        chain.append(digest)
        if mode == .byContent {
            guard let left = remaining[digest] else { return .run }
            remaining[digest] = left > 1 ? left - 1 : nil
            return .skip
        }
        var verdict = Verdict.run
        // A new journal has nothing to look up (most runs: no hashing per item here).
        if !digestsByID.isEmpty, let recorded = digestsByID.removeValue(forKey: id) {
            guard recorded == digest else {
                return .stop(
                    .inputChanged,
                    "input line \(id) differs from the journal: the input changed since it was written; "
                        + "use a new journal or --resume-by-content")
            }
            verdict = .skip
        }
        if let checkpoint, id == checkpoint.tasks, chain.digest != checkpoint.digest {
            return .stop(
                .inputChanged,
                "input lines 1-\(id) differ from the journal's record of them (a line with no outcome yet changed): "
                    + "the input changed since it was written; use a new journal or --resume-by-content")
        }
        return verdict
    }

    /// The input ended after ``count`` items: a stop if the journal recorded more.
    func inputEnded() -> Verdict {
        guard count < verifyThrough else { return .run }
        return .stop(
            .inputShrank,
            "the input has \(count) lines but the journal records \(verifyThrough): the input shrank since it was "
                + "written; use a new journal or --resume-by-content")
    }
}
