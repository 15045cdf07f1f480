import DequeModule

/// Tasks received and not yet started, in order, kept per message: a task's name and payload stay
/// in the bytes of the message it came in, so receiving copies each message once instead of
/// making a payload array and a String per task, and nothing per task is retained or released
/// until it is taken. Listing the queued ids (for heartbeats) copies no task either.
struct TaskQueue {
    /// One message's tasks, of which `records[next...]` are still queued.
    private struct Received {
        let bytes: [UInt8]
        let epoch: UInt32
        let receivedAt: UInt64
        var records: [WorkerNode.QueuedTask.Record]
        var next = 0

        mutating func take() -> WorkerNode.QueuedTask {
            defer { next += 1 }
            return WorkerNode.QueuedTask(records[next], in: bytes, epoch: epoch, receivedAt: receivedAt)
        }
    }

    private var messages = Deque<Received>()
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    /// Queues the tasks of `message` (the bytes of a whole tasks message) and appends the records
    /// that do not read, with the reason, to `malformed`; returns the message's epoch. Throws,
    /// adding nothing, when the message as a whole is unusable.
    @discardableResult
    mutating func read(
        _ message: [UInt8], receivedAt: UInt64, malformed: inout [(id: UInt64, attempt: UInt16, error: WireError)]
    ) throws(WireError) -> UInt32 {
        var broken: [(id: UInt64, attempt: UInt16, error: WireError)] = []
        let read = message.withUnsafeBytes { bytes in
            Result { () throws(WireError) in
                var reader = try WireFormat.TaskMessageReader(bytes)
                var records: [WorkerNode.QueuedTask.Record] = []
                records.reserveCapacity(Int(reader.header.count))
                while let record = try reader.next() {
                    switch record {
                    case .task(let task): records.append(WorkerNode.QueuedTask.Record(task, in: bytes.baseAddress!))
                    case .malformed(let id, let attempt, let error): broken.append((id, attempt, error))
                    }
                }
                return (epoch: reader.header.epoch, records: records)
            }
        }
        let (epoch, records) = try read.get()
        malformed += broken
        if !records.isEmpty {
            messages.append(Received(bytes: message, epoch: epoch, receivedAt: receivedAt, records: records))
            count += records.count
        }
        return epoch
    }

    /// Queues every task of `other` after these.
    mutating func append(contentsOf other: TaskQueue) {
        messages.append(contentsOf: other.messages)
        count += other.count
    }

    /// Takes the first task; the queue must not be empty. (Not an optional: destroying a
    /// `QueuedTask?` goes through the runtime's generic value witnesses, some 60 instructions.)
    mutating func removeFirst() -> WorkerNode.QueuedTask {
        precondition(!messages.isEmpty, "no task queued")
        let task = messages[0].take()
        if messages[0].next == messages[0].records.count { messages.removeFirst() }
        count -= 1
        return task
    }

    /// Appends the ids of the queued tasks, in order, to `ids`.
    func appendIDs(to ids: inout [UInt64]) {
        for message in messages {
            for index in message.next..<message.records.count { ids.append(message.records[index].id) }
        }
    }
}
