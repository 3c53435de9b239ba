import LTProtocol

/// What all clients together may cost the daemon: connections, in all and per uid, and bytes of unfinished request
/// lines. Each limit logs one line when it starts refusing and one when there is room again, never one per refusal,
/// so a flood cannot flood the journal too. Owned by the server, on the loop thread.
struct ClientLimits {
    let maxConnections: Int
    let maxConnectionsPerUser: Int
    let maxPendingLineBytes: Int
    /// Admitted connections that have not closed (refused ones never count).
    private(set) var open = 0
    private var openByUID: [UInt32: Int] = [:]
    /// Bytes read without their `\n` yet, for all connections together.
    private(set) var pendingLineBytes = 0
    private var connectionsFull = Refusals()
    private var userFull: [UInt32: Refusals] = [:]
    private var linesFull = Refusals()

    init(_ configuration: DaemonConfiguration) {
        maxConnections = configuration.maxConnections
        maxConnectionsPerUser = configuration.maxConnectionsPerUser
        maxPendingLineBytes = configuration.maxPendingLineBytes
    }

    /// Counts a new connection of `uid`, or returns the error it is refused with.
    mutating func admit(uid: UInt32) -> ProtocolError? {
        let limit = maxConnections, perUser = maxConnectionsPerUser
        if open >= limit {
            connectionsFull.refuse("connection limit reached (\(limit) open, --max-connections): refusing new connections until some close")
            return ProtocolError(.tooManyConnections, "ltd serves at most \(limit) connections at once and all are in use; try again shortly (its administrator can raise --max-connections)")
        }
        let mine = openByUID[uid, default: 0]
        if mine >= perUser {
            userFull[uid, default: Refusals()].refuse("connection limit of uid \(uid) reached (\(perUser) open, --max-connections-per-user): refusing its new connections until some close")
            return ProtocolError(.tooManyConnections, "uid \(uid) already has \(mine) connections open, the most ltd allows one user (--max-connections-per-user \(perUser)); close some and try again")
        }
        open += 1
        openByUID[uid] = mine + 1
        return nil
    }

    /// An admitted connection of `uid` has closed.
    mutating func release(uid: UInt32) {
        open -= 1
        let mine = openByUID[uid, default: 1] - 1
        openByUID[uid] = mine > 0 ? mine : nil
        if open < maxConnections {
            connectionsFull.clear { "below the connection limit again (\($0) connection(s) refused meanwhile)" }
        }
        if mine < maxConnectionsPerUser, var full = userFull.removeValue(forKey: uid) {
            full.clear { "uid \(uid) below its connection limit again (\($0) connection(s) refused meanwhile)" }
        }
    }

    /// Takes `count` more bytes of unfinished line if they fit under the limit; if not, counts a refusal and
    /// returns the error for the connection that asked.
    mutating func holdLineBytes(_ count: Int) -> ProtocolError? {
        let limit = maxPendingLineBytes
        guard count > limit - pendingLineBytes else {
            pendingLineBytes += count
            return nil
        }
        linesFull.refuse("unfinished request lines reached the limit of \(limit) bytes in all (--max-pending-line-bytes): refusing connections that send more")
        return ProtocolError(.busy, "ltd holds as many unfinished request lines as it will (\(limit) bytes for all clients); end each request with a newline, and try again shortly")
    }

    /// `count` bytes of unfinished line were completed or dropped. The limit counts as left below half of it, so
    /// that a connection hovering at the edge logs once.
    mutating func releaseLineBytes(_ count: Int) {
        pendingLineBytes -= count
        if pendingLineBytes < maxPendingLineBytes / 2 {
            linesFull.clear { "unfinished request lines well below their limit again (\($0) connection(s) refused meanwhile)" }
        }
    }
}

/// Refusals since a limit was reached, nil while it is not: one log line at the first refusal, one when cleared.
private struct Refusals {
    private var count: Int?

    mutating func refuse(_ message: @autoclosure () -> String) {
        if count == nil { Log.warning(message()) }
        count = (count ?? 0) + 1
    }

    mutating func clear(_ message: (Int) -> String) {
        guard let count else { return }
        Log.info(message(count))
        self.count = nil
    }
}
