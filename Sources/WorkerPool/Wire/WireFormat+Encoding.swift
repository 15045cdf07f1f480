extension WireFormat {
    /// Builds one message of `kind` record by record; `finish()` writes the final count.
    public struct MessageWriter {
        private var writer: ByteWriter
        public private(set) var count: UInt16 = 0
        public let kind: MessageKind

        public init(kind: MessageKind, sender: UInt32 = 0, epoch: UInt32 = 0, capacity: Int = 64) {
            self.kind = kind
            writer = ByteWriter(capacity: capacity)
            writer.append(WireFormat.version)
            writer.append(kind.rawValue)
            writer.append(UInt16(0))
            writer.append(sender)
            writer.append(epoch)
        }

        /// Starts a new message of `kind` in the same buffer, keeping its capacity: a sender that
        /// builds message after message allocates nothing per message.
        public mutating func reset(kind: MessageKind, sender: UInt32 = 0, epoch: UInt32 = 0) {
            precondition(kind == self.kind, "a writer keeps its kind")
            writer.removeAll()
            writer.append(WireFormat.version)
            writer.append(kind.rawValue)
            writer.append(UInt16(0))
            writer.append(sender)
            writer.append(epoch)
            count = 0
        }

        /// The message so far, with its final count, without giving up the buffer.
        public mutating func withFinishedBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
            writer.patch(count, at: 2)
            return try writer.withBytes(body)
        }

        public var byteCount: Int { writer.count }
        public var isFull: Bool { count == .max }

        public mutating func append(_ task: TaskRecord) {
            appendTask(
                id: task.id, attempt: task.attempt, timeLimitMilliseconds: task.timeLimitMilliseconds,
                name: task.name, payload: task.payload)
        }

        /// A task record from its parts, borrowed: the hot path of dispatch. A small record is
        /// laid out on the stack and goes in with one copy (each `append` costs some 80
        /// instructions); a large one in three, without copying its payload twice.
        public mutating func appendTask(
            id: UInt64, attempt: UInt16, timeLimitMilliseconds: UInt32, name: borrowing String,
            payload: borrowing [UInt8]
        ) {
            precondition(kind == .tasks && name.utf8.count <= WireFormat.maxNameLength)
            var name = copy name
            name.withUTF8 { name in
                payload.withUnsafeBufferPointer { payload in
                    let size = TaskRecord.fixedSize + name.count + payload.count
                    guard size <= Self.stackRecordLimit else {
                        withUnsafeTemporaryAllocation(byteCount: TaskRecord.fixedSize, alignment: 8) { fixed in
                            Self.layTaskFixed(id, attempt, timeLimitMilliseconds, name.count, payload.count, at: fixed)
                            writer.append(UnsafeRawBufferPointer(fixed))
                        }
                        writer.append(name)
                        writer.append(payload)
                        return
                    }
                    withUnsafeTemporaryAllocation(byteCount: size, alignment: 8) { record in
                        Self.layTaskFixed(id, attempt, timeLimitMilliseconds, name.count, payload.count, at: record)
                        let base = record.baseAddress! + TaskRecord.fixedSize
                        if let source = name.baseAddress { base.copyMemory(from: source, byteCount: name.count) }
                        if let source = payload.baseAddress {
                            (base + name.count).copyMemory(from: source, byteCount: payload.count)
                        }
                        writer.append(UnsafeRawBufferPointer(record))
                    }
                }
            }
            count += 1
        }

        /// Records up to this size are laid out on the stack before they are appended.
        private static let stackRecordLimit = 512

        /// id u64 | attempt u16 | time limit u32 | name length u8 | payload length u32
        private static func layTaskFixed(
            _ id: UInt64, _ attempt: UInt16, _ timeLimitMilliseconds: UInt32, _ nameCount: Int, _ payloadCount: Int,
            at raw: UnsafeMutableRawBufferPointer
        ) {
            raw.storeBytes(of: id.littleEndian, toByteOffset: 0, as: UInt64.self)
            raw.storeBytes(of: attempt.littleEndian, toByteOffset: 8, as: UInt16.self)
            raw.storeBytes(of: timeLimitMilliseconds.littleEndian, toByteOffset: 10, as: UInt32.self)
            raw.storeBytes(of: UInt8(nameCount), toByteOffset: 14, as: UInt8.self)
            raw.storeBytes(of: UInt32(payloadCount).littleEndian, toByteOffset: 15, as: UInt32.self)
        }

        /// The worker's hot path: the fixed part goes in with one copy, as for tasks.
        public mutating func append(_ result: ResultRecord) {
            precondition(kind == .results)
            // id u64 | attempt u16 | status u8 | run µs u32 | queued µs u32 | payload length u32
            var fixed: (UInt64, UInt64, UInt64) = (0, 0, 0)
            withUnsafeMutableBytes(of: &fixed) { raw in
                raw.storeBytes(of: result.id.littleEndian, toByteOffset: 0, as: UInt64.self)
                raw.storeBytes(of: result.attempt.littleEndian, toByteOffset: 8, as: UInt16.self)
                raw.storeBytes(of: result.status.rawValue, toByteOffset: 10, as: UInt8.self)
                raw.storeBytes(of: result.runMicroseconds.littleEndian, toByteOffset: 11, as: UInt32.self)
                raw.storeBytes(of: result.queuedMicroseconds.littleEndian, toByteOffset: 15, as: UInt32.self)
                raw.storeBytes(of: UInt32(result.payload.count).littleEndian, toByteOffset: 19, as: UInt32.self)
                writer.append(UnsafeRawBufferPointer(rebasing: raw[0..<ResultRecord.fixedSize]))
            }
            result.payload.withUnsafeBufferPointer { writer.append($0) }
            count += 1
        }

        public mutating func append(_ hello: WorkerHello) {
            precondition(kind == .hello)
            appendHelloFields(hello)
            count += 1
        }

        private mutating func appendHelloFields(_ hello: WorkerHello) {
            writer.append(hello.pid)
            writer.append(hello.threads)
            writer.append(hello.supervisor)
            writer.appendShortString(String(hello.name.utf8.prefix(WireFormat.maxNameLength)) ?? "")
            writer.appendShortString(String(hello.host.utf8.prefix(WireFormat.maxNameLength)) ?? "")
        }

        public mutating func append(_ goodbye: WorkerGoodbye) {
            precondition(kind == .goodbye)
            writer.append(goodbye.resultsSent)
            count += 1
        }

        public mutating func append(_ request: EventRequest) {
            precondition(kind == .eventRequest && request.name.utf8.count <= WireFormat.maxNameLength)
            writer.append(request.operation.rawValue)
            writer.appendShortString(request.name)
            count += 1
        }

        public mutating func append(_ snapshot: EventSnapshot) {
            precondition(kind == .eventState && snapshot.setEvents.count <= Int(UInt16.max))
            writer.patch(snapshot.epoch, at: 8)
            writer.append(snapshot.sequence)
            writer.append(UInt8(snapshot.shutdown ? 1 : 0))
            writer.append(snapshot.maxMessageSize)
            writer.append(UInt16(snapshot.setEvents.count))
            for name in snapshot.setEvents { writer.appendShortString(name) }
            count += 1
        }

        public mutating func append(releasedWorker id: UInt32) {
            precondition(kind == .released)
            writer.append(id)
            count += 1
        }

        public mutating func append(ready link: TaskLinkInfo, hello: WorkerHello) {
            precondition(kind == .ready)
            writer.append(link.link)
            writer.append(link.capacity)
            writer.append(link.resultDelayMicroseconds)
            appendHelloFields(hello)
            count += 1
        }

        public mutating func append(started task: TaskAttempt) {
            precondition(kind == .started)
            writer.append(task.id)
            writer.append(task.attempt)
            count += 1
        }

        public mutating func append(_ heartbeat: WorkerHeartbeat) {
            precondition(kind == .heartbeat)
            let held = heartbeat.held.prefix(Int(UInt16.max))
            writer.append(heartbeat.tasksDone)
            writer.append(heartbeat.tasksFailed)
            writer.append(heartbeat.restarts)
            writer.append(UInt16(held.count))
            for task in held {
                writer.append(task.id)
                writer.append(UInt8(task.running ? 1 : 0))
            }
            count += 1
        }

        public mutating func append(_ loss: WorkerLoss) {
            precondition(kind == .workerLost)
            let running = loss.running.prefix(Int(UInt16.max))
            writer.append(loss.process)
            writer.append(loss.reason.rawValue | (loss.signalled ? 0x80 : 0))
            writer.append(loss.detail)
            writer.append(loss.culprit)
            writer.append(UInt16(running.count))
            for task in running {
                writer.append(task.id)
                writer.append(task.attempt)
            }
            count += 1
        }

        /// The finished message.
        public consuming func finish() -> [UInt8] {
            writer.patch(count, at: 2)
            return writer.finished()
        }
    }

    public static func encode(_ tasks: [TaskRecord], epoch: UInt32 = 0) -> [UInt8] {
        var message = MessageWriter(
            kind: .tasks, epoch: epoch, capacity: headerSize + tasks.reduce(0) { $0 + $1.encodedSize })
        for task in tasks { message.append(task) }
        return message.finish()
    }

    public static func encode(_ results: [ResultRecord], sender: UInt32, epoch: UInt32 = 0) -> [UInt8] {
        var message = MessageWriter(
            kind: .results, sender: sender, epoch: epoch,
            capacity: headerSize + results.reduce(0) { $0 + $1.encodedSize })
        for result in results { message.append(result) }
        return message.finish()
    }

    public static func encode(_ hello: WorkerHello, sender: UInt32) -> [UInt8] {
        var message = MessageWriter(kind: .hello, sender: sender)
        message.append(hello)
        return message.finish()
    }

    /// `epoch`: the producer run whose results `goodbye` counts.
    public static func encode(_ goodbye: WorkerGoodbye, sender: UInt32, epoch: UInt32 = 0) -> [UInt8] {
        var message = MessageWriter(kind: .goodbye, sender: sender, epoch: epoch)
        message.append(goodbye)
        return message.finish()
    }

    public static func encode(_ request: EventRequest, sender: UInt32) -> [UInt8] {
        var message = MessageWriter(kind: .eventRequest, sender: sender)
        message.append(request)
        return message.finish()
    }

    public static func encode(_ snapshot: EventSnapshot) -> [UInt8] {
        var message = MessageWriter(kind: .eventState)
        message.append(snapshot)
        return message.finish()
    }

    public static func encode(ready link: TaskLinkInfo, hello: WorkerHello, sender: UInt32) -> [UInt8] {
        var message = MessageWriter(kind: .ready, sender: sender)
        message.append(ready: link, hello: hello)
        return message.finish()
    }

    public static func encode(started tasks: [TaskAttempt], sender: UInt32, epoch: UInt32 = 0) -> [UInt8] {
        var message = MessageWriter(
            kind: .started, sender: sender, epoch: epoch, capacity: headerSize + 10 * tasks.count)
        for task in tasks { message.append(started: task) }
        return message.finish()
    }

    public static func encode(_ heartbeat: WorkerHeartbeat, sender: UInt32, epoch: UInt32 = 0) -> [UInt8] {
        var message = MessageWriter(kind: .heartbeat, sender: sender, epoch: epoch)
        message.append(heartbeat)
        return message.finish()
    }

    /// `supervisor`: the sender id of the supervisor reporting (the one the process named in its hello).
    public static func encode(_ loss: WorkerLoss, supervisor: UInt32) -> [UInt8] {
        // No epoch: the supervisor does not follow the producer's runs; task attempts identify.
        var message = MessageWriter(kind: .workerLost, sender: supervisor)
        message.append(loss)
        return message.finish()
    }

    public static func encode(releasedWorkers ids: [UInt32], epoch: UInt32 = 0) -> [UInt8] {
        var message = MessageWriter(kind: .released, epoch: epoch)
        for id in ids { message.append(releasedWorker: id) }
        return message.finish()
    }
}
