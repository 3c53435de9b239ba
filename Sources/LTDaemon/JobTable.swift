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
    /// The state directory's bytes against `--max-state-bytes`, shared with the job threads.
    let budget: DiskBudget
    private var jobs: [String: Job] = [:]
    private var order: [String] = []
    /// Names of jobs whose directory is being written in the threadpool, with their owners.
    private var reserved: [String: UInt32] = [:]

    init(store: StateStore, inbox: Inbox, launcher: ThreadLauncher, budget: DiskBudget) {
        self.store = store
        self.inbox = inbox
        self.launcher = launcher
        self.budget = budget
    }

    subscript(name: String) -> Job? { jobs[name] }
    var count: Int { jobs.count + reserved.count }
    var all: Dictionary<String, Job>.Values { jobs.values }
    var inOrder: [Job] { order.compactMap { jobs[$0] } }

    func isTaken(_ name: String) -> Bool { jobs[name] != nil || reserved[name] != nil }
    func reserve(_ name: String, owner: UInt32) { reserved[name] = owner }
    func release(_ name: String) { reserved[name] = nil }

    /// Jobs `uid` keeps, counting those being recorded (`--max-jobs-per-user`).
    func count(ownedBy uid: UInt32) -> Int {
        jobs.values.count { $0.record.owner == uid } + reserved.values.count { $0 == uid }
    }

    func register(_ job: Job) {
        jobs[job.name] = job
        order.append(job.name)
    }

    func remove(_ job: Job) {
        jobs[job.name] = nil
        order.removeAll { $0 == job.name }
    }

    /// The job `record` belongs to, unless it was deleted (a new job may have its name).
    func job(of record: JobRecord) -> Job? {
        guard let job = jobs[record.name], job.record === record else { return nil }
        return job
    }

    func unknownJob(_ name: String, id: JSONValue?) -> ProtocolError {
        let known = order.isEmpty ? "none" : order.prefix(20).joined(separator: ", ") + (order.count > 20 ? ", …" : "")
        return ProtocolError(.unknownJob, "no job named \"\(name)\"; known jobs: \(known). Start one with: ltctl start \(name) --example colab", id: id)
    }

    func status(of job: Job) -> JobStatus {
        let record = job.record
        let s = record.summary.withLock { $0 }
        return JobStatus(job: record.name, state: s.state, owner: record.owner, created: record.created,
                         iteration: s.iteration, epoch: s.epoch, step: s.step, stepsPerEpoch: s.stepsPerEpoch,
                         epochs: s.epochs, totalSteps: s.totalSteps, seq: s.seq, w: s.w, b: s.b, loss: s.loss,
                         rmse: s.rmse, valLoss: s.valLoss, valRmse: s.valRmse, message: s.message,
                         precision: record.spec.precision, kind: record.kind)
    }

    static func initialSummary(_ trainer: Trainer, spec: JobSpec) -> JobSummary {
        let start = trainer.start
        return JobSummary(state: spec.paused ? .paused : .running, stepsPerEpoch: start.stepsPerEpoch,
                          epochs: spec.epochs, totalSteps: start.totalSteps, w: start.w, b: start.b)
    }

    /// Starts the job thread that runs `trainer` from log position (`seq`, `offset`).
    func startThread(of job: Job, trainer: Trainer, seq: Int, offset: Int, paused: Bool) -> Result<Void, SystemError> {
        let runner = JobRunner(record: job.record, trainer: trainer, inbox: inbox, budget: budget, seq: seq, offset: offset, paused: paused)
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
        let names: [String]
        do { names = try store.jobNames() } catch {
            Log.error("cannot list jobs in \(store.jobsDirectory): \(error)")
            return
        }
        var resumed = 0
        for name in names where restore(name) { resumed += 1 }
        if !names.isEmpty { Log.info("restored \(jobs.count) job(s), \(resumed) resumed") }
    }

    /// Restores one job; returns true when its thread resumed.
    private func restore(_ name: String) -> Bool {
        let stored: StateStore.StoredJob
        do { stored = try store.load(job: name) } catch {
            Log.error("job \(name): cannot be restored (\(error)); leaving its directory alone")
            return false
        }
        let spec = stored.spec
        let files = store.jobFiles(name)
        let trainer: Trainer
        do { trainer = try Trainer(spec: spec) } catch {
            Log.error("job \(name): its spec no longer validates (\(error)); leaving its directory alone")
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
            Log.error("job \(name): its log holds fewer than the \(checkpoint.seq) events its checkpoint promises; leaving its directory alone")
            return false
        }
        var resuming = trainer
        if checkpoint.seq > 0, let state = checkpoint.trainer {
            do { resuming = try Trainer(spec: spec, resuming: state) } catch {
                Log.error("job \(name): checkpoint does not fit its spec (\(error)); leaving its directory alone")
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
            Log.info("job \(name) resumed at seq \(seq) (iteration \(summary.iteration), \(checkpoint.state.rawValue))")
            return true
        case .failure(let error):
            Log.error("job \(name): cannot start its thread: \(error)")
            return false
        }
    }
}
