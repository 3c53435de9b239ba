#if canImport(Glibc)
import Glibc
#endif
import LTEngine
import LTProtocol
import Synchronization

/// Restores the state directory's jobs after the daemon listens and has sent READY=1: the directory is listed, and
/// each job read (spec, meta, checkpoint; an unfinished job's log cut back) in libuv's threadpool, a batch at a time,
/// so the loop serves clients meanwhile and one restore never takes more than one threadpool thread. Each batch is
/// registered on the loop; unfinished jobs resume at once.
///
/// While it runs, a request waits (its connection reads nothing more, so replies stay in order) when it needs a
/// job not restored yet: `list` (so it is never incomplete), `start` and `create` (the name may be taken by a job not
/// read yet), and any op naming a job not registered yet. It is answered as soon as that job is registered, or when
/// restore ends (then `unknown_job` if there is no such job). `hello` and `unsubscribe` never wait.
final class Restorer {
    unowned let server: Server
    /// True from start-up until every job directory is registered, or shutdown stopped the restore.
    private(set) var isRunning = false
    /// True while the threadpool reads the listing or a batch (shutdown waits for it: it may be cutting a log).
    private(set) var isReading = false
    private(set) var total = 0
    private(set) var registered = 0
    private var resumed = 0
    private var damaged = 0
    private var pending: ArraySlice<JobKey> = []
    private let stop = StopFlag()
    private var waiting: [(connection: Connection, line: RequestLine, prepared: Server.PreparedStart?)] = []

    /// Job directories read per trip to the threadpool.
    static let batchSize = 16

    init(server: Server) { self.server = server }

    func start() {
        isRunning = true
        isReading = true
        let store = server.jobs.store
        let listing = Listing()
        server.loop.queueWork({ listing.run(store) }, then: { [self] in
            isReading = false
            for path in listing.retired { server.removeInBackground(path) }
            if !listing.madeReserve {
                Log.warning("no room for the reserve \(store.reserveFile) (\(StateStore.reserveBytes) bytes): on a full disk, failing jobs may not record their end; free some space")
            }
            if let error = listing.error { Log.error("cannot list jobs in \(store.ownersDirectory): \(error)") }
            pending = listing.keys[...]
            total = listing.keys.count
            if total > 0 { Log.info("restoring \(total) job(s) in the background") }
            readNextBatch()
        })
    }

    private func readNextBatch() {
        guard !pending.isEmpty, !server.isShuttingDown else { return finish() }
        let keys = Array(pending.prefix(Restorer.batchSize))
        pending = pending.dropFirst(keys.count)
        let batch = Batch(keys: keys, store: server.jobs.store, stop: stop)
        isReading = true
        server.loop.queueWork({ batch.run() }, then: { [self] in
            isReading = false
            for restored in batch.restored { register(restored) }
            answerWaiting(all: false)
            readNextBatch()
        })
    }

    private func register(_ restored: RestoredJob) {
        // After SIGTERM an unfinished job is not started again: its checkpoint (and its log, cut back to it) stand.
        if case .resume = restored.outcome, server.isShuttingDown { return }
        server.jobs.budget.add(restored.bytes, owner: restored.record.owner)
        if server.jobs.register(restored) { resumed += 1 }
        if case .damaged = restored.outcome { damaged += 1 }
        registered += 1
    }

    private func finish() {
        guard isRunning else { return }
        isRunning = false
        if registered < total {
            Log.info("restore stopped by shutdown after \(registered) of \(total) job(s); the others are untouched")
        } else if total > 0 {
            Log.info("restored \(registered) job(s): \(resumed) resumed, \(damaged) damaged")
        }
        // Before the requests held for restore are answered, so a `list` never shows a job retention is removing.
        server.retention.check()
        answerWaiting(all: true)
    }

    /// Shutdown: the batch being read stops after its current job; waiting requests get `shutting_down`.
    func stopForShutdown() {
        stop.set()
        answerWaiting(all: true)
    }

    // MARK: Requests that wait

    /// True when `request` must wait for restore (see the type's comment).
    func mustWait(_ request: Request, from connection: Connection) -> Bool {
        guard isRunning else { return false }
        switch request {
        case .hello, .unsubscribe: return false
        case .list, .start, .create, .prune: return true
        default: return request.job.map { server.jobs.find($0, for: connection.peerUID) == nil } ?? false
        }
    }

    /// Holds `line` (and everything after it on `connection`) until it can be answered.
    func wait(_ line: RequestLine, prepared: Server.PreparedStart?, from connection: Connection) {
        connection.suspendRequests()
        waiting.append((connection, line, prepared))
    }

    private func answerWaiting(all: Bool) {
        let held = waiting
        waiting = []
        for entry in held {
            if !all, !entry.connection.closing, mustWait(entry.line.request, from: entry.connection) {
                waiting.append(entry)
                continue
            }
            if !entry.connection.closing { server.answer(.success(entry.line), prepared: entry.prepared, from: entry.connection) }
            entry.connection.resumeRequests()
        }
    }

    // MARK: Off the loop

    /// The job directories (after moving a flat, one-namespace layout into the per-owner one), and deleted
    /// directories a previous run did not finish removing.
    private final class Listing: @unchecked Sendable {
        // @unchecked: written by the threadpool thread before the loop reads it (uv_queue_work orders the two).
        var keys: [JobKey] = []
        var retired: [String] = []
        var madeReserve = false
        var error: SystemError?

        func run(_ store: StateStore) {
            madeReserve = store.makeReserve()
            store.migrateFlatLayout()
            retired = store.retiredDirectories()
            do throws(SystemError) { keys = try store.jobKeys() } catch { self.error = error }
        }
    }

