/// Results waiting to be sent, as messages: one open message per producer run (epoch), closed
/// when full or when the epoch changes, so a send never mixes runs or exceeds the message limit.
struct ResultBatcher {
    let sender: UInt32
    /// Messages closed and ready to send, in order, with their epochs.
    private var closed: [(message: WireFormat.MessageWriter, epoch: UInt32)] = []
    /// The message being filled (empty when `count` is 0).
    private var open: WireFormat.MessageWriter
    private var openEpoch: UInt32 = 0
    /// Ids of the results not yet taken by ``takeAll()``: still held, for heartbeats.
    private(set) var unsent: [UInt64] = []
    /// Run time of the results in the open message, microseconds.
    private(set) var openMicroseconds: UInt64 = 0

    init(sender: UInt32) {
        self.sender = sender
        open = WireFormat.MessageWriter(kind: .results, sender: sender, capacity: 256)
    }

    var isEmpty: Bool { unsent.isEmpty }

    /// Adds a result; returns true when this closed a message (it is ready to send now).
    mutating func add(_ result: ResultRecord, epoch: UInt32, sendLimit: Int) -> Bool {
        var closedOne = false
        if open.count > 0 && (epoch != openEpoch || open.isFull || open.byteCount + result.encodedSize > sendLimit) {
            close()
            closedOne = true
        }
        if open.count == 0 && epoch != openEpoch {
            open.reset(kind: .results, sender: sender, epoch: epoch)
            openEpoch = epoch
        }
        open.append(result)
        openMicroseconds += UInt64(result.runMicroseconds)
        unsent.append(result.id)
        return closedOne
    }

    private mutating func close() {
        guard open.count > 0 else { return }
        // The next message will likely be as large as this one: room for it at once, rather than
        // growing from 256 bytes by doubling (a copy each time).
        var message = WireFormat.MessageWriter(
            kind: .results, sender: sender, epoch: openEpoch, capacity: max(256, open.byteCount))
        swap(&message, &open)
        closed.append((message, openEpoch))
        openMicroseconds = 0
    }

    /// Every message, the open one closed too; what waited is no longer counted as unsent.
    mutating func takeAll() -> [(message: WireFormat.MessageWriter, epoch: UInt32)] {
        close()
        var taken: [(message: WireFormat.MessageWriter, epoch: UInt32)] = []
        swap(&taken, &closed)
        unsent.removeAll(keepingCapacity: true)
        return taken
    }
}
