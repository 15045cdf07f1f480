import CZeroMQ

/// The socket patterns this project uses.
public enum SocketType: Sendable {
    case push, pull, pub, sub, xpub, xsub, pair, req, rep, dealer, router

    var rawValue: Int32 {
        switch self {
        case .push: ZMQ_PUSH
        case .pull: ZMQ_PULL
        case .pub: ZMQ_PUB
        case .sub: ZMQ_SUB
        case .xpub: ZMQ_XPUB
        case .xsub: ZMQ_XSUB
        case .pair: ZMQ_PAIR
        case .req: ZMQ_REQ
        case .rep: ZMQ_REP
        case .dealer: ZMQ_DEALER
        case .router: ZMQ_ROUTER
        }
    }
}
