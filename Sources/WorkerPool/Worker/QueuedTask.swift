extension WorkerNode {
    /// A task taken from a ``TaskQueue`` to run. Its name and payload are read in place from the
    /// bytes of the message it came in, which it shares with that message's other tasks.
    struct QueuedTask: Sendable {
        /// A task record's fields, and where its name and payload are in its message: plain
        /// values, so a queue of them is listed and moved without retaining anything.
        struct Record {
            let id: UInt64
            let attempt: UInt16
            let timeLimitMilliseconds: UInt32
            let name: Range<Int>
            let payload: Range<Int>

            /// `task`, read from the message whose bytes start at `base`.
            init(_ task: WireFormat.TaskView, in base: UnsafeRawPointer) {
                id = task.id
                attempt = task.attempt
                timeLimitMilliseconds = task.timeLimitMilliseconds
                let nameStart = task.name.baseAddress.map { $0 - base } ?? 0
                name = nameStart..<nameStart + task.name.count
                let payloadStart = task.payload.baseAddress.map { $0 - base } ?? 0
                payload = payloadStart..<payloadStart + task.payload.count
            }
        }

        private let record: Record
        private let message: [UInt8]
        /// The producer run it belongs to (its message's epoch).
        let epoch: UInt32
        /// When it arrived (monotonic nanoseconds): results say how long a task queued.
        let receivedAt: UInt64

        init(_ record: Record, in message: [UInt8], epoch: UInt32, receivedAt: UInt64) {
            self.record = record
            self.message = message
            self.epoch = epoch
            self.receivedAt = receivedAt
        }

        var id: UInt64 { record.id }
        var attempt: UInt16 { record.attempt }
        var timeLimitMilliseconds: UInt32 { record.timeLimitMilliseconds }

        /// Calls `body` with the task's name, valid UTF-8 (no String made).
        func withName<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
            message.withUnsafeBufferPointer { body(UnsafeBufferPointer(rebasing: $0[record.name])) }
        }

        /// Calls `body` with the task's payload, valid only during the call.
        func withPayload<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
            message.withUnsafeBufferPointer { body(UnsafeBufferPointer(rebasing: $0[record.payload])) }
        }

        /// The task's name as a String, for messages.
        var name: String { withName { String(decoding: $0, as: UTF8.self) } }
    }
}
