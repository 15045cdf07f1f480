import CZeroMQ

/// A CURVE key (public or secret) in its Z85 text form: 40 printable characters for 32 bytes.
public struct CurveKey: Sendable, Hashable, CustomStringConvertible {
    /// The 40-character Z85 text.
    public let z85: String

    /// Accepts exactly 40 Z85 characters (surrounding whitespace is trimmed); nil otherwise.
    public init?(z85 text: some StringProtocol) {
        let trimmed = text.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed()
        let candidate = String(trimmed)
        guard candidate.utf8.count == 40 else { return nil }
        var decoded = [UInt8](repeating: 0, count: 32)
        guard zmq_z85_decode(&decoded, candidate) != nil else { return nil }
        z85 = candidate
    }

    /// The 32 raw key bytes.
    public var bytes: [UInt8] {
        var decoded = [UInt8](repeating: 0, count: 32)
        _ = zmq_z85_decode(&decoded, z85)
        return decoded
    }

    /// Encodes 32 raw key bytes.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 32 else { return nil }
        var text = [CChar](repeating: 0, count: 41)
        guard zmq_z85_encode(&text, bytes, 32) != nil else { return nil }
        self.init(z85: z85Text(text))
    }

    /// Shows only the start of the key: enough to tell keys apart in logs.
    public var description: String { "\(z85.prefix(8))…" }
}

/// The 40 characters libzmq wrote into a 41-byte, NUL-terminated buffer.
private func z85Text(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix(40).map(UInt8.init(bitPattern:)), as: UTF8.self)
}

/// A CURVE key pair.
public struct CurveKeyPair: Sendable, Equatable {
    public let publicKey: CurveKey
    public let secretKey: CurveKey

    /// Whether this libzmq was built with CURVE (libsodium).
    public static var isAvailable: Bool { zmq_has("curve") != 0 }

    /// A fresh random key pair.
    public static func generate() throws -> CurveKeyPair {
        var publicText = [CChar](repeating: 0, count: 41)
        var secretText = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&publicText, &secretText) == 0 else {
            throw ZeroMQError.last("zmq_curve_keypair")
        }
        guard let publicKey = CurveKey(z85: z85Text(publicText)),
            let secretKey = CurveKey(z85: z85Text(secretText))
        else { throw ZeroMQError(errno: EINVAL, operation: "zmq_curve_keypair") }
        return CurveKeyPair(publicKey: publicKey, secretKey: secretKey)
    }

    /// The pair for `secretKey`, deriving its public key.
    public init(secretKey: CurveKey) throws {
        var publicText = [CChar](repeating: 0, count: 41)
        guard zmq_curve_public(&publicText, secretKey.z85) == 0,
            let publicKey = CurveKey(z85: z85Text(publicText))
        else { throw ZeroMQError.last("zmq_curve_public") }
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    private init(publicKey: CurveKey, secretKey: CurveKey) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }
}

extension Socket {
    /// Makes this socket a CURVE server: every connection is encrypted and every client is
    /// checked by the ZAP handler of this context (see ``ZAPAuthenticator``) under `domain`.
    /// Call before `bind`.
    public func makeCurveServer(_ keys: CurveKeyPair, zapDomain domain: String) throws {
        try setOption(ZMQ_CURVE_SERVER, Int32(1))
        try setOption(ZMQ_CURVE_SECRETKEY, bytes: keys.secretKey.bytes)
        try setOption(ZMQ_ZAP_DOMAIN, bytes: Array(domain.utf8))
    }

    /// Makes this socket a CURVE client of the server whose public key is `serverKey`.
    /// Call before `connect`.
    public func makeCurveClient(_ keys: CurveKeyPair, serverKey: CurveKey) throws {
        try setOption(ZMQ_CURVE_SERVERKEY, bytes: serverKey.bytes)
        try setOption(ZMQ_CURVE_PUBLICKEY, bytes: keys.publicKey.bytes)
        try setOption(ZMQ_CURVE_SECRETKEY, bytes: keys.secretKey.bytes)
    }
}

extension SocketEvent.Kind {
    public static let handshakeFailedNoDetail = SocketEvent.Kind(rawValue: ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
    /// Any of the three handshake failures.
    public static let handshakeFailed: SocketEvent.Kind = [
        .handshakeFailedNoDetail, .handshakeFailedProtocol, .handshakeFailedAuthentication,
    ]
}

extension SocketEvent {
    /// For `.handshakeFailedProtocol`: the peers use different security mechanisms (for example a
    /// plaintext client and a CURVE server).
    public var isMechanismMismatch: Bool {
        kind == .handshakeFailedProtocol && Int32(bitPattern: value) == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH
    }

    /// For `.handshakeFailedProtocol`: a CURVE message did not decrypt (typically a client
    /// holding the wrong server key).
    public var isCryptographicError: Bool {
        kind == .handshakeFailedProtocol && Int32(bitPattern: value) == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC
    }
}
