import Foundation
import ZeroMQ

/// The producer's CURVE settings: every socket it binds is a CURVE server.
public struct CurveServerSettings: Sendable {
    public var keys: CurveKeyPair
    /// Worker public keys allowed to connect; nil lets in any client that knows the producer's
    /// public key (only with `--curve-allow-any`).
    public var allowedClients: Set<CurveKey>?

    public init(keys: CurveKeyPair, allowedClients: Set<CurveKey>?) {
        self.keys = keys
        self.allowedClients = allowedClients
    }

    /// The ZAP domain of the pool's sockets.
    public static let zapDomain = "zmq-worker-pool"

    func apply(to socket: Socket) throws {
        try socket.makeCurveServer(keys, zapDomain: Self.zapDomain)
    }
}

/// A worker's (or supervisor's) CURVE settings: every socket it connects is a CURVE client.
public struct CurveClientSettings: Sendable {
    public var keys: CurveKeyPair
    public var serverKey: CurveKey

    public init(keys: CurveKeyPair, serverKey: CurveKey) {
        self.keys = keys
        self.serverKey = serverKey
    }

    func apply(to socket: Socket) throws {
        try socket.makeCurveClient(keys, serverKey: serverKey)
    }
}

extension Optional where Wrapped == CurveClientSettings {
    func apply(to socket: Socket) throws { try self?.apply(to: socket) }
}

/// Why a worker could not talk to its producer; permanent, so it exits instead of retrying.
public enum SecurityFailure: Sendable, Equatable, CustomStringConvertible {
    /// The producer refused this worker's key (ZAP status, e.g. 400).
    case refused(status: UInt32)
    /// One side uses CURVE and the other plaintext.
    case mechanismMismatch(workerUsesCurve: Bool)
    /// The producer hung up during the CURVE handshake again and again: the worker does not
    /// hold the producer's public key.
    case handshakeRejected(seconds: Int)

    /// The worker's exit status: 77 (EX_NOPERM) for a refused key, 78 (EX_CONFIG) for a mismatch.
    public var exitCode: Int32 {
        switch self {
        case .refused: 77
        case .mechanismMismatch, .handshakeRejected: 78
        }
    }

    /// Every exit status a security failure uses.
    public static let exitCodes: Set<Int32> = [77, 78]

    public var description: String {
        switch self {
        case .refused(let status):
            "the producer refused this worker's CURVE key (ZAP status \(status)): add its public key to the producer's --curve-allow"
        case .mechanismMismatch(workerUsesCurve: true):
            "the producer does not use CURVE but this worker does: drop --curve-key/--curve-server-key or start the producer with --curve-key"
        case .handshakeRejected(let seconds):
            "for \(seconds) s every connection was closed during the CURVE handshake: --curve-server-key is probably not the producer's public key"
        case .mechanismMismatch(workerUsesCurve: false):
            "the producer requires CURVE encryption: start this worker with --curve-key and --curve-server-key"
        }
    }
}