    private final class Batch: @unchecked Sendable {
        // @unchecked: `restored` is written by the threadpool thread before the loop reads it.
        let keys: [JobKey]
        let store: StateStore
        let stop: StopFlag
        var restored: [RestoredJob] = []

        init(keys: [JobKey], store: StateStore, stop: StopFlag) { self.keys = keys; self.store = store; self.stop = stop }

        func run() {
            for key in keys where !stop.isSet { restored.append(RestoredJob.read(key, from: store)) }
        }
    }

    private final class StopFlag: Sendable {
        private let flag = Atomic<Bool>(false)
        func set() { flag.store(true, ordering: .relaxed) }
        var isSet: Bool { flag.load(ordering: .relaxed) }
    }
}

/// One job directory as restore found it: read off the loop thread by `read`, registered on it by `JobTable`.
struct RestoredJob: Sendable {
    enum Outcome: Sendable {
        /// Over (finished, cancelled, diverged, failed): its log is served as it is.
        case over
        /// Unfinished: its thread resumes `trainer` from (`seq`, `offset`).
        case resume(spec: JobSpec, trainer: Trainer, paused: Bool)
        /// Its spec, meta or checkpoint cannot be read, or they disagree with each other or with its log: listed
        /// as `damaged` with the reason (`JobRecord.damage`), its files left exactly as they are, deletable.
        case damaged
    }

    let record: JobRecord
    /// The log's last event and its length in bytes (the checkpoint's; 0, 0 for a damaged job).
    let seq: Int
    let offset: Int
    let outcome: Outcome
    /// What the job's directory counts against `--max-state-bytes` (its spec, and its log as restored).
    let bytes: Int

    /// Why a job directory cannot be restored.
    struct Damage: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// Reads the job directory of `key`. Never throws: whatever goes wrong makes the job `damaged`, with the reason.
    static func read(_ key: JobKey, from store: StateStore) -> RestoredJob {
        do {
            return try readOrThrow(key, from: store)
        } catch {
            let reason = "\(error)"
            let meta = try? store.meta(job: key)
            let record = JobRecord(name: key.name, owner: key.owner, created: meta?.created ?? "",
                                   files: store.jobFiles(key), precision: .float32,
                                   summary: JobSummary(state: .damaged), paused: false, kind: meta?.kind ?? .native,
                                   damage: reason)
            Log.error("job \(record.fullName): cannot be restored: \(reason); listed as damaged, its files left as they are")
            return RestoredJob(record: record, seq: 0, offset: 0, outcome: .damaged, bytes: store.bytesInUse(of: key))
        }
    }

    private static func readOrThrow(_ key: JobKey, from store: StateStore) throws -> RestoredJob {
        let stored = try store.load(job: key)
        let spec = stored.spec
        let files = store.jobFiles(key)
        func record(_ summary: JobSummary, paused: Bool = false) -> JobRecord {
            JobRecord(name: key.name, owner: stored.owner, created: stored.created, files: files, precision: spec.precision,
                      summary: summary, paused: paused, kind: stored.kind)
        }
        if let checkpoint = stored.checkpoint, checkpoint.state.isFinal {
            // Nothing to check against the spec: the data is not even kept (it is read again if `explain` asks).
            var summary = checkpoint.summary
            var info = stat()
            if summary.ended == nil, stat(files.checkpoint, &info) == 0 { summary.ended = Clock.utcTimestamp(info.st_mtim.tv_sec) }
            return RestoredJob(record: record(summary), seq: checkpoint.seq, offset: checkpoint.offset, outcome: .over,
                               bytes: store.bytesInUse(of: key, logBytes: checkpoint.offset))
        }
        if stored.kind == .external {
            // Its publisher is gone with the daemon that served it: it ends failed, its steps so far kept.
            return try JobTable.restoreUnfinishedExternal(stored, key: key, store: store)
        }
        let trainer: Trainer
        do { trainer = try Trainer(spec: spec) } catch { throw Damage("its spec no longer validates (\(error))") }
        let checkpoint: JobCheckpoint
        if let stored = stored.checkpoint {
            checkpoint = stored
        } else {
            // Created but never checkpointed (the daemon stopped while writing its directory): it starts afresh,
            // unless it has a log, which nothing could then be trusted to match.
            var info = stat()
            if stat(files.events, &info) == 0, info.st_size > 0 {
                throw Damage("it has no checkpoint.json, yet its log holds \(info.st_size) bytes")
            }
            checkpoint = JobCheckpoint(seq: 0, offset: 0, state: spec.paused ? .paused : .running,
                                       summary: JobTable.initialSummary(trainer, spec: spec), trainer: nil)
        }
        var resuming = trainer
        if checkpoint.seq > 0 {
            guard let state = checkpoint.trainer else {
                throw Damage("its checkpoint at seq \(checkpoint.seq) is \(checkpoint.state.rawValue) but holds no trainer state")
            }
            do { resuming = try Trainer(spec: spec, resuming: state) } catch {
                throw Damage("its checkpoint does not fit its spec (\(error))")
            }
        }
        // Checked before the log is touched: a job found damaged keeps its log exactly as it was.
        guard let offset = EventLog.recover(path: files.events, toSeq: checkpoint.seq, offset: checkpoint.offset) else {
            throw Damage("its log holds fewer than the \(checkpoint.seq) events its checkpoint promises")
        }
        var summary = checkpoint.summary
        summary.seq = checkpoint.seq
        let paused = checkpoint.state == .paused
        return RestoredJob(record: record(summary, paused: paused), seq: checkpoint.seq, offset: offset,
                           outcome: .resume(spec: spec, trainer: resuming, paused: paused),
                           bytes: store.bytesInUse(of: key, logBytes: offset))
    }
}
