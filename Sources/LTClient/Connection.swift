#if canImport(Glibc)
import Glibc
#endif
import LTProtocol

/// One blocking connection to ltd: send request lines, read reply and event lines. Not thread-safe; one per thread.
///
/// Requests get increasing numeric `id`s, and `request` returns the reply carrying that id, so replies can never be
/// confused with one another.
public final class Connection {
    public let socketPath: String
    public let fd: Int32
    public let reader: LineReader
    private var nextID = 1
    /// The process the bytes go through (ssh to another machine), or nil for a direct socket.
    private let transport: Transport?

    /// A connection over an open descriptor; `name` names it in errors (a socket path, or ssh://user@host).
    init(fd: Int32, name: String, transport: Transport?) {
        socketPath = name
        self.fd = fd
        self.transport = transport
        reader = LineReader(fd: fd, sourceName: name)
    }

    /// Connects to the daemon's Unix socket. Errors name the path and say how to start ltd.
    public convenience init(socketPath: String) throws {
        guard let address = UnixSocketAddress(socketPath) else {
            throw ClientError.socketPathTooLong(path: socketPath, limit: UnixSocketAddress.pathCapacity - 1)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ClientError.io(path: socketPath, operation: "socket", errno: errno) }
        let result = address.withSockaddr { Glibc.connect(fd, $0, $1) }
        guard result == 0 else {
            let code = errno
            close(fd)
            throw ClientError.cannotConnect(path: socketPath, errno: code)
        }
        do { try Self.checkDaemonIdentity(fd: fd, path: socketPath) } catch {
            close(fd)
            throw error
        }
        self.init(fd: fd, name: socketPath, transport: nil)
    }

    /// The daemon must run as the caller, as root, or as the service user: anyone else listening at the path (a
    /// socket planted in a shared directory) would read every request and could answer anything. The kernel says
    /// who listens (SO_PEERCRED, fixed when the daemon called listen).
    static func checkDaemonIdentity(fd: Int32, path: String) throws(ClientError) {
        var credentials: (pid: pid_t, uid: uid_t, gid: gid_t) = (0, 0, 0)
        var length = socklen_t(MemoryLayout.size(ofValue: credentials))
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0 else {
            throw .io(path: path, operation: "SO_PEERCRED", errno: errno)
        }
        let uid = credentials.uid
        guard uid != geteuid(), uid != 0, uid != ProcessIdentity.uid(ofUser: ProcessIdentity.serviceUser) else { return }
        throw .untrustedDaemon(path: path, uid: uid, user: ProcessIdentity.userName(of: uid))
    }

    deinit {
        close(fd)
        // ssh sees its input end and exits; wait for it briefly so no zombie outlives us, then make sure.
        guard let transport else { return }
        for _ in 0..<20 {
            if transport.exitStatus(wait: false) != nil { return }
            usleep(10_000)
        }
        kill(transport.pid, SIGTERM)
        _ = transport.exitStatus(wait: true)
    }

    /// Sends one JSON object as one line.
    public func send(_ message: JSONValue) throws {
        var writer = JSONWriter()
        writer.value(message)
        writer.newline()
        try writer.bytes.withUnsafeBytes { raw in
            guard var p = raw.baseAddress else { return }
            var left = raw.count
            while left > 0 {
                let n = Glibc.send(fd, p, left, Int32(MSG_NOSIGNAL))
                if n > 0 { p += n; left -= n; continue }
                if n < 0 && errno == EINTR { continue }
                if n < 0 && (errno == EPIPE || errno == ECONNRESET) { throw ClientError.connectionClosed(path: socketPath) }
                throw ClientError.io(path: socketPath, operation: "write", errno: n < 0 ? errno : EIO)
            }
        }
    }

    /// Reads and parses the next line. Throws `connectionClosed` at end of stream.
    public func readMessage() throws -> JSONValue {
        guard let line = try reader.readLine() else { throw endOfStream() }
        return try Self.parse(line, from: socketPath)
    }

