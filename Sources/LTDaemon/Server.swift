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
    private let flushPass: Prepare
    private let pumpIdle: Idle
    private let housekeeping: Timer
    private let watchdog: Timer
    private let shutdownTimer: Timer
    private var connections: [ObjectIdentifier: Connection] = [:]
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

    init(configuration: DaemonConfiguration, loop: Loop, store: StateStore, launcher: ThreadLauncher) {
        self.configuration = configuration
        self.loop = loop
        wakeup = Async(loop: loop)
        inbox = Inbox(wakeup: wakeup)
        jobs = JobTable(store: store, inbox: inbox, launcher: launcher,
                        budget: DiskBudget(limits: configuration.limits, reservePath: store.reserveFile))
        readBuffer = .allocate(byteCount: Server.readBufferSize, alignment: 16)
        listener = Pipe(loop: loop)
        terminate = Signal(loop: loop)
        interrupt = Signal(loop: loop)
        flushPass = Prepare(loop: loop)
        pumpIdle = Idle(loop: loop)
        housekeeping = Timer(loop: loop)
        watchdog = Timer(loop: loop)
        shutdownTimer = Timer(loop: loop)
    }

    // The server lives for the whole process; `run` returns after the loop has stopped.

    /// Restores the jobs, listens, and arms the signals, timers and systemd notifications.
    func start(activated: [Int32], environment: [String: String]) throws(StartupError) {
        wakeup.onWake { [unowned self] in drainInbox() }
        if !jobs.store.makeReserve() {
            Log.warning("no room for the reserve \(jobs.store.reserveFile) (\(StateStore.reserveBytes) bytes): on a full disk, failing jobs may not record their end; free some space")
        }
        jobs.restore()
        let running = Dictionary(jobs.all.filter { $0.thread != nil }.map { ($0.name, $0.log.publishedOffset) }) { a, _ in a }
        jobs.budget.add(jobs.store.bytesInUse(runningLogs: running))
        for path in jobs.store.retiredDirectories() { removeInBackground(path) }
        try listen(activated: activated)
        terminate.start(SIGTERM) { [unowned self] in beginShutdown(signal: $0) }
        interrupt.start(SIGINT) { [unowned self] in beginShutdown(signal: $0) }
        flushPass.start { [unowned self] in flushAll() }
        flushPass.keepsLoopAlive(false)
        housekeeping.start(after: 1000, repeat: 1000) { [unowned self] in
            reportStatus()
            closeLingering()
        }
        notifier = SystemdNotifier(environment: environment)
        if let interval = SystemdNotifier.watchdogInterval(environment: environment), let notifier {
            let milliseconds = UInt64(max(1, interval.components.seconds * 1000 + interval.components.attoseconds / 1_000_000_000_000_000))
            watchdog.start(after: milliseconds, repeat: milliseconds) { notifier.send("WATCHDOG=1") }
            Log.info("systemd watchdog: pinging every \(milliseconds) ms")
        }
        notifier?.send("READY=1")
        reportStatus()
        Log.info("ready: protocol \(DefaultPaths.protocolVersion), version \(DefaultPaths.daemonVersion), pid \(getpid()), \(jobs.count) job(s) in \(configuration.stateDirectory)")
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
        }
    }

    func connectionClosing(_ connection: Connection) {
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
                Log.info("job \(record.name) \(summary.state.rawValue) after \(summary.iteration) step(s), \(summary.seq) event(s)\(summary.message.map { ": " + $0 } ?? "")")
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
        var running = 0, paused = 0
        for job in jobs.all where job.thread != nil {
            if job.record.summary.withLock({ $0.state }) == .paused { paused += 1 } else { running += 1 }
        }
        let subscribers = connections.values.reduce(0) { $0 + ($1.subscription == nil ? 0 : 1) }
        let text = "\(jobs.count) jobs (\(running) running, \(paused) paused), \(connections.count) connections, \(subscribers) subscribers"
        guard text != lastStatus else { return }
        lastStatus = text
        notifier.send("STATUS=" + text)
    }

    // MARK: Shutdown

    /// SIGTERM or SIGINT: stop accepting, let every job checkpoint and stop, deliver what they wrote to the
    /// subscribers, tell every client, and close. A frozen subscriber holds this up for at most a few seconds.
    private func beginShutdown(signal number: Int32) {
        let name = number == SIGTERM ? "SIGTERM" : number == SIGINT ? "SIGINT" : "signal \(number)"
        guard phase == .serving else {
            Log.info("\(name) again: still shutting down")
            return
        }
        let active = jobs.all.filter { $0.thread != nil }
        Log.info("\(name): shutting down; checkpointing \(active.count) active job(s)")
        notifier?.send("STOPPING=1")
        listener.close()
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
            let threads = jobs.all.contains { $0.thread != nil }
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
        for handle: Handle in [wakeup, terminate, interrupt, flushPass, pumpIdle, housekeeping, watchdog, shutdownTimer] {
            handle.close()
        }
    }
}
