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
    /// Most client connections at once, in all and for one uid; beyond them a client gets `too_many_connections`.
    public var maxConnections: Int
    public var maxConnectionsPerUser: Int
    /// Most bytes of unfinished request lines (read, no `\n` yet) held for all connections together; the connection
    /// whose line would pass it gets `busy`.
    public var maxPendingLineBytes: Int
    /// Most bytes of log one job may write; `start` refuses a job that cannot fit, and a job that reaches it fails.
    public var maxLogBytes: Int
    /// Most bytes of logs of all jobs together; `start` refuses a job that would pass it.
    public var maxStateBytes: Int
    /// Most jobs one uid may keep; `start` beyond it gets `too_many_jobs`.
    public var maxJobsPerUser: Int

    public static let defaultMaxLineBytes = 64 * 1024 * 1024
    public static let defaultMaxJobs = 1000
    public static let defaultMaxConnections = 1024
    public static let defaultMaxConnectionsPerUser = 128
    public static let defaultMaxPendingLineBytes = 256 * 1024 * 1024
    public static let defaultMaxLogBytes = 1 << 30
    public static let defaultMaxStateBytes = 10 << 30
    public static let defaultMaxJobsPerUser = 100
    /// Fewer bytes than any step event takes (with its epoch's share): what `start` assumes to tell whether a job
    /// can fit in `maxLogBytes`. Real step events take 300 to 700 bytes.
    public static let minimumBytesPerStep = 200

    public init(socketPath: String, stateDirectory: String, maxLineBytes: Int = defaultMaxLineBytes,
                maxJobs: Int = defaultMaxJobs, maxConnections: Int = defaultMaxConnections,
                maxConnectionsPerUser: Int = defaultMaxConnectionsPerUser,
                maxPendingLineBytes: Int = defaultMaxPendingLineBytes, maxLogBytes: Int = defaultMaxLogBytes,
                maxStateBytes: Int = defaultMaxStateBytes, maxJobsPerUser: Int = defaultMaxJobsPerUser,
                socketMode: mode_t? = nil) {
        self.socketPath = socketPath
        self.stateDirectory = stateDirectory
        self.maxLineBytes = maxLineBytes
        self.maxJobs = maxJobs
        self.maxConnections = maxConnections
        self.maxConnectionsPerUser = maxConnectionsPerUser
        self.maxPendingLineBytes = maxPendingLineBytes
        self.maxLogBytes = maxLogBytes
        self.maxStateBytes = maxStateBytes
        self.maxJobsPerUser = maxJobsPerUser
        // 0600 for a user's own daemon; 0660 for the system service, whose group decides who may connect.
        self.socketMode = socketMode ?? (getuid() == 0 ? 0o660 : 0o600)
    }
}

/// The daemon: one libuv loop on the calling thread owns every socket; each job runs on its own thread.
///
/// Data flow: a job thread encodes each event once, appends it to the job's log, and publishes the bytes to the
/// `Inbox`, which wakes the loop (`uv_async_send`). The loop appends them to the job's in-memory tail and pumps every
/// subscriber of that job; each connection coalesces what it is given into one `uv_write`.
public final class Daemon {
    let configuration: DaemonConfiguration
    private let store: StateStore
    private let loop: UnsafeMutablePointer<uv_loop_t>
    private let listener: UnsafeMutablePointer<uv_pipe_t>
    private let wakeup: UnsafeMutablePointer<uv_async_t>
    private let terminate: UnsafeMutablePointer<uv_signal_t>
    private let interrupt: UnsafeMutablePointer<uv_signal_t>
    private let hangUp: UnsafeMutablePointer<uv_signal_t>
    private let pumpIdle: UnsafeMutablePointer<uv_idle_t>
    private let housekeeping: UnsafeMutablePointer<uv_timer_t>
    private let watchdog: UnsafeMutablePointer<uv_timer_t>
    private let shutdownTimer: UnsafeMutablePointer<uv_timer_t>
    let inbox: Inbox
    private let launcher = ThreadLauncher()
    /// How much nicer than the job threads the loop thread runs (see `ThreadLauncher`).
    static let loopNiceIncrement: Int32 = 2
    static let readBufferSize = 64 * 1024
    /// Request lines longer than this are decoded (and their spec validated) in libuv's threadpool.
    static let offloadLineBytes = 256 * 1024
    let readBuffer: UnsafeMutableRawPointer

    private var jobs: [String: JobStream] = [:]
    private var jobOrder: [String] = []
    private var connections: [ObjectIdentifier: Connection] = [:]
    /// Bytes of unfinished request lines held by all connections (see `maxPendingLineBytes`).
    var pendingLineBytes = 0
    /// Limits crossed and not yet left: each is logged once when crossed and once when left, not per refusal.
    private var connectionLimitHit: (total: Int, perUID: [UInt32: Int])?
    var pendingLineLimitRefusals: Int?
    private var pumpQueue: [ObjectIdentifier: Connection] = [:]
    private var pumpIdleActive = false
    private var notifier: SystemdNotifier?
    private var watchdogInterval: Duration?
    private var lastStatus = ""
    private var ownsSocketPath = false
    private var shuttingDown = false
    private var shutdownStage = 0
    private var shutdownDeadline: UInt64 = 0
    private var closedForGood = false