/// Reads CURVE keys from files in the ZeroMQ certificate format that `producer keygen`, czmq and
/// pyzmq write (`public-key = "..."`, `secret-key = "..."` lines), or from a bare 40-character
/// Z85 key on a line of its own.
public enum CurveKeyFile {
    public struct LoadError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Writes a certificate pair: `NAME.pub` (public key, shareable) and `NAME.key` (both keys,
    /// readable by the owner only). Refuses to overwrite either.
    public static func write(_ keys: CurveKeyPair, name: String, directory: String) throws -> (
        publicFile: String, secretFile: String
    ) {
        let base = URL(fileURLWithPath: directory).appendingPathComponent(name).path
        let publicPath = base + ".pub"
        let secretPath = base + ".key"
        for path in [publicPath, secretPath] where FileManager.default.fileExists(atPath: path) {
            throw LoadError(description: "\(path) exists; not overwriting a key")
        }
        let stamp = ISO8601DateFormatter().string(from: Date())
        let header = "#   ****  Generated on \(stamp) by producer keygen  ****\n"
        let publicText =
            header + "#   ZeroMQ CURVE Public Certificate: give this file to the other side.\n\n"
            + "metadata\ncurve\n    public-key = \"\(keys.publicKey.z85)\"\n"
        let secretText =
            header + "#   ZeroMQ CURVE **Secret** Certificate: DO NOT share this file.\n\n"
            + "metadata\ncurve\n    public-key = \"\(keys.publicKey.z85)\"\n"
            + "    secret-key = \"\(keys.secretKey.z85)\"\n"
        try writeFile(secretPath, secretText, mode: 0o600)
        try writeFile(publicPath, publicText, mode: 0o644)
        return (publicPath, secretPath)
    }

    /// The key pair in a secret certificate (or a file holding only the Z85 secret key).
    public static func loadKeyPair(path: String) throws -> CurveKeyPair {
        let text = try read(path)
        let fields = parse(text)
        guard let secret = fields.secret ?? (fields.bare.count == 1 ? fields.bare.first : nil) else {
            throw LoadError(description: "\(path) holds no CURVE secret key (expected a file from `producer keygen`)")
        }
        let pair = try CurveKeyPair(secretKey: secret)
        if let stated = fields.publicKeys.first, stated != pair.publicKey {
            throw LoadError(description: "\(path): its public key does not belong to its secret key")
        }
        return pair
    }

    /// A peer's public key: a Z85 key given literally, or a certificate file's public key.
    public static func loadPublicKey(_ argument: String) throws -> CurveKey {
        if !FileManager.default.fileExists(atPath: argument), let key = CurveKey(z85: argument) { return key }
        let fields = parse(try read(argument))
        guard let key = fields.publicKeys.first ?? (fields.bare.count == 1 ? fields.bare.first : nil) else {
            throw LoadError(description: "\(argument) holds no CURVE public key")
        }
        return key
    }

    /// An allowlist: a certificate file, a file of Z85 keys one per line, or a directory whose
    /// `*.pub` files are read (secret `*.key` files beside them are ignored).
    public static func loadAllowlist(_ path: String) throws -> Set<CurveKey> {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw LoadError(description: "\(path): no such file or directory")
        }
        let files: [String]
        if isDirectory.boolValue {
            let names = try FileManager.default.contentsOfDirectory(atPath: path)
            files = names.filter { $0.hasSuffix(".pub") }.sorted().map { path + "/" + $0 }
            if files.isEmpty { throw LoadError(description: "\(path) holds no *.pub files") }
        } else {
            files = [path]
        }
        var keys = Set<CurveKey>()
        for file in files {
            let fields = parse(try read(file))
            if fields.secret != nil && !isDirectory.boolValue {
                throw LoadError(description: "\(file) is a secret certificate; allow the .pub file instead")
            }
            keys.formUnion(fields.publicKeys)
            keys.formUnion(fields.bare)
        }
        if keys.isEmpty { throw LoadError(description: "\(path) holds no CURVE public key") }
        return keys
    }

    private struct Fields {
        var publicKeys: [CurveKey] = []
        var secret: CurveKey?
        var bare: [CurveKey] = []
    }

    private static func parse(_ text: String) -> Fields {
        var fields = Fields()
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            // A bare key first: the Z85 alphabet has `#` and `=`, so a key may look like a
            // comment or an assignment. Nothing else is 40 Z85 characters with no space.
            if let key = CurveKey(z85: line) {
                fields.bare.append(key)
                continue
            }
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let equals = line.firstIndex(of: "=") else { continue }
            let name = line[..<equals].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
                .trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            guard let key = CurveKey(z85: value) else { continue }
            if name == "public-key" { fields.publicKeys.append(key) }
            if name == "secret-key" { fields.secret = key }
        }
        return fields
    }

    private static func read(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LoadError(description: "cannot read \(path)")
        }
        return String(decoding: data, as: UTF8.self)
    }

    private static func writeFile(_ path: String, _ text: String, mode: mode_t) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else {
            throw LoadError(description: "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        guard Glibc.write(fd, bytes, bytes.count) == bytes.count else {
            throw LoadError(description: "cannot write \(path): \(String(cString: strerror(errno)))")
        }
        fchmod(fd, mode)
    }
}