    /// The error for a stream that ended while a reply was expected: over ssh, what became of ssh.
    public func endOfStream() -> ClientError {
        guard let transport else { return .connectionClosed(path: socketPath) }
        var status: Int32?
        for _ in 0..<100 where status == nil {
            status = transport.exitStatus(wait: false)
            if status == nil { usleep(20_000) }
        }
        return .transportEnded(endpoint: socketPath, command: transport.command.joined(separator: " "), status: status)
    }

    static func parse(_ line: [UInt8], from path: String) throws -> JSONValue {
        do {
            let value = try JSONParser.parse(line)
            guard value.objectMembers != nil else {
                throw ClientError.protocolViolation(path: path, detail: "a line that is not a JSON object")
            }
            return value
        } catch let failure as JSONParser.Failure {
            throw ClientError.protocolViolation(path: path, detail: "invalid JSON: \(failure)")
        }
    }

    /// Sends `{"op": op, "id": N, ...fields}` and returns the reply with id N. An `error` reply is thrown as
    /// `ClientError.daemon`, carrying the daemon's message (which lists known jobs, names the owner, and so on).
    /// Lines that are not this reply (events of a subscription on this connection) are handed to `other`.
    @discardableResult
    public func request(_ op: String, _ fields: [(key: String, value: JSONValue)] = [],
                        other: (JSONValue) throws -> Void = { _ in }) throws -> JSONValue {
        let id = nextID
        nextID += 1
        try send(.object([("op", .string(op)), ("id", JSONValue(id))] + fields))
        while true {
            let message = try readMessage()
            // An error about a whole line we sent may lack an id (bad_json); we send one request at a time, so it is ours.
            let isOurs = message["id"]?.intValue == id || (message["type"]?.stringValue == "error" && message["id"] == nil)
            guard isOurs else { try other(message); continue }
            if message["type"]?.stringValue == "error" { throw Self.daemonError(message) }
            return message
        }
    }

    public static func daemonError(_ message: JSONValue) -> ClientError {
        .daemon(code: message["code"]?.stringValue ?? "unknown",
                message: message["message"]?.stringValue ?? message.serialized,
                field: message["field"]?.stringValue,
                owner: message["owner"]?.intValue)
    }

    /// `hello`: the daemon's protocol version, version string, pid and the uid it sees for us.
    public func hello() throws -> JSONValue { try request("hello") }

    /// Asks the daemon (hello) whether it offers `capability`; throws `ClientError.missingCapability`, which says
    /// to upgrade the daemon, when it does not. `feature` completes "cannot …", e.g. "explain a step".
    public func require(_ capability: Capability, for feature: String) throws {
        let reply = try hello()
        guard Capability.advertised(in: reply).contains(capability.rawValue) else {
            throw ClientError.missingCapability(endpoint: socketPath, capability: capability.rawValue, feature: feature,
                                                daemonVersion: reply["version"]?.stringValue ?? "unknown")
        }
    }

    /// Subscribes to a job's events. Returns the `subscribed` reply; events follow on `reader`.
    public func subscribe(job: String, from: Int = 1, every: Int = 1, types: [String]? = nil) throws -> Subscription {
        var fields: [(key: String, value: JSONValue)] = [("job", .string(job)), ("from", JSONValue(from))]
        if every != 1 { fields.append(("every", JSONValue(every))) }
        if let types { fields.append(("types", .array(types.map { .string($0) }))) }
        let reply = try request("subscribe", fields)
        guard reply["type"]?.stringValue == "subscribed" else {
            throw ClientError.protocolViolation(path: socketPath, detail: "expected a `subscribed` reply, got \(reply.serialized)")
        }
        return Subscription(reply: reply)
    }
}

/// The `subscribed` reply.
public struct Subscription: Sendable {
    public let reply: JSONValue
    /// The job's last event's seq when the subscription was made (the point `--no-follow` stops at).
    public var lastSeq: Int { reply["last_seq"]?.intValue ?? 0 }
    public var from: Int { reply["from"]?.intValue ?? 1 }
    /// The job's state when subscribed.
    public var state: String { reply["state"]?.stringValue ?? "" }
    /// The job is over and `from` is past its last event: no events follow.
    public var isComplete: Bool { reply["complete"]?.boolValue ?? false }
}
