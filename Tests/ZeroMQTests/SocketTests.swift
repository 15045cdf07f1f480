import Foundation
import Testing

@testable import ZeroMQ

@Suite("ZeroMQ sockets")
struct SocketTests {
    let context: Context

    init() throws { context = try Context() }

    @Test("PUSH to PULL over inproc carries a multipart message intact")
    func multipartInproc() throws {
        let pull = try Socket(context, .pull)
        try pull.bind("inproc://multipart")
        let push = try Socket(context, .push)
        try push.connect("inproc://multipart")
        let frames: [[UInt8]] = [Array("header".utf8), [], Array(repeating: 7, count: 1000)]
        try push.send(multipart: frames)
        try pull.setReceiveTimeout(milliseconds: 5_000)
        #expect(try pull.receiveMultipart() == frames)
    }

    @Test("a message larger than 64 KiB arrives whole over tcp with a port chosen by the system")
    func largeMessageTCP() throws {
        let pull = try Socket(context, .pull)
        try pull.bind("tcp://127.0.0.1:*")
        let endpoint = try pull.lastEndpoint
        #expect(endpoint.hasPrefix("tcp://127.0.0.1:") && !endpoint.hasSuffix(":*"))
        let push = try Socket(context, .push)
        try push.connect(endpoint)
        let payload = (0..<(200 * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try push.send(payload)
        let message = Message()
        try pull.setReceiveTimeout(milliseconds: 5_000)
        #expect(try pull.receive(into: message))
        #expect(message.count == payload.count)
        #expect(message.bytes == payload)
        #expect(!message.hasMore)
    }

    @Test("a non-blocking receive with nothing queued returns false instead of throwing")
    func nonBlockingReceive() throws {
        let pull = try Socket(context, .pull)
        try pull.bind("inproc://empty")
        #expect(try pull.receive(into: Message(), dontWait: true) == false)
        #expect(try pull.receiveMultipart(dontWait: true) == nil)
    }

    @Test("errors keep errno and libzmq's text")
    func errorsKeepErrno() throws {
        let socket = try Socket(context, .push)
        let error = #expect(throws: ZeroMQError.self) { try socket.bind("nonsense://x") }
        #expect(error?.errno == EPROTONOSUPPORT)
        #expect(error?.code == .invalidArgument)
        #expect(error?.description.contains("nonsense://x") == true)

        let first = try Socket(context, .pull)
        try first.bind("tcp://127.0.0.1:*")
        let taken = try first.lastEndpoint
        let second = try Socket(context, .pull)
        let inUse = #expect(throws: ZeroMQError.self) { try second.bind(taken) }
        #expect(inUse?.code == .addressInUse)
    }

    @Test("the poller reports a readable socket and a signalled file descriptor")
    func poller() throws {
        let pull = try Socket(context, .pull)
        try pull.bind("inproc://poll")
        let push = try Socket(context, .push)
        try push.connect("inproc://poll")
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer {
            close(fds[0])
            close(fds[1])
        }
        var poller = Poller()
        let socketIndex = poller.add(pull, .readable)
        let fdIndex = poller.add(fileDescriptor: fds[0], .readable)
        #expect(try poller.poll(timeoutMilliseconds: 0) == 0)
        try push.send(Array("x".utf8))
        #expect(try poller.poll(timeoutMilliseconds: 5_000) == 1)
        #expect(poller.events(at: socketIndex).contains(.readable))
        #expect(!poller.events(at: fdIndex).contains(.readable))
        _ = write(fds[1], "y", 1)
        _ = try pull.receiveMultipart()
        #expect(try poller.poll(timeoutMilliseconds: 5_000) == 1)
        #expect(poller.events(at: fdIndex).contains(.readable))
    }

    @Test("XPUB with verbose on hands every subscription to the application, and SUB receives after it")
    func xpubSubscriptions() throws {
        let xpub = try Socket(context, .xpub)
        try xpub.setXPubVerbose(true)
        try xpub.bind("inproc://events")
        try xpub.setReceiveTimeout(milliseconds: 5_000)
        var subscribers: [Socket] = []
        for _ in 0..<2 {
            let sub = try Socket(context, .sub)
            try sub.subscribe()
            try sub.connect("inproc://events")
            try sub.setReceiveTimeout(milliseconds: 5_000)
            subscribers.append(sub)
            // One subscription message ([1] + empty topic) per subscriber, not one per topic.
            #expect(try xpub.receiveMultipart() == [[1]])
        }
        try xpub.send(Array("state".utf8))
        for sub in subscribers { #expect(try sub.receiveMultipart() == [Array("state".utf8)]) }
    }

    @Test("a receiver with a size limit drops an oversized message and keeps receiving")
    func maxMessageSize() throws {
        let pull = try Socket(context, .pull)
        try pull.setMaxMessageSize(1024)
        try pull.setReceiveTimeout(milliseconds: 2_000)
        try pull.bind("tcp://127.0.0.1:*")
        let endpoint = try pull.lastEndpoint
        let big = try Socket(context, .push)
        try big.connect(endpoint)
        try big.send([UInt8](repeating: 1, count: 4096))
        let good = try Socket(context, .push)
        try good.connect(endpoint)
        try good.send(Array("small".utf8))
        #expect(try pull.receiveMultipart() == [Array("small".utf8)])
    }

    @Test("the monitor reports the handshake of a connection")
    func monitorHandshake() throws {
        let pull = try Socket(context, .pull)
        try pull.bind("tcp://127.0.0.1:*")
        let push = try Socket(context, .push)
        try push.startMonitor("inproc://monitor-test", events: .handshakeSucceeded)
        let monitor = try SocketMonitor(context, endpoint: "inproc://monitor-test")
        try monitor.socket.setReceiveTimeout(milliseconds: 5_000)
        try push.connect(try pull.lastEndpoint)
        let event = try monitor.next()
        #expect(event?.kind == .handshakeSucceeded)
        #expect(event?.endpoint == (try pull.lastEndpoint))
    }
}
