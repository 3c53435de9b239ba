#if canImport(Glibc)
import Glibc
#endif
import LTEngine
import LTProtocol

/// The daemon's jobs, on the loop thread: the registry in creation order, names reserved while a new job's files
/// are written, what `status` reports, starting job threads, and restoring jobs from the state directory.
final class JobTable {
    let store: StateStore
    let inbox: Inbox
    let launcher: ThreadLauncher
    private var jobs: [JobKey: Job] = [:]
    private var order: [JobKey] = []
    /// Jobs whose directory is being written in the threadpool.
    private var reserved: Set<JobKey> = []

    init(store: StateStore, inbox: Inbox, launcher: ThreadLauncher) {
        self.store = store
        self.inbox = inbox
        self.launcher = launcher
    }

    subscript(key: JobKey) -> Job? { jobs[key] }
    var count: Int { jobs.count + reserved.count }
    var all: Dictionary<JobKey, Job>.Values { jobs.values }
    var inOrder: [Job] { order.compactMap { jobs[$0] } }
    func inOrder(ownedBy owner: UInt32) -> [Job] { order.filter { $0.owner == owner }.compactMap { jobs[$0] } }

    /// The job `reference` (`NAME` or `OWNER/NAME`, docs/PROTOCOL.md "Job names") names for `caller`. OWNER is matched
    /// against the names of the owners of the jobs there are (so no user database is read), or is a uid.
    func find(_ reference: String, for caller: UInt32) -> Job? {
        guard let parsed = JobReference(reference) else { return nil }
        guard let owner = parsed.owner else { return jobs[JobKey(owner: caller, name: parsed.name)] }
        if let uid = parsed.ownerUID, let job = jobs[JobKey(owner: uid, name: parsed.name)] { return job }
        return jobs.values.first { $0.name == parsed.name && $0.record.ownerName == owner }
    }

    func isTaken(_ key: JobKey) -> Bool { jobs[key] != nil || reserved.contains(key) }
    func reserve(_ key: JobKey) { reserved.insert(key) }
    func release(_ key: JobKey) { reserved.remove(key) }

    func register(_ job: Job) {
        jobs[job.record.key] = job
        order.append(job.record.key)
    }

    func remove(_ job: Job) {
        jobs[job.record.key] = nil
        order.removeAll { $0 == job.record.key }
    }

    /// The job `record` belongs to, unless it was deleted (a new job may have its name).
    func job(of record: JobRecord) -> Job? {
        guard let job = jobs[record.key], job.record === record else { return nil }
        return job
    }

    func unknownJob(_ reference: String, for caller: UInt32, id: JSONValue?) -> ProtocolError {
        let own = order.filter { $0.owner == caller }.map(\.name)
        let known = own.isEmpty ? "none" : own.prefix(20).joined(separator: ", ") + (own.count > 20 ? ", …" : "")
        let hint = JobReference(reference)?.owner == nil
            ? "Start one with: ltctl start \(reference) --example colab; another user's job is named OWNER/NAME (ltctl list --all)"
            : "ltctl list --all shows everyone's"
        return ProtocolError(.unknownJob, "no job named \"\(reference)\"; your jobs: \(known). \(hint)", id: id)
    }

    func status(of job: Job) -> JobStatus {
        let record = job.record
        let s = record.summary.withLock { $0 }
        return JobStatus(job: record.name, state: s.state, owner: record.owner, created: record.created,
                         iteration: s.iteration, epoch: s.epoch, step: s.step, stepsPerEpoch: s.stepsPerEpoch,
                         epochs: s.epochs, totalSteps: s.totalSteps, seq: s.seq, w: s.w, b: s.b, loss: s.loss,
                         rmse: s.rmse, valLoss: s.valLoss, valRmse: s.valRmse, message: s.message,
                         precision: record.spec.precision, kind: record.kind, fullName: record.fullName)
    }

    static func initialSummary(_ trainer: Trainer, spec: JobSpec) -> JobSummary {
        let start = trainer.start
        return JobSummary(state: spec.paused ? .paused : .running, stepsPerEpoch: start.stepsPerEpoch,
                          epochs: spec.epochs, totalSteps: start.totalSteps, w: start.w, b: start.b)
    }

