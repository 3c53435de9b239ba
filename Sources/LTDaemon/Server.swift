#if canImport(Glibc)
import Glibc
#endif
import LTProtocol

/// The server, on the loop thread: listens and accepts, owns every connection, takes the job threads' events from
/// the inbox, writes what each loop iteration queued (one flush point), and shuts down in phases.
/// Requests are answered in `Requests.swift`; the jobs live in a `JobTable`.
final class Server {
    let configuration: DaemonConfiguration
    let loop: Loop
    let jobs: JobTable
    let inbox: Inbox
    /// Every connection's reads land here; each read is handled before the next one.
    let readBuffer: UnsafeMutableRawBufferPointer
    private let listener: Pipe
    private let wakeup: Async
    private let terminate: Signal
    private let interrupt: Signal
    private let hangup: Signal
    /// Restores the state directory's jobs in the background after start-up; holds requests that need them.
    private(set) lazy var restorer = Restorer(server: self)
    /// Removes jobs that ended longer ago than `--keep-finished` (Retention.swift).
    private(set) lazy var retention = Retention(server: self, keep: configuration.keepFinished)
    private let flushPass: Prepare
    private let pumpIdle: Idle
    private let housekeeping: Timer
    private let watchdog: Timer
    private let shutdownTimer: Timer
    private var connections: [ObjectIdentifier: Connection] = [:]
    var connectionList: Dictionary<ObjectIdentifier, Connection>.Values { connections.values }
    /// How late the housekeeping timer fires (`stats`), and when the server started.
    let loopLag = LoopLag(intervalMilliseconds: 1000)
    let startedAt = Clock.monotonicNanoseconds()
    /// Connections per uid and unfinished-line bytes in all, against their limits.
    var limits: ClientLimits
    /// Connections that queued output this iteration: written by the flush pass before the loop sleeps.
    private var unflushed: [ObjectIdentifier: Connection] = [:]
    /// Subscriptions that used up their scan budget: pumped again from the idle handle.
    private var pumpQueue: [ObjectIdentifier: Connection] = [:]
    private var notifier: SystemdNotifier?
    private var lastStatus = ""
    private(set) var ownsSocketPath = false

    /// Where shutdown is: serving; waiting for job threads and subscribers (until `deadline`); waiting for clients
    /// to read their goodbye (until `deadline`); closed.
    enum Phase: Equatable {
        case serving
        case draining(deadline: UInt64)
        case closing(deadline: UInt64)
        case closed
    }
    private(set) var phase = Phase.serving
    var isShuttingDown: Bool { phase != .serving }

    static let readBufferSize = 64 * 1024

    init(configuration: DaemonConfiguration, loop: Loop, store: StateStore) {
        self.configuration = configuration
        self.loop = loop
        wakeup = Async(loop: loop)
        inbox = Inbox(wakeup: wakeup)
        jobs = JobTable(store: store, inbox: inbox,
                        budget: DiskBudget(limits: configuration.limits, reservePath: store.reserveFile))
        readBuffer = .allocate(byteCount: Server.readBufferSize, alignment: 16)
        limits = ClientLimits(configuration)
        listener = Pipe(loop: loop)
        terminate = Signal(loop: loop)
        interrupt = Signal(loop: loop)
        hangup = Signal(loop: loop)
        flushPass = Prepare(loop: loop)
        pumpIdle = Idle(loop: loop)
        housekeeping = Timer(loop: loop)
        watchdog = Timer(loop: loop)
        shutdownTimer = Timer(loop: loop)
    }

    /// The signals that shut ltd down gracefully (see `beginShutdown`); `Daemon.run` blocks them until they are
    /// handled here, so one that arrives during start-up waits for its handler instead of killing ltd.
    static let shutdownSignals = [SIGTERM, SIGINT, SIGHUP]

    // The server lives for the whole process; `run` returns after the loop has stopped.

