#if canImport(Glibc)
import Glibc
#endif
import LTProtocol

// The `stats` op (docs/PROTOCOL.md, "stats"), in the spirit of Redis's INFO and CLIENT LIST: what the daemon holds
// (connections, queued output, unfinished lines, descriptors, memory, jobs, bytes on disk), how late its loop runs,
// and each limit with its current use. Totals are for anyone; the rows per user are the caller's own unless the
// caller is root or in the admin group.

/// How late the loop runs: the housekeeping timer is due every `interval`; each firing records how much later than
/// that it came (a long callback or a blocked loop delays it). Loop thread only.
final class LoopLag {
    let intervalNanoseconds: UInt64
    private var lastFiring: UInt64?
    private(set) var lastNanoseconds: UInt64 = 0
    private(set) var maxNanoseconds: UInt64 = 0

    init(intervalMilliseconds: UInt64) { intervalNanoseconds = intervalMilliseconds * 1_000_000 }

    /// The timer fired now.
    func fired() {
        let now = Clock.monotonicNanoseconds()
        if let lastFiring {
            let late = now &- lastFiring > intervalNanoseconds ? now &- lastFiring &- intervalNanoseconds : 0
            lastNanoseconds = late
            maxNanoseconds = max(maxNanoseconds, late)
        }
        lastFiring = now
    }
}

/// What this process holds, from /proc/self.
enum ProcessUsage {
    /// Open file descriptors (entries of /proc/self/fd, less the one that lists them).
    static func openDescriptors() -> Int? {
        guard let directory = opendir("/proc/self/fd") else { return nil }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            if entry.pointee.d_name.0 != UInt8(ascii: ".") { count += 1 }
        }
        return count - 1
    }

    /// Resident set size in bytes (/proc/self/statm's second field, in pages).
    static func residentBytes() -> Int? {
        guard let bytes = try? FileIO.readAll(path: "/proc/self/statm", limit: 4096) else { return nil }
        let fields = String(decoding: bytes, as: UTF8.self).split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages.multipliedReportingOverflow(by: Int(sysconf(Int32(_SC_PAGESIZE)))).partialValue
    }
}

/// What the daemon holds now, counted in one walk over its admitted connections and its jobs: the `stats` op and
/// the systemd STATUS= line both read it. Loop thread only.
struct Census {
    /// Connections that follow a job, and that feed an external one.
    var subscribers = 0, publishers = 0
    /// Output queued for clients in all and on the connection with the most; bytes read without their `\n` yet.
    var queuedBytes = 0, mostQueuedBytes = 0, pendingLineBytes = 0
    var jobsByState: [JobState: Int] = [:]
    var largestLog = 0
    /// Per uid: connections, jobs kept, jobs unfinished, bytes on disk.
    var users: [UInt32: UserUse] = [:]

    struct UserUse {
        var connections = 0, jobs = 0, unfinished = 0, bytes = 0
        /// The owner's name as its jobs have it, so that only users without jobs are looked up.
        var name: String?
    }
}

extension Server {
    /// Users shown in `users` at most, the busiest first.
    static let statsUsersShown = 50

    func census() -> Census {
        var census = Census()
        for peer in connectionList where peer.admitted {
            census.users[peer.peerUID, default: Census.UserUse()].connections += 1
            census.queuedBytes += peer.queuedBytes
            census.mostQueuedBytes = max(census.mostQueuedBytes, peer.queuedBytes)
            census.pendingLineBytes += peer.partialLineBytes
            if peer.subscription != nil { census.subscribers += 1 }
        }
        for job in jobs.all {
            let state = job.record.summary.withLock { $0.state }
            census.jobsByState[state, default: 0] += 1
            census.users[job.record.owner, default: Census.UserUse()].jobs += 1
            census.users[job.record.owner]?.name = job.record.ownerName
            if !job.isOver { census.users[job.record.owner, default: Census.UserUse()].unfinished += 1 }
            if job.external?.publisher != nil { census.publishers += 1 }
            census.largestLog = max(census.largestLog, job.log.publishedOffset)
        }
        for (owner, bytes) in jobs.budget.usedByOwner { census.users[owner, default: Census.UserUse()].bytes = bytes }
        return census
    }

