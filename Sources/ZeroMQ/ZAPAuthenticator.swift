import CZeroMQ
import Foundation
import Synchronization

/// One authentication request from libzmq (ZeroMQ RFC 27, ZAP).
public struct ZAPRequest: Sendable {
    public var domain: String
    /// The peer's address, e.g. `10.99.1.11`.
    public var address: String
    /// `NULL`, `PLAIN` or `CURVE`.
    public var mechanism: String
    /// For CURVE: the client's long-term public key.
    public var clientKey: CurveKey?
}

/// The ZAP handler of one context: libzmq asks it about every client that connects to a socket
/// with a ZAP domain, and refuses the connection unless it answers 200.
///
/// Without a handler libzmq accepts any CURVE client that knows the server's public key; with
/// this one bound, only the clients `decide` accepts get through. It answers on its own thread
/// until ``stop()`` (or deinit). Create it before binding the sockets it guards.
public final class ZAPAuthenticator: Sendable {
    public static let endpoint = "inproc://zeromq.zap.01"

    private let stopped = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)

    /// - Parameter decide: called on the handler's thread for each request; true accepts.
    public init(context: Context, decide: @escaping @Sendable (ZAPRequest) -> Bool) throws {
        let socket = try Socket(context, .rep)
        try socket.bind(Self.endpoint)
        let handed = SocketHandoff(socket)
        let thread = Thread { [self] in
            serve(handed.socket, decide: decide)
            finished.signal()
        }
        thread.name = "zap-handler"
        thread.start()
    }

    /// Stops answering and closes the handler's socket; waits for its thread.
    public func stop() {
        guard !stopped.exchange(true, ordering: .relaxed) else { return }
        finished.wait()
    }

    deinit { stop() }

    /// Moves the socket, bound on the creating thread, to the handler's thread, which alone uses
    /// it from then on (libzmq allows moving a socket across threads with a memory barrier;
    /// starting the thread is one).
    private final class SocketHandoff: @unchecked Sendable {
        let socket: Socket
        init(_ socket: Socket) { self.socket = socket }
    }

    private func serve(_ socket: Socket, decide: (ZAPRequest) -> Bool) {
        var poller = Poller()
        _ = poller.add(socket, .readable)
        let message = Message()
        while !stopped.load(ordering: .relaxed) {
            do {
                try poller.poll(timeoutMilliseconds: 100)
                while try socket.receive(into: message, dontWait: true) {
                    var frames = [message.bytes]
                    while message.hasMore, try socket.receive(into: message) { frames.append(message.bytes) }
                    try socket.send(multipart: reply(to: frames, decide: decide))
                }
            } catch {
                // Only a terminated context ends up here; nothing more will ask.
                return
            }
        }
    }

    private func reply(to frames: [[UInt8]], decide: (ZAPRequest) -> Bool) -> [[UInt8]] {
        let requestID = frames.count > 1 ? frames[1] : []
        // The user id of an accepted CURVE client is its public key (Z85): every message it
        // sends carries it as the `User-Id` property, which binds a sender to its key.
        func answer(_ code: String, _ text: String, userID: String = "") -> [[UInt8]] {
            [Array("1.0".utf8), requestID, Array(code.utf8), Array(text.utf8), Array(userID.utf8), []]
        }
        guard frames.count >= 6, frames[0] == Array("1.0".utf8) else {
            return answer("500", "malformed ZAP request")
        }
        let text = { (index: Int) in String(decoding: frames[index], as: UTF8.self) }
        let mechanism = text(5)
        let request = ZAPRequest(
            domain: text(2), address: text(3), mechanism: mechanism,
            clientKey: mechanism == "CURVE" && frames.count > 6 ? CurveKey(bytes: frames[6]) : nil)
        guard decide(request) else { return answer("400", "key not allowed") }
        return answer("200", "OK", userID: request.clientKey?.z85 ?? "")
    }
}