    public init(configuration: DaemonConfiguration) {
        self.configuration = configuration
        store = StateStore(root: configuration.stateDirectory)
        loop = .allocate(capacity: 1)
        listener = .allocate(capacity: 1)
        wakeup = .allocate(capacity: 1)
        terminate = .allocate(capacity: 1)
        interrupt = .allocate(capacity: 1)
        hangUp = .allocate(capacity: 1)
        pumpIdle = .allocate(capacity: 1)
        housekeeping = .allocate(capacity: 1)
        watchdog = .allocate(capacity: 1)
        shutdownTimer = .allocate(capacity: 1)
        inbox = Inbox(async: wakeup)
        readBuffer = .allocate(byteCount: Daemon.readBufferSize, alignment: 16)
    }

    // The daemon lives for the whole process; its handles are freed by the process exit after `run` returns.

    /// Runs until SIGTERM, SIGINT or SIGHUP. Throws when the daemon cannot start (the message says why and what to do);
    /// returns after a graceful shutdown.
    public func run(environment: [String: String]) throws(StartupError) {
        signal(SIGPIPE, SIG_IGN)
        // A parent may have spawned us with signals blocked (Foundation's Process does); SIGTERM must reach us.
        var shutdownSignals = sigset_t()
        sigemptyset(&shutdownSignals)
        for number in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&shutdownSignals, number) }
        pthread_sigmask(SIG_UNBLOCK, &shutdownSignals, nil)
        let activated = ListenFDs.take()
        guard uv_loop_init(loop) == 0 else { throw StartupError("cannot initialise the event loop") }
        let unmanaged = Unmanaged.passUnretained(self).toOpaque()
        // From the first moment, restore included: a stop signal that arrives before the loop runs is held by
        // libuv and handled as soon as it does, never the default action (death without a checkpoint).
        for (handle, number) in [(terminate, SIGTERM), (interrupt, SIGINT), (hangUp, SIGHUP)] {
            uv_signal_init(loop, handle)
            handle.pointee.data = unmanaged
            uv_signal_start(handle, { handle, signal in
                guard let data = handle?.pointee.data else { return }
                Unmanaged<Daemon>.fromOpaque(data).takeUnretainedValue().beginShutdown(signal: signal)
            }, number)
        }

        do { try store.prepare() } catch {
            throw StartupError("cannot use the state directory \(configuration.stateDirectory): \(error). Pass --state-dir DIR (or LTD_STATE_DIR) with a writable directory")
        }
        uv_async_init(loop, wakeup) { handle in
            guard let data = handle?.pointee.data else { return }
            Unmanaged<Daemon>.fromOpaque(data).takeUnretainedValue().drainInbox()
        }
        wakeup.pointee.data = unmanaged

        if launcher.start() {
            // Job threads come from the launcher at the normal weight; the loop yields to them when CPUs are short.
            let thread = id_t(ltd_thread_id())
            errno = 0
            let current = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), thread)
            if errno == 0 { _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), thread, min(current + Daemon.loopNiceIncrement, 19)) }
        }
        restoreJobs()
        try listen(activated: activated)

        uv_idle_init(loop, pumpIdle)
        pumpIdle.pointee.data = unmanaged
        uv_timer_init(loop, housekeeping)
        housekeeping.pointee.data = unmanaged
        uv_timer_start(housekeeping, { timer in
            guard let data = timer?.pointee.data else { return }
            let daemon = Unmanaged<Daemon>.fromOpaque(data).takeUnretainedValue()
            daemon.reportStatus()
            daemon.closeLingering()
            for connection in Array(daemon.connections.values) { connection.closeIfPeerGone() }
        }, 1000, 1000)
        uv_timer_init(loop, watchdog)
        watchdog.pointee.data = unmanaged
        uv_timer_init(loop, shutdownTimer)
        shutdownTimer.pointee.data = unmanaged

        notifier = SystemdNotifier(environment: environment)
        if let interval = SystemdNotifier.watchdogInterval(environment: environment), notifier != nil {
            watchdogInterval = interval
            let milliseconds = UInt64(max(1, interval.components.seconds * 1000 + interval.components.attoseconds / 1_000_000_000_000_000))
            uv_timer_start(watchdog, { timer in
                guard let data = timer?.pointee.data else { return }
                Unmanaged<Daemon>.fromOpaque(data).takeUnretainedValue().notifier?.send("WATCHDOG=1")
            }, milliseconds, milliseconds)
            Log.info("systemd watchdog: pinging every \(milliseconds) ms")
        }
        notifier?.send("READY=1")
        reportStatus()
        Log.info("ready: protocol \(DefaultPaths.protocolVersion), version \(DefaultPaths.daemonVersion), pid \(getpid()), \(jobs.count) job(s) in \(configuration.stateDirectory)")

        uv_run(loop, UV_RUN_DEFAULT)
        uv_loop_close(loop)
        if ownsSocketPath { unlink(configuration.socketPath) }
        Log.info("stopped")
    }

    // MARK: Listening

    private func listen(activated: [Int32]) throws(StartupError) {
        uv_pipe_init(loop, listener, 0)
        listener.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        if let fd = activated.first {
            guard ListenFDs.isListeningUnixStream(fd) else {
                throw StartupError("the socket systemd passed (fd \(fd)) is not a listening Unix stream socket; check ltd.socket (ListenStream=)")
            }
            let result = uv_pipe_open(listener, fd)
            guard result == 0 else { throw StartupError("cannot use the socket systemd passed (fd \(fd)): \(uvErrorText(result))") }
            Log.info("listening on the socket passed by systemd (fd \(fd))")
        } else {
            let path = configuration.socketPath
            try SocketPath.checkLength(path)
            try SocketPath.prepareDirectory(of: path)
            try SocketPath.claim(path)
            // umask first, so the socket never exists with a wider mode, then chmod to the exact mode.
            let previous = umask(0o177)
            let result = uv_pipe_bind(listener, path)
            umask(previous)
            guard result == 0 else {
                throw StartupError("cannot bind \(path): \(uvErrorText(result))")
            }
            ownsSocketPath = true
            if chmod(path, configuration.socketMode) != 0 {
                Log.warning("cannot chmod \(path): \(errnoText(errno))")
            }
            Log.info("listening on \(path) (mode \(String(configuration.socketMode, radix: 8)))")
        }
        let result = uv_listen(ltd_stream(listener), 128) { server, status in
            guard let server, let data = server.pointee.data else { return }
            Unmanaged<Daemon>.fromOpaque(data).takeUnretainedValue().accept(status: status)
        }
        guard result == 0 else { throw StartupError("cannot listen on \(configuration.socketPath): \(uvErrorText(result))") }
    }

    private func accept(status: Int32) {
        guard status == 0 else {
            Log.warning("accept: \(uvErrorText(status))")
            return
        }
        let pipe = UnsafeMutablePointer<uv_pipe_t>.allocate(capacity: 1)
        uv_pipe_init(loop, pipe, 0)
        let result = uv_accept(ltd_stream(listener), ltd_stream(pipe))
        let connection = Connection(daemon: self, pipe: pipe)
        connections[connection.id] = connection
        guard result == 0 else {
            // EMFILE and friends: the pending connection stays queued; libuv retries on the next readiness.
            Log.warning("accept: \(uvErrorText(result))")
            pipe.pointee.data = Unmanaged.passUnretained(connection).toOpaque()
            connection.close()
            return
        }
        if connection.begin() {
            Log.debug("connection from uid \(connection.peerUID) pid \(connection.peerPID)")
            if let refusal = connectionLimitRefusal(for: connection) {
                // Closed as soon as the error is written, not after a linger: refused sockets must not pile up.
                connection.send(refusal.line)
                connection.finishAfterFlush()
            } else if shuttingDown {
                connection.send(ProtocolError(.shuttingDown, "ltd is shutting down; try again when it is back").line)
                connection.finishAfterFlush()
            }
        }
    }

    func connectionClosing(_ connection: Connection) {
        pumpQueue[connection.id] = nil
    }

    func connectionClosed(_ connection: Connection) {
        connections[connection.id] = nil
        noteConnectionLimitsLeft()
    }

    /// The error for a new connection beyond a connection limit, nil when within them. Counts connections that
    /// are still open (a refused one lingers until its client has read the error, two seconds at most).
    private func connectionLimitRefusal(for connection: Connection) -> ProtocolError? {
        let uid = connection.peerUID
        let open = connections.values.filter { !$0.closing && $0 !== connection }
        let mine = open.count(where: { $0.peerUID == uid })
        let limit = configuration.maxConnections, perUser = configuration.maxConnectionsPerUser
        let message: String
        if open.count >= limit {
            message = "ltd serves at most \(limit) connections at once and all are in use; try again shortly (an administrator can raise --max-connections)"
        } else if mine >= perUser {
            message = "uid \(uid) already has \(mine) connections open, the most ltd allows one user (--max-connections-per-user \(perUser)); close some and try again"
        } else {
            return nil
        }
        var hit = connectionLimitHit ?? (0, [:])
        if open.count >= limit {
            if hit.total == 0 { Log.warning("connection limit reached (\(limit) open): refusing new connections until some close") }
            hit.total += 1
        } else {
            if hit.perUID[uid] == nil { Log.warning("connection limit for uid \(uid) reached (\(perUser) open): refusing its new connections until some close") }
            hit.perUID[uid, default: 0] += 1
        }
        connectionLimitHit = hit
        return ProtocolError(.tooManyConnections, message)
    }

    /// Logs, once, each connection limit that is no longer reached, with how many connections it refused.
    private func noteConnectionLimitsLeft() {
        guard var hit = connectionLimitHit else { return }
        let open = connections.values.filter { !$0.closing }
        if hit.total > 0, open.count < configuration.maxConnections {
            Log.info("below the connection limit again (\(hit.total) connection(s) refused meanwhile)")
            hit.total = 0
        }
        for (uid, refused) in hit.perUID where open.count(where: { $0.peerUID == uid }) < configuration.maxConnectionsPerUser {
            Log.info("uid \(uid) below its connection limit again (\(refused) connection(s) refused meanwhile)")
            hit.perUID[uid] = nil
        }
        connectionLimitHit = hit.total == 0 && hit.perUID.isEmpty ? nil : hit
    }

    /// Pumps `connection` again from an idle callback (a subscription that scanned its share of the log this turn).
    func pumpSoon(_ connection: Connection) {
        pumpQueue[connection.id] = connection
        guard !pumpIdleActive, !closedForGood else { return }
        pumpIdleActive = true
        uv_idle_start(pumpIdle) { idle in
            guard let data = idle?.pointee.data else { return }
            Unmanaged<Daemon>.fromOpaque(data).takeUnretainedValue().pumpDeferred()
        }
    }

    private func pumpDeferred() {
        let queued = pumpQueue
        pumpQueue = [:]
        for connection in queued.values { connection.pump() }
        if pumpQueue.isEmpty {
            uv_idle_stop(pumpIdle)
            pumpIdleActive = false
        }
    }

    // MARK: Events from job threads

    private func drainInbox() {
        let pending = inbox.take()
        var touched: [ObjectIdentifier: JobStream] = [:]
        for (record, chunk) in pending.chunks {
            guard let stream = jobs[record.name], stream.record === record else { continue }
            stream.append(chunk)
            touched[ObjectIdentifier(stream)] = stream
        }
        for stream in touched.values {
            for connection in stream.subscribers.values { connection.pump() }
        }
        for record in pending.exited {
            guard let stream = jobs[record.name], stream.record === record else { continue }
            joinThread(of: stream)
            let summary = record.summary.withLock { $0 }
            if summary.state.isFinal {
                Log.info("job \(record.name) \(summary.state.rawValue) after \(summary.iteration) step(s), \(summary.seq) event(s)\(summary.message.map { ": " + $0 } ?? "")")
            }
            if stream.subscribers.isEmpty { stream.releaseTail() }
        }
    }

    private func joinThread(of stream: JobStream) {
        guard let thread = stream.thread else { return }
        pthread_join(thread, nil)
        stream.thread = nil
    }

    // MARK: Jobs

    private func status(of stream: JobStream) -> JobStatus {
        let record = stream.record
        let s = record.summary.withLock { $0 }
        return JobStatus(job: record.name, state: s.state, owner: record.owner, created: record.created,
                         iteration: s.iteration, epoch: s.epoch, step: s.step, stepsPerEpoch: s.stepsPerEpoch,
                         epochs: s.epochs, totalSteps: s.totalSteps, seq: s.seq, w: s.w, b: s.b, loss: s.loss,
                         rmse: s.rmse, valLoss: s.valLoss, valRmse: s.valRmse, message: s.message,
                         precision: record.spec.precision)
    }

    private static func initialSummary(_ trainer: Trainer, spec: JobSpec) -> JobSummary {
        let start = trainer.start
        return JobSummary(state: spec.paused ? .paused : .running, stepsPerEpoch: start.stepsPerEpoch,
                          epochs: spec.epochs, totalSteps: start.totalSteps, w: start.w, b: start.b)
    }

    /// Lists every job in the state directory; resumes the unfinished ones from their checkpoints.
    private func restoreJobs() {
        let names: [String]
        do { names = try store.jobNames() } catch {
            Log.error("cannot list jobs in \(store.jobsDirectory): \(error)")
            return
        }
        var resumed = 0
        for name in names {
            let stored: StateStore.StoredJob
            do { stored = try store.load(job: name) } catch {
                Log.error("job \(name): cannot be restored (\(error)); leaving its directory alone")
                continue
            }
            let spec = stored.spec
            let directory = store.directory(of: name)
            let trainer: Trainer
            do { trainer = try Trainer(spec: spec) } catch {
                Log.error("job \(name): its spec no longer validates (\(error)); leaving its directory alone")
                continue
            }
            let checkpoint = stored.checkpoint
                ?? JobCheckpoint(seq: 0, offset: 0, state: spec.paused ? .paused : .running,
                                 summary: Daemon.initialSummary(trainer, spec: spec), trainer: nil)
            let over = checkpoint.state.isFinal
            let logPath = directory + "/events.ndjson"
            if over {
                let record = JobRecord(name: name, owner: stored.owner, created: stored.created, directory: directory,
                                       spec: spec, summary: checkpoint.summary, paused: false)
                register(JobStream(record: record, publishedSeq: checkpoint.seq, publishedOffset: checkpoint.offset, ended: true))
                continue
            }
            guard let offset = store.truncateLog(path: logPath, toSeq: checkpoint.seq, offset: checkpoint.offset) else {
                Log.error("job \(name): its log holds fewer than the \(checkpoint.seq) events its checkpoint promises; leaving its directory alone")
                continue
            }
            var resuming = trainer
            if checkpoint.seq > 0, let state = checkpoint.trainer {
                do { resuming = try Trainer(spec: spec, resuming: state) } catch {
                    Log.error("job \(name): checkpoint does not fit its spec (\(error)); leaving its directory alone")
                    continue
                }
            }
            let seq = checkpoint.trainer == nil ? 0 : checkpoint.seq
            let startOffset = seq == 0 ? 0 : offset
            if seq == 0, offset != 0 { _ = store.truncateLog(path: logPath, toSeq: 0, offset: 0) }
            var summary = checkpoint.summary
            summary.seq = seq
            let paused = checkpoint.state == .paused
            let record = JobRecord(name: name, owner: stored.owner, created: stored.created, directory: directory,
                                   spec: spec, summary: summary, paused: paused)
            let stream = JobStream(record: record, publishedSeq: seq, publishedOffset: startOffset, ended: false)
            register(stream)
            let runner = JobRunner(record: record, trainer: resuming, inbox: inbox, seq: seq, offset: startOffset, paused: paused,
                                   maxLogBytes: configuration.maxLogBytes)
            switch runner.start(using: launcher) {
            case .success(let thread):
                stream.thread = thread
                resumed += 1
                Log.info("job \(name) resumed at seq \(seq) (iteration \(summary.iteration), \(checkpoint.state.rawValue))")
            case .failure(let error):
                Log.error("job \(name): cannot start its thread: \(error)")
            }
        }
        if !names.isEmpty { Log.info("restored \(jobs.count) job(s), \(resumed) resumed") }
    }

    private func register(_ stream: JobStream) {
        jobs[stream.name] = stream
        jobOrder.append(stream.name)
    }

    private func unknownJob(_ name: String, id: JSONValue?) -> ProtocolError {
        let known = jobOrder.isEmpty ? "none" : jobOrder.prefix(20).joined(separator: ", ") + (jobOrder.count > 20 ? ", …" : "")
        return ProtocolError(.unknownJob, "no job named \"\(name)\"; known jobs: \(known). Start one with: ltctl start \(name) --example colab", id: id)
    }

    private func startJob(name: String, spec: JobSpec, prepared: Result<Trainer, SpecError>?, specFile: [UInt8]?,
                          from connection: Connection, id: JSONValue?) {
        if jobs[name] != nil {
            connection.send(ProtocolError(.jobExists, "a job named \"\(name)\" already exists; pick another name, or delete it first (ltctl delete \(name))", id: id).line)
            return
        }
        guard jobs.count < configuration.maxJobs else {
            connection.send(ProtocolError(.tooManyJobs, "this daemon already keeps \(jobs.count) jobs, its limit; delete finished ones with ltctl delete NAME", id: id).line)
            return
        }
        let owned = jobs.values.count(where: { $0.record.owner == connection.peerUID })
        guard owned < configuration.maxJobsPerUser else {
            connection.send(ProtocolError(.tooManyJobs, "uid \(connection.peerUID) already keeps \(owned) jobs, the most this daemon allows one user (--max-jobs-per-user \(configuration.maxJobsPerUser)); delete finished ones with ltctl delete NAME", id: id).line)
            return
        }
        let trainer: Trainer
        switch prepared ?? Daemon.prepareTrainer(spec) {
        case .success(let ready): trainer = ready
        case .failure(let error):
            connection.send(ProtocolError(.invalidSpec, error.description, field: error.field, id: id).line)
            return
        }
        let summary = Daemon.initialSummary(trainer, spec: spec)
        // Disk: a job whose steps cannot fit in its log, or in what is left of the state's, is refused now rather
        // than failed later.
        let (product, overflow) = summary.totalSteps.multipliedReportingOverflow(by: DaemonConfiguration.minimumBytesPerStep)
        let needed = overflow ? Int.max : product
        guard needed <= configuration.maxLogBytes else {
            connection.send(ProtocolError(.invalidSpec, "this job takes \(summary.totalSteps) steps, whose events need at least \(needed) bytes of log (\(DaemonConfiguration.minimumBytesPerStep) per step); this daemon allows \(configuration.maxLogBytes) bytes per job (--max-log-bytes): use fewer epochs or a larger batch_size", field: "epochs", id: id).line)
            return
        }
        let used = jobs.values.reduce(0) { $0 &+ $1.publishedOffset }
        guard used <= configuration.maxStateBytes - needed else {
            connection.send(ProtocolError(.tooManyJobs, "the jobs' logs take \(used) bytes and this job needs at least \(needed) more, past this daemon's limit of \(configuration.maxStateBytes) bytes in all (--max-state-bytes); delete finished jobs with ltctl delete NAME", id: id).line)
            return
        }
        let created = Clock.utcTimestamp()
        let directory = store.directory(of: name)
        let initial = JobCheckpoint(seq: 0, offset: 0, state: summary.state, summary: summary, trainer: trainer.checkpoint)
        do {
            try store.create(job: name, spec: spec, specFile: specFile, owner: connection.peerUID, created: created, checkpoint: initial)
        } catch let error where error.code == EEXIST {
            // A directory the daemon could not restore at start-up still holds this name.
            connection.send(ProtocolError(.jobExists, "the state directory already holds a job named \"\(name)\" that this daemon could not load (see its log); pick another name", id: id).line)
            return
        } catch {
            Log.error("job \(name): cannot record it: \(error)")
            connection.send(ProtocolError(.internalError, "cannot record job \(name) in the state directory: \(error)", id: id).line)
            return
        }
        let record = JobRecord(name: name, owner: connection.peerUID, created: created, directory: directory,
                               spec: spec, summary: summary, paused: spec.paused)
        let stream = JobStream(record: record, publishedSeq: 0, publishedOffset: 0, ended: false)
        let runner = JobRunner(record: record, trainer: trainer, inbox: inbox, seq: 0, offset: 0, paused: spec.paused,
                               maxLogBytes: configuration.maxLogBytes)
        switch runner.start(using: launcher) {
        case .success(let thread):
            stream.thread = thread
        case .failure(let error):
            Log.error("job \(name): cannot start its thread: \(error)")
            try? FileIO.removeTree(directory)
            connection.send(ProtocolError(.internalError, "cannot start a thread for job \(name): \(error)", id: id).line)
            return
        }
        register(stream)
        Log.info("job \(name) started by uid \(connection.peerUID): \(spec.data.x.count) rows, \(spec.epochs) epoch(s) × \(trainer.start.stepsPerEpoch) step(s), \(spec.optimizer.name.rawValue), \(spec.precision.rawValue)\(spec.paused ? ", paused" : "")")
        connection.send(Reply.started(id: id, job: name, status: status(of: stream)))
    }

    /// Checks that the caller may control the job: its owner or root.
    private func mayControl(_ stream: JobStream, op: String, connection: Connection, id: JSONValue?) -> Bool {
        let owner = stream.record.owner
        guard connection.peerUID == owner || connection.peerUID == 0 else {
            Log.info("uid \(connection.peerUID) refused: \(op) of job \(stream.name), owned by uid \(owner)")
            connection.send(ProtocolError(.permissionDenied, "\(stream.name) belongs to \(PeerCredentials.describe(uid: owner)); only its owner or root may \(op) it", owner: owner, id: id).line)
            return false
        }
        return true
    }

    private func control(_ op: String, job name: String, count: Int, connection: Connection, id: JSONValue?) {
        guard let stream = jobs[name] else { connection.send(unknownJob(name, id: id).line); return }
        guard mayControl(stream, op: op, connection: connection, id: id) else { return }
        let record = stream.record
        let state = record.summary.withLock { $0.state }
        let over = state.isFinal || stream.ended
        func wrongState(_ message: String) {
            connection.send(ProtocolError(.wrongState, message, id: id).line)
        }
        switch op {
        case "pause":
            guard !over else { return wrongState("\(name) is \(state.rawValue); only a running job can be paused") }
            record.control.requestPause()
            connection.send(Reply.ok(id: id, op: op, job: name, state: .paused))
        case "resume":
            guard !over else { return wrongState("\(name) is \(state.rawValue); only a paused job can be resumed") }
            record.control.requestResume()
            connection.send(Reply.ok(id: id, op: op, job: name, state: .running))
        case "step":
            guard !over else { return wrongState("\(name) is \(state.rawValue); it has no steps left") }
            guard record.control.requestSteps(count) else {
                return wrongState("\(name) is running; pause it first (ltctl pause \(name)), then step it")
            }
            connection.send(Reply.ok(id: id, op: op, job: name, state: .paused))
        case "cancel":
            guard !over else { return wrongState("\(name) is already \(state.rawValue)") }
            record.control.requestCancel()
            Log.info("job \(name): cancel requested by uid \(connection.peerUID)")
            connection.send(Reply.ok(id: id, op: op, job: name, state: .cancelled))
        case "delete":
            guard over, stream.thread == nil || state.isFinal else {
                connection.send(ProtocolError(.jobActive, "\(name) is \(state.rawValue); cancel it first (ltctl cancel \(name)), then delete it", id: id).line)
                return
            }
            joinThread(of: stream)
            for subscriber in stream.subscribers.values {
                subscriber.send(ProtocolError(.unknownJob, "job \(name) was deleted; its events are gone").line)
                subscriber.endSubscription()
                subscriber.flush()
            }
            do { try FileIO.removeTree(record.directory) } catch {
                Log.error("job \(name): cannot remove \(record.directory): \(error)")
                connection.send(ProtocolError(.internalError, "cannot remove job \(name)'s files: \(error)", id: id).line)
                return
            }
            jobs[name] = nil
            jobOrder.removeAll { $0 == name }
            Log.info("job \(name) deleted by uid \(connection.peerUID)")
            connection.send(Reply.ok(id: id, op: op, job: name, state: nil))
        default:
            connection.send(ProtocolError(.internalError, "unhandled op \(op)", id: id).line)
        }
    }

    // MARK: Requests

    static func prepareTrainer(_ spec: JobSpec) -> Result<Trainer, SpecError> {
        do throws(SpecError) { return .success(try Trainer(spec: spec)) } catch { return .failure(error) }
    }

    /// A large request line on its way through the threadpool: decoded, and for `start` its Trainer prepared.
    private final class DecodeWork: @unchecked Sendable {
        // @unchecked: `line`, `decoded` and `trainer` are touched by the threadpool thread only between
        // uv_queue_work and its after-callback; `connection` only on the loop thread.
        let line: [UInt8]
        let connection: Connection
        var decoded: Result<RequestLine, ProtocolError>?
        var trainer: Result<Trainer, SpecError>?
        var specFile: [UInt8]?
        init(line: [UInt8], connection: Connection) { self.line = line; self.connection = connection }

        func run() {
            let result = RequestLine.decode(line)
            decoded = result
            if case .success(let request) = result, case .start(_, let spec) = request.request {
                trainer = Daemon.prepareTrainer(spec)
                if case .success = trainer { specFile = StateStore.specFile(spec) }
            }
        }
    }

    /// Decodes `line` in libuv's threadpool, then answers it on the loop (`connection` reads nothing meanwhile).
    func decodeInBackground(_ line: [UInt8], from connection: Connection) {
        let work = DecodeWork(line: line, connection: connection)
        let request = UnsafeMutablePointer<uv_work_t>.allocate(capacity: 1)
        request.pointee.data = Unmanaged.passRetained(work).toOpaque()
        let queued = uv_queue_work(loop, request, { request in
            guard let data = request?.pointee.data else { return }
            Unmanaged<DecodeWork>.fromOpaque(data).takeUnretainedValue().run()
        }, { request, _ in
            guard let request, let data = request.pointee.data else { return }
            let work = Unmanaged<DecodeWork>.fromOpaque(data).takeRetainedValue()
            request.deallocate()
            work.connection.daemon.finishDecode(work)
        })
        if queued != 0 {
            if let data = request.pointee.data { Unmanaged<DecodeWork>.fromOpaque(data).release() }
            request.deallocate()
            work.run()
            finishDecode(work)
        }
    }

    private func finishDecode(_ work: DecodeWork) {
        let connection = work.connection
        guard !connection.closing, let decoded = work.decoded else { return }
        dispatch(decoded, prepared: work.trainer, specFile: work.specFile, from: connection)
        connection.decodeFinished()
    }

    /// Handles one request line from `connection` (without its `\n`).
    func handle(line: UnsafeRawBufferPointer, from connection: Connection) {
        dispatch(RequestLine.decode(line), prepared: nil, specFile: nil, from: connection)
    }

    private func dispatch(_ decoded: Result<RequestLine, ProtocolError>, prepared: Result<Trainer, SpecError>?,
                          specFile: [UInt8]?, from connection: Connection) {
        if shuttingDown {
            connection.send(ProtocolError(.shuttingDown, "ltd is shutting down; try again when it is back").line)
            connection.finishAfterFlush()
            return
        }
        let request: RequestLine
        switch decoded {
        case .failure(let error):
            Log.debug("uid \(connection.peerUID): \(error.code.rawValue): \(error.message)")
            connection.send(error.line)
            connection.flush()
            return
        case .success(let decoded):
            request = decoded
        }
        let id = request.id
        switch request.request {
        case .hello:
            var peer = connection.peer
            peer.user = PeerCredentials.userName(of: peer.uid)
            connection.send(Reply.hello(id: id, daemon: PeerCredentials.ownIdentity(), peer: peer))
        case .start(let job, let spec):
            startJob(name: job, spec: spec, prepared: prepared, specFile: specFile, from: connection, id: id)
        case .list:
            connection.send(Reply.jobs(id: id, jobOrder.compactMap { jobs[$0].map(status(of:)) }))
        case .status(let job):
            guard let stream = jobs[job] else { connection.send(unknownJob(job, id: id).line); break }
            connection.send(Reply.status(id: id, status(of: stream)))
        case .subscribe(let job, let from, let every, let types):
            guard let stream = jobs[job] else { connection.send(unknownJob(job, id: id).line); break }
            if connection.subscription != nil {
                connection.send(ProtocolError(.alreadySubscribed, "this connection already follows a job; unsubscribe first or open another connection", id: id).line)
                break
            }
            let state = stream.record.summary.withLock { $0.state }
            let complete = stream.ended && from > stream.publishedSeq
            connection.send(Reply.subscribed(id: id, job: job, from: from, lastSeq: stream.publishedSeq, state: state, complete: complete))
            if !complete {
                connection.subscribe(Subscription(stream: stream, from: max(from, 1), every: every, types: types))
                connection.pump()
            }
        case .unsubscribe:
            connection.endSubscription()
            connection.send(Reply.ok(id: id, op: "unsubscribe", job: nil, state: nil))
        case .pause(let job):
            control("pause", job: job, count: 0, connection: connection, id: id)
        case .resume(let job):
            control("resume", job: job, count: 0, connection: connection, id: id)
        case .step(let job, let count):
            control("step", job: job, count: count, connection: connection, id: id)
        case .cancel(let job):
            control("cancel", job: job, count: 0, connection: connection, id: id)
        case .delete(let job):
            control("delete", job: job, count: 0, connection: connection, id: id)
        case .explain(let job, let iteration):
            guard let stream = jobs[job] else { connection.send(unknownJob(job, id: id).line); break }
            ExplainWork.start(stream.record, iteration: iteration, loop: loop, connection: connection, id: id)
        }
        connection.flush()
    }

    // MARK: Status and shutdown

    /// Closes connections that were refused (line too long) more than 2 s ago and have not closed their side.
    private func closeLingering() {
        let now = Clock.monotonicNanoseconds()
        for connection in connections.values {
            if let since = connection.lingerSince, now &- since > 2_000_000_000 { connection.close() }
        }
    }

    private func reportStatus() {
        guard let notifier else { return }
        var running = 0, paused = 0
        for stream in jobs.values where stream.thread != nil {
            if stream.record.summary.withLock({ $0.state }) == .paused { paused += 1 } else { running += 1 }
        }
        let subscribers = connections.values.reduce(0) { $0 + ($1.subscription == nil ? 0 : 1) }
        let text = "\(jobs.count) jobs (\(running) running, \(paused) paused), \(connections.count) connections, \(subscribers) subscribers"
        guard text != lastStatus else { return }
        lastStatus = text
        notifier.send("STATUS=" + text)
    }

    /// SIGTERM or SIGINT: stop accepting, let every job checkpoint and stop, deliver what they wrote to the
    /// subscribers, tell every client, and close. A frozen subscriber holds this up for at most a few seconds.
    private func beginShutdown(signal number: Int32) {
        let name = number == SIGTERM ? "SIGTERM" : number == SIGINT ? "SIGINT" : number == SIGHUP ? "SIGHUP" : "signal \(number)"
        guard !shuttingDown else {
            Log.info("\(name) again: still shutting down")
            return
        }
        shuttingDown = true
        let active = jobs.values.filter { $0.thread != nil }
        Log.info("\(name): shutting down; checkpointing \(active.count) active job(s)")
        notifier?.send("STOPPING=1")
        uv_close(ltd_handle(listener), nil)
        for stream in active { stream.record.control.requestShutdown() }
        shutdownStage = 1
        shutdownDeadline = Clock.monotonicNanoseconds() &+ 5_000_000_000
        uv_timer_start(shutdownTimer, { timer in
            guard let data = timer?.pointee.data else { return }
            Unmanaged<Daemon>.fromOpaque(data).takeUnretainedValue().shutdownTick()
        }, 5, 5)
    }

    private func shutdownTick() {
        drainInbox()
        let now = Clock.monotonicNanoseconds()
        switch shutdownStage {
        case 1:
            let threads = jobs.values.contains { $0.thread != nil }
            let behind = connections.values.contains { connection in
                if connection.hasPendingOutput { return true }
                guard let subscription = connection.subscription else { return false }
                return subscription.cursor <= subscription.stream.publishedSeq
            }
            guard (!threads && !behind) || now >= shutdownDeadline else { return }
            if threads { Log.warning("some job threads did not stop in time; their last checkpoints stand") }
            if behind { Log.warning("some subscribers did not read everything in time; they can resume with from=last seq+1") }
            for connection in connections.values {
                connection.send(ProtocolError(.shuttingDown, "ltd is shutting down; every event so far is in the job logs, resume with subscribe from=last seq + 1 when it is back").line)
                connection.finishAfterFlush()
            }
            shutdownStage = 2
            shutdownDeadline = now &+ 1_000_000_000
        default:
            guard connections.isEmpty || now >= shutdownDeadline else { return }
            for connection in connections.values { connection.close() }
            closeEverything()
        }
    }

    private func closeEverything() {
        guard !closedForGood else { return }
        closedForGood = true
        inbox.close()
        uv_timer_stop(shutdownTimer)
        for handle in [ltd_handle(wakeup), ltd_handle(terminate), ltd_handle(interrupt), ltd_handle(hangUp), ltd_handle(pumpIdle),
                       ltd_handle(housekeeping), ltd_handle(watchdog), ltd_handle(shutdownTimer)] {
            if uv_is_closing(handle) == 0 { uv_close(handle, nil) }
        }
    }
}
