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
    /// Disk: most bytes of log one job may write, of logs and specs of all jobs together, and most jobs one uid may keep.
    public var limits: DiskLimits

    public static let defaultMaxLineBytes = 64 * 1024 * 1024
    public static let defaultMaxJobs = 1000

    public init(socketPath: String, stateDirectory: String, maxLineBytes: Int = defaultMaxLineBytes,
                maxJobs: Int = defaultMaxJobs, limits: DiskLimits = DiskLimits(), socketMode: mode_t? = nil) {
        self.socketPath = socketPath
        self.stateDirectory = stateDirectory
        self.maxLineBytes = maxLineBytes
        self.maxJobs = maxJobs
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
    private let launcher = ThreadLauncher()
    /// How much nicer than the job threads the loop thread runs (see `ThreadLauncher`).
    static let loopNiceIncrement: Int32 = 2

    public init(configuration: DaemonConfiguration) {
        self.configuration = configuration
    }

    /// Runs until SIGTERM or SIGINT. Throws when the daemon cannot start (the message says why and what to do);
    /// returns after a graceful shutdown.
    public func run(environment: [String: String]) throws(StartupError) {
        signal(SIGPIPE, SIG_IGN)
        // A parent may have spawned us with signals blocked (Foundation's Process does); SIGTERM must reach us.
        var shutdownSignals = sigset_t()
        sigemptyset(&shutdownSignals)
        for number in [SIGTERM, SIGINT] { sigaddset(&shutdownSignals, number) }
        pthread_sigmask(SIG_UNBLOCK, &shutdownSignals, nil)
        let activated = ListenFDs.take()
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
        if launcher.start() {
            // Job threads come from the launcher at the normal weight; the loop yields to them when CPUs are short.
            let thread = id_t(ltd_thread_id())
            errno = 0
            let current = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), thread)
            if errno == 0 { _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), thread, min(current + Daemon.loopNiceIncrement, 19)) }
        }
        let server = Server(configuration: configuration, loop: loop, store: store, launcher: launcher)
        try server.start(activated: activated, environment: environment)
        loop.run()
        loop.close()
        if server.ownsSocketPath { unlink(configuration.socketPath) }
        Log.info("stopped")
    }
}
