import Foundation
import Synchronization
import Testing

@testable import WorkerPool

@Suite("A multi-threaded worker's shared queue and result batches")
struct SharedTaskQueueTests {
    /// A queue of tasks `ids`, as the link thread receives them.
    static func tasks(_ ids: some Sequence<UInt64>, epoch: UInt32 = 1) throws -> TaskQueue {
        var queue = TaskQueue()
        var malformed: [(id: UInt64, attempt: UInt16, error: WireError)] = []
        let records = ids.map { TaskRecord(id: $0, attempt: 1, name: "t", payload: []) }
        try queue.read(WireFormat.encode(records, epoch: epoch), receivedAt: 0, malformed: &malformed)
        return queue
    }

    static func result(_ id: UInt64) -> ResultRecord {
        ResultRecord(id: id, attempt: 1, status: .ok, payload: Array("\(id)".utf8))
    }

    static func ids(_ messages: [(message: WireFormat.MessageWriter, epoch: UInt32)]) throws -> [[UInt64]] {
        try messages.map { entry in
            var message = entry.message
            let bytes = message.withFinishedBytes { Array($0) }
            guard case .results(_, let records) = try WireFormat.decodeWorkerMessage(bytes) else { return [] }
            return records.map(\.id)
        }
    }

    @Test("results of one run share a message; another run's or a full message's start a new one")
    func batches() throws {
        var batcher = ResultBatcher(sender: 9)
        var closed: [Bool] = []
        closed.append(batcher.add(Self.result(1), epoch: 1, sendLimit: 1 << 20))
        closed.append(batcher.add(Self.result(2), epoch: 1, sendLimit: 1 << 20))
        closed.append(batcher.add(Self.result(3), epoch: 2, sendLimit: 1 << 20))
        #expect(closed == [false, false, true], "another run closes the message")
        #expect(batcher.unsent == [1, 2, 3])
        let tight = WireFormat.headerSize + 2 * Self.result(4).encodedSize
        closed = [batcher.add(Self.result(4), epoch: 2, sendLimit: tight)]
        closed.append(batcher.add(Self.result(5), epoch: 2, sendLimit: tight))
        #expect(closed == [false, true], "the byte limit closes it")
        let taken = batcher.takeAll()
        #expect(try Self.ids(taken) == [[1, 2], [3, 4], [5]])
        #expect(taken.map(\.epoch) == [1, 2, 2])
        #expect(batcher.isEmpty && batcher.unsent.isEmpty)
        #expect(batcher.takeAll().isEmpty)
    }

    @Test("threads take every task once, hand back every result, and leave when the process stops")
    func threadsShareTheQueue() throws {
        let queue = SharedTaskQueue(sender: 9, threads: 4)
        let ran = Mutex<[UInt64]>([])
        let done = DispatchGroup()
        for _ in 0..<4 {
            done.enter()
            Thread.detachNewThread {
                var last: SharedTaskQueue.Ended?
                while let task = queue.next(after: last, sendLimit: 1 << 20) {
                    ran.withLock { $0.append(task.id) }
                    last = SharedTaskQueue.Ended(result: Self.result(task.id), epoch: task.epoch)
                }
                queue.threadLeft()
                done.leave()
            }
        }
        queue.push(try Self.tasks(1...1_000))
        var sent: [UInt64] = []
        let deadline = Date().addingTimeInterval(30)
        while sent.count < 1_000 && Date() < deadline {
            sent += try Self.ids(queue.takeResults()).joined()
            // As the link thread does: threads out of work wake it to send what waits.
            var wakeup = pollfd(fd: queue.linkWakeup.fileDescriptor, events: Int16(POLLIN), revents: 0)
            if sent.count < 1_000 && poll(&wakeup, 1, 100) > 0 { queue.linkWakeup.drain() }
        }
        #expect(Set(sent) == Set(1...1_000) && sent.count == 1_000, "every result once")
        #expect(queue.held().isEmpty)
        queue.stop()
        #expect(done.wait(timeout: .now() + 30) == .success, "every thread left")
        #expect(queue.threadsLeft == 0)
        #expect(ran.withLock { $0.sorted() } == Array(1...1_000), "every task ran once")
    }
}