    func stats(_ connection: Connection, id: JSONValue?) {
        let seesEveryone = access.roleOverEveryone(of: connection) != nil
        let census = self.census()
        let users = census.users
        let most = (connections: users.values.map(\.connections).max() ?? 0, jobs: users.values.map(\.jobs).max() ?? 0,
                    unfinished: users.values.map(\.unfinished).max() ?? 0, bytes: users.values.map(\.bytes).max() ?? 0)

        let disk = configuration.limits
        let caps: [(String, Int, Int)] = [
            ("max-connections", configuration.maxConnections, limits.open),
            ("max-connections-per-user", configuration.maxConnectionsPerUser, most.connections),
            ("max-pending-line-bytes", configuration.maxPendingLineBytes, limits.pendingLineBytes),
            ("max-queued-bytes", configuration.maxQueuedBytes, census.mostQueuedBytes),
            ("max-jobs", configuration.maxJobs, jobs.count),
            ("max-jobs-per-user", disk.maxJobsPerUser, most.jobs),
            ("max-running-per-user", disk.maxRunningPerUser, most.unfinished),
            ("max-log-bytes", disk.maxLogBytes, census.largestLog),
            ("max-state-bytes", disk.maxStateBytes, jobs.budget.usedBytes),
            ("max-bytes-per-user", disk.maxBytesPerUser, most.bytes),
        ]
        let shown = users.filter { seesEveryone || $0.key == connection.peerUID }
            .sorted { ($0.value.connections, $0.value.unfinished, $0.value.bytes, $1.key) > ($1.value.connections, $1.value.unfinished, $1.value.bytes, $0.key) }
            .prefix(Server.statsUsersShown)

        func number(_ value: Int) -> JSONValue { .number(String(value)) }
        func optional(_ value: Int?) -> JSONValue { value.map(number) ?? .null }
        let body: [(key: String, value: JSONValue)] = [
            ("pid", number(Int(getpid()))),
            ("version", .string(DefaultPaths.daemonVersion)),
            ("uptime_s", number(Int((Clock.monotonicNanoseconds() &- startedAt) / 1_000_000_000))),
            ("connections", .object([("open", number(limits.open)), ("subscribers", number(census.subscribers)),
                                     ("publishers", number(census.publishers)), ("users", number(users.values.count { $0.connections > 0 }))])),
            ("queued_bytes", .object([("total", number(census.queuedBytes)), ("max_one_connection", number(census.mostQueuedBytes))])),
            ("pending_line_bytes", number(census.pendingLineBytes)),
            ("open_fds", optional(ProcessUsage.openDescriptors())),
            ("rss_bytes", optional(ProcessUsage.residentBytes())),
            ("loop_lag_us", .object([("last", number(Int(loopLag.lastNanoseconds / 1000))),
                                     ("max", number(Int(loopLag.maxNanoseconds / 1000))),
                                     ("interval", number(Int(loopLag.intervalNanoseconds / 1000)))])),
            ("jobs", .object([("total", number(jobs.count))] + JobState.allCases.map { ($0.rawValue, number(census.jobsByState[$0, default: 0])) })),
            ("state_bytes", number(jobs.budget.usedBytes)),
            ("restore", .object([("running", .bool(restorer.isRunning)), ("read", number(restorer.registered)),
                                 ("total", number(restorer.total))])),
            ("limits", .array(caps.map { name, limit, used in
                .object([("name", .string(name)), ("limit", number(limit)), ("used", number(used))])
            })),
            ("users_scope", .string(seesEveryone ? "all" : "own")),
            ("users", .array(shown.map { uid, use in
                .object([("uid", number(Int(uid))), ("user", .string(use.name ?? JobRecord.ownerName(of: uid))),
                         ("connections", number(use.connections)), ("jobs", number(use.jobs)),
                         ("unfinished", number(use.unfinished)), ("bytes", number(use.bytes))])
            })),
        ]
        connection.send(Reply.stats(id: id, body))
    }
}