    /// Starts the job thread that runs `trainer` from log position (`seq`, `offset`).
    func startThread(of job: Job, trainer: Trainer, seq: Int, offset: Int, paused: Bool) -> Result<Void, SystemError> {
        let runner = JobRunner(record: job.record, trainer: trainer, inbox: inbox, seq: seq, offset: offset, paused: paused)
        switch runner.start(using: launcher) {
        case .success(let thread):
            job.thread = thread
            return .success(())
        case .failure(let error):
            return .failure(error)
        }
    }

    /// Waits for the job thread, which has exited or is about to (it said so through the inbox, or its job is over).
    func joinThread(of job: Job) {
        guard let thread = job.thread else { return }
        pthread_join(thread, nil)
        job.thread = nil
    }

    // MARK: Restore

    /// Registers every job in the state directory; resumes the unfinished ones from their checkpoints. Runs before
    /// the daemon listens, so no client waits on its disk reads.
    func restore() {
        store.migrateFlatLayout()
        let names: [JobKey]
        do { names = try store.jobKeys() } catch {
            Log.error("cannot list jobs in \(store.ownersDirectory): \(error)")
            return
        }
        var resumed = 0
        for name in names where restore(name) { resumed += 1 }
        if !names.isEmpty { Log.info("restored \(jobs.count) job(s), \(resumed) resumed") }
    }

    /// Restores one job; returns true when its thread resumed.
    private func restore(_ key: JobKey) -> Bool {
        let name = key.name
        let label = JobName.full(owner: JobRecord.ownerName(of: key.owner), name: name)
        let stored: StateStore.StoredJob
        do { stored = try store.load(job: key) } catch {
            Log.error("job \(label): cannot be restored (\(error)); leaving its directory alone")
            return false
        }
        let spec = stored.spec
        let files = store.jobFiles(key)
        let trainer: Trainer
        do { trainer = try Trainer(spec: spec) } catch {
            Log.error("job \(label): its spec no longer validates (\(error)); leaving its directory alone")
            return false
        }
        let checkpoint = stored.checkpoint
            ?? JobCheckpoint(seq: 0, offset: 0, state: spec.paused ? .paused : .running,
                             summary: JobTable.initialSummary(trainer, spec: spec), trainer: nil)
        if checkpoint.state.isFinal {
            let record = JobRecord(name: name, owner: stored.owner, created: stored.created, files: files,
                                   spec: spec, summary: checkpoint.summary, paused: false, kind: stored.kind)
            register(Job(record: record, log: EventLog(path: files.events, publishedSeq: checkpoint.seq,
                                                       publishedOffset: checkpoint.offset, ended: true)))
            return false
        }
        if stored.kind == .external {
            // Its publisher is gone with the daemon that served it: it ends failed, its steps so far kept.
            if let job = restoreUnfinishedExternal(stored, files: files) { register(job) }
            return false
        }
        guard let offset = EventLog.recover(path: files.events, toSeq: checkpoint.seq, offset: checkpoint.offset) else {
            Log.error("job \(label): its log holds fewer than the \(checkpoint.seq) events its checkpoint promises; leaving its directory alone")
            return false
        }
        var resuming = trainer
        if checkpoint.seq > 0, let state = checkpoint.trainer {
            do { resuming = try Trainer(spec: spec, resuming: state) } catch {
                Log.error("job \(label): checkpoint does not fit its spec (\(error)); leaving its directory alone")
                return false
            }
        }
        let seq = checkpoint.trainer == nil ? 0 : checkpoint.seq
        let startOffset = seq == 0 ? 0 : offset
        if seq == 0, offset != 0 { _ = EventLog.recover(path: files.events, toSeq: 0, offset: 0) }
        var summary = checkpoint.summary
        summary.seq = seq
        let paused = checkpoint.state == .paused
        let record = JobRecord(name: name, owner: stored.owner, created: stored.created, files: files,
                               spec: spec, summary: summary, paused: paused)
        let job = Job(record: record, log: EventLog(path: files.events, publishedSeq: seq, publishedOffset: startOffset, ended: false))
        register(job)
        switch startThread(of: job, trainer: resuming, seq: seq, offset: startOffset, paused: paused) {
        case .success:
            Log.info("job \(label) resumed at seq \(seq) (iteration \(summary.iteration), \(checkpoint.state.rawValue))")
            return true
        case .failure(let error):
            Log.error("job \(label): cannot start its thread: \(error)")
            return false
        }
    }
}