    /// Arms the signals, listens, arms the timers and systemd notifications, says READY=1, and starts restoring the
    /// jobs in the background (`Restorer`): a state directory of thousands of jobs never delays READY=1.
    func start(activated: [Int32], environment: [String: String]) throws(StartupError) {
        for (handle, number) in zip([terminate, interrupt, hangup], Server.shutdownSignals) {
            handle.start(number) { [unowned self] in beginShutdown(signal: $0) }
        }
        wakeup.onWake { [unowned self] in drainInbox() }
        try listen(activated: activated)
        flushPass.start { [unowned self] in flushAll() }
        flushPass.keepsLoopAlive(false)
        housekeeping.start(after: 1000, repeat: 1000) { [unowned self] in
            loopLag.fired()
            reportStatus()
            closeLingering()
            retention.tick()
            for connection in Array(connections.values) { connection.closeIfPeerGone() }
        }
        notifier = SystemdNotifier(environment: environment)
        if let interval = SystemdNotifier.watchdogInterval(environment: environment), let notifier {
            let milliseconds = UInt64(max(1, interval.components.seconds * 1000 + interval.components.attoseconds / 1_000_000_000_000_000))
            watchdog.start(after: milliseconds, repeat: milliseconds) { notifier.send("WATCHDOG=1") }
            Log.info("systemd watchdog: pinging every \(milliseconds) ms")
        }
        notifier?.send("READY=1")
        Log.info("ready: protocol \(DefaultPaths.protocolVersion), version \(DefaultPaths.daemonVersion), pid \(getpid()), state in \(configuration.stateDirectory)")
        restorer.start()
        reportStatus()
    }

    // MARK: Listening

