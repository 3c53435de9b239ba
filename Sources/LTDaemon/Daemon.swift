#if canImport(Glibc)
import Glibc
#endif
import CLibUV
import LTEngine
import LTProtocol

/// How a daemon is run: what `ltd`'s flags and environment resolve to.
public struct DaemonConfiguration: Sendable {
    public var socketPath: String
    public var stateDirectory: String
    /// Longest request line accepted, in bytes (without its `\n`).
    public var maxLineBytes: Int
    /// Most jobs kept (running or not); `start` beyond it gets `too_many_jobs`.
    public var maxJobs: Int
    /// Socket file mode when the daemon binds the socket itself.
    public var socketMode: mode_t
    /// Members of this group may control every job (docs/PROTOCOL.md, "Security").
    public var adminGroup: String
    /// Most client connections at once, in all and for one uid; beyond them a client gets `too_many_connections`.
    public var maxConnections: Int
    public var maxConnectionsPerUser: Int
    /// Most bytes of unfinished request lines (read, no `\n` yet) held for all connections together; the connection
    /// whose line would pass it gets `busy`.
    public var maxPendingLineBytes: Int
    /// Most bytes of output one connection may have queued; see `OutputMarks`.
    public var maxQueuedBytes: Int
    /// Disk: most bytes of log one job may write, of logs and specs of all jobs together, and most jobs one uid may keep.
    public var limits: DiskLimits
    /// Seconds a job that is over is kept after it ends before it is removed (`--keep-finished`); nil: forever.
    public var keepFinished: Int?

    public static let defaultMaxLineBytes = 64 * 1024 * 1024
    public static let defaultMaxJobs = 1000
    public static let defaultMaxConnections = 1024
    public static let defaultMaxConnectionsPerUser = 128
    public static let defaultMaxPendingLineBytes = 256 * 1024 * 1024
    public static let defaultMaxQueuedBytes = 4 * 1024 * 1024
    /// Like CUPS's lpadmin: the group whose members may control every job.
    public static let defaultAdminGroup = "ltd-admin"

    public init(socketPath: String, stateDirectory: String, maxLineBytes: Int = defaultMaxLineBytes,
                maxJobs: Int = defaultMaxJobs, maxConnections: Int = defaultMaxConnections,
                maxConnectionsPerUser: Int = defaultMaxConnectionsPerUser,
                maxPendingLineBytes: Int = defaultMaxPendingLineBytes, maxQueuedBytes: Int = defaultMaxQueuedBytes,
                socketMode: mode_t? = nil, adminGroup: String = defaultAdminGroup, limits: DiskLimits = DiskLimits(),
                keepFinished: Int? = nil) {
        self.keepFinished = keepFinished
        self.socketPath = socketPath
        self.stateDirectory = stateDirectory
        self.maxLineBytes = maxLineBytes
        self.maxJobs = maxJobs
        self.adminGroup = adminGroup
        self.maxConnections = maxConnections
        self.maxConnectionsPerUser = maxConnectionsPerUser
        self.maxPendingLineBytes = maxPendingLineBytes
        self.maxQueuedBytes = maxQueuedBytes
        self.limits = limits
        // 0600 for a user's own daemon; 0660 for the system service, whose group decides who may connect.
        self.socketMode = socketMode ?? (getuid() == 0 ? 0o660 : 0o600)
    }
}

/// The daemon: one libuv loop on the calling thread owns every socket; each job runs on its own thread.
///
/// One event's path, file by file: `JobRunner` (job thread: Trainer → `JobEncoder` → `EventBatchBuilder` →
/// `EventLog.Appender`, then `Inbox.publish`) → `Server.drainInbox` (loop thread: `EventLog.publish`, then
/// `Connection.pump` for each subscriber, which asks `EventLog.read` for slices) → `Server.flushAll` (one
/// coalesced `uv_write` per connection, before the loop sleeps).
public final class Daemon {
    let configuration: DaemonConfiguration

    public init(configuration: DaemonConfiguration) {
        self.configuration = configuration
    }

    /// Runs until SIGTERM or SIGINT. Throws when the daemon cannot start (the message says why and what to do);
    /// returns after a graceful shutdown.
    public func run(environment: [String: String]) throws(StartupError) {
        signal(SIGPIPE, SIG_IGN)
        // SIGTERM, SIGINT and SIGHUP are blocked from here until the server's handlers are armed, so one that comes
        // during start-up is held, then handled (a graceful shutdown), never the default death. Job threads block
        // every signal (`ThreadEntry.start`), so they are delivered to the loop thread.
        // Unblocking afterwards also undoes a parent that spawned us with them blocked (Foundation's Process does).
        var shutdownSignals = sigset_t()
        sigemptyset(&shutdownSignals)
        for number in Server.shutdownSignals { sigaddset(&shutdownSignals, number) }
        pthread_sigmask(SIG_BLOCK, &shutdownSignals, nil)
        defer { pthread_sigmask(SIG_UNBLOCK, &shutdownSignals, nil) }
        let activated = ListenFDs.take()
        raiseDescriptorLimit()
        guard let loop = Loop() else { throw StartupError("cannot initialise the event loop") }

        if let refusal = FaultPlan.refusal { throw StartupError(refusal) }
        if let plan = FaultPlan.active { Log.warning("fault injection (a test hook, \(FaultPlan.environmentVariable)): \(plan.summary)") }
        let store = StateStore(root: configuration.stateDirectory)
        do { try store.prepare() } catch {
            switch error {
            case .system:
                throw StartupError("cannot use the state directory \(configuration.stateDirectory): \(error). Pass --state-dir DIR (or LTD_STATE_DIR) with a writable directory")
            case .newerFormat:
                throw StartupError("\(error)", exitCode: StartupError.newerStateFormatExitCode)
            case .unreadableFormat:
                throw StartupError("\(error)")
            }
        }
        let access = AccessPolicy(adminGroup: configuration.adminGroup)
        if access.groupID(access.adminGroup) == nil {
            Log.info("no group \(access.adminGroup) (--admin-group): only owners and root may control jobs")
        }
        let server = Server(configuration: configuration, loop: loop, store: store)
        try server.start(activated: activated, environment: environment)
        pthread_sigmask(SIG_UNBLOCK, &shutdownSignals, nil)
        loop.run()
        loop.close()
        if server.ownsSocketPath { unlink(configuration.socketPath) }
        Log.info("stopped")
    }

    /// Opens /dev/null on whichever of descriptors 0, 1 and 2 is closed (`ltd <&-`, a careless supervisor). Call it
    /// first, before anything opens a file: otherwise the next descriptor made (libuv's epoll, a client's socket)
    /// takes that number, where stray output to stdout or stderr would land, and which libuv refuses to close (it
    /// asserts `fd > STDERR_FILENO` and aborts at shutdown). `open` returns the lowest free number, so each call
    /// fills the gap being checked.
    public static func occupyStandardDescriptors() {
        for descriptor: Int32 in 0...2 where fcntl(descriptor, F_GETFD) == -1 && errno == EBADF {
            _ = open("/dev/null", O_RDWR)
        }
    }

    /// Lifts the soft limit on open files to the hard one: each connection and each job log read holds a descriptor,
    /// and the usual soft limit of 1024 would run out before `--max-connections` (1024 by default) could refuse
    /// anyone. libuv polls with epoll, so high descriptor numbers cost nothing.
    private func raiseDescriptorLimit() {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        let wanted = limit.rlim_max
        limit.rlim_cur = wanted
        if setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) != 0 {
            Log.warning("cannot raise the open-file limit to \(wanted): \(errnoText(errno))")
        }
    }
}