    private func listen(activated: [Int32]) throws(StartupError) {
        if let fd = activated.first {
            guard ListenFDs.isListeningUnixStream(fd) else {
                throw StartupError("the socket systemd passed (fd \(fd)) is not a listening Unix stream socket; check ltd.socket (ListenStream=)")
            }
            let result = listener.open(fd)
            guard result == 0 else { throw StartupError("cannot use the socket systemd passed (fd \(fd)): \(uvErrorText(result))") }
            Log.info("listening on the socket passed by systemd (fd \(fd))")
        } else {
            let path = configuration.socketPath
            try SocketPath.checkLength(path)
            try SocketPath.prepareDirectory(of: path)
            try SocketPath.claim(path)
            // umask first, so the socket never exists with a wider mode, then chmod to the exact mode.
            let previous = umask(0o177)
            let result = listener.bind(path)
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
        let result = listener.listen(backlog: 128) { [unowned self] status in accept(status: status) }
        guard result == 0 else { throw StartupError("cannot listen on \(configuration.socketPath): \(uvErrorText(result))") }
    }

    private func accept(status: Int32) {
        guard status == 0 else {
            Log.warning("accept: \(uvErrorText(status))")
            return
        }
        let pipe = Pipe(loop: loop)
        let result = listener.accept(into: pipe)
        guard result == 0 else {
            // EMFILE and friends: the pending connection stays queued; libuv retries on the next readiness.
            Log.warning("accept: \(uvErrorText(result))")
            pipe.close()
            return
        }
        let connection = Connection(server: self, pipe: pipe)
        connections[connection.id] = connection
        guard connection.begin() else { return }
        Log.debug("connection from uid \(connection.peerUID) pid \(connection.peerPID)")
        if isShuttingDown {
            connection.send(ProtocolError(.shuttingDown, "ltd is shutting down; try again when it is back").line)
            connection.finishAfterFlush()
        } else if let refusal = limits.admit(uid: connection.peerUID) {
            // Closed as soon as the error is written (no linger): refused sockets must not pile up.
            connection.send(refusal.line)
            connection.finishAfterFlush()
        } else {
            connection.admitted = true
        }
    }

    func connectionClosing(_ connection: Connection) {
        if connection.admitted { limits.release(uid: connection.peerUID) }
        pumpQueue[connection.id] = nil
        unflushed[connection.id] = nil
        publisherClosing(connection)
    }

    func connectionClosed(_ connection: Connection) {
        connections[connection.id] = nil
    }

    // MARK: Writing: one flush point

    /// `connection` queued output: it is written before the loop next waits for I/O.
    func needsFlush(_ connection: Connection) {
        unflushed[connection.id] = connection
    }

    /// The flush pass (a `uv_prepare` handle): one coalesced write per connection that queued output this iteration,
    /// as Redis writes its clients' replies before it sleeps.
    private func flushAll() {
        guard !unflushed.isEmpty else { return }
        let pending = unflushed
        unflushed = [:]
        for connection in pending.values { connection.flush() }
    }

    // MARK: Events from job threads

    /// Pumps `connection` again from an idle callback (a subscription that scanned its share of the log this turn).
    func pumpSoon(_ connection: Connection) {
        pumpQueue[connection.id] = connection
        guard phase != .closed else { return }
        pumpIdle.start { [unowned self] in pumpDeferred() }
    }

    private func pumpDeferred() {
        let queued = pumpQueue
        pumpQueue = [:]
        for connection in queued.values { connection.pump() }
        if pumpQueue.isEmpty { pumpIdle.stop() }
    }

    /// Publishes what the job threads wrote to their logs, and pumps their subscribers; joins exited job threads.
    private func drainInbox() {
        let pending = inbox.take()
        var touched: [ObjectIdentifier: Job] = [:]
        for (record, chunk) in pending.chunks {
            guard let job = jobs.job(of: record) else { continue }
            job.log.publish(chunk)
            touched[ObjectIdentifier(job)] = job
        }
        for job in touched.values {
            for connection in job.subscribers.values { connection.pump() }
        }
        for record in pending.exited {
            guard let job = jobs.job(of: record) else { continue }
            jobs.joinThread(of: job)
            let summary = record.summary.withLock { $0 }
            if summary.state.isFinal {
                JobJournal.ended(record, summary)
            }
            if job.subscribers.isEmpty { job.log.releaseTail() }
        }
    }

    /// Removes a deleted job's directory in libuv's threadpool: a log can be hundreds of MB.
    func removeInBackground(_ path: String) {
        loop.queueWork({
            do { try FileIO.removeTree(path) } catch { Log.error("cannot remove \(path): \(error)") }
        }, then: {})
    }

    // MARK: Status

    /// Closes connections that were refused (line too long) more than 2 s ago and have not closed their side.
    private func closeLingering() {
        let now = Clock.monotonicNanoseconds()
        for connection in connections.values {
            if let since = connection.lingerSince, now &- since > 2_000_000_000 { connection.close() }
        }
    }

    private func reportStatus() {
        guard let notifier else { return }
        let census = self.census()
        let restoring = restorer.isRunning ? ", restoring (\(restorer.registered) of \(restorer.total) read)" : ""
        let text = "\(jobs.count) jobs (\(census.jobsByState[.running, default: 0]) running, \(census.jobsByState[.paused, default: 0]) paused)"
            + "\(restoring), \(limits.open) connections, \(census.subscribers) subscribers"
        guard text != lastStatus else { return }
        lastStatus = text
        notifier.send("STATUS=" + text)
    }

    // MARK: Shutdown

    /// SIGTERM, SIGINT or SIGHUP: stop accepting, stop restoring, let every job checkpoint and stop, deliver what
    /// they wrote to the subscribers, tell every client, and close. A frozen subscriber holds this up for at most a
    /// few seconds. (SIGHUP is a terminal or session going away: ltd checkpoints and exits, as for SIGTERM.)
    private func beginShutdown(signal number: Int32) {
        let name = number == SIGTERM ? "SIGTERM" : number == SIGINT ? "SIGINT" : number == SIGHUP ? "SIGHUP" : "signal \(number)"
        guard phase == .serving else {
            Log.info("\(name) again: still shutting down")
            return
        }
        let active = jobs.all.filter { $0.thread != nil }
        Log.info("\(name): shutting down; checkpointing \(active.count) active job(s)")
        notifier?.send("STOPPING=1")
        listener.close()
        restorer.stopForShutdown()
        for job in active { job.record.control.requestShutdown() }
        phase = .draining(deadline: Clock.monotonicNanoseconds() &+ 5_000_000_000)
        shutdownTimer.start(after: 5, repeat: 5) { [unowned self] in shutdownTick() }
    }

    private func shutdownTick() {
        drainInbox()
        let now = Clock.monotonicNanoseconds()
        switch phase {
        case .serving, .closed:
            return
        case .draining(let deadline):
            // A restore batch in the threadpool may be cutting a log back: it finishes its current job first.
            let threads = jobs.all.contains { $0.thread != nil } || restorer.isReading
            let behind = connections.values.contains { connection in
                if connection.hasPendingOutput { return true }
                guard let subscription = connection.subscription else { return false }
                return !subscription.isCaughtUp
            }
            guard (!threads && !behind) || now >= deadline else { return }
            if threads { Log.warning("some job threads did not stop in time; their last checkpoints stand") }
            if behind { Log.warning("some subscribers did not read everything in time; they can resume with from=last seq+1") }
            for connection in connections.values {
                connection.send(ProtocolError(.shuttingDown, "ltd is shutting down; every event so far is in the job logs, resume with subscribe from=last seq + 1 when it is back").line)
                connection.finishAfterFlush()
            }
            phase = .closing(deadline: now &+ 1_000_000_000)
        case .closing(let deadline):
            guard connections.isEmpty || now >= deadline else { return }
            for connection in connections.values { connection.close() }
            closeEverything()
        }
    }

    private func closeEverything() {
        guard phase != .closed else { return }
        phase = .closed
        inbox.close()
        for handle: Handle in [wakeup, terminate, interrupt, hangup, flushPass, pumpIdle, housekeeping, watchdog, shutdownTimer] {
            handle.close()
        }
    }
}
