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
    /// The state directory's bytes against `--max-state-bytes`, shared with the job threads.
    let budget: DiskBudget
    private var jobs: [JobKey: Job] = [:]
    private var order: [JobKey] = []
    /// Jobs whose directory is being written in the threadpool.
    private var reserved: Set<JobKey> = []

    init(store: StateStore, inbox: Inbox, budget: DiskBudget) {
        self.store = store
        self.inbox = inbox
        self.budget = budget
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

    /// Jobs `uid` keeps, counting those being recorded (`--max-jobs-per-user`).
    func count(ownedBy uid: UInt32) -> Int {
        jobs.keys.count { $0.owner == uid } + reservedCount(ownedBy: uid)
    }

    func reservedCount(ownedBy uid: UInt32) -> Int { reserved.count { $0.owner == uid } }

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
                         precision: record.precision, kind: record.kind, fullName: record.fullName, reason: record.damage,
                         ended: s.ended)
    }

    static func initialSummary(_ trainer: Trainer, spec: JobSpec) -> JobSummary {
        let start = trainer.start
        return JobSummary(state: spec.paused ? .paused : .running, stepsPerEpoch: start.stepsPerEpoch,
                          epochs: spec.epochs, totalSteps: start.totalSteps, w: start.w, b: start.b)
    }

    /// Starts the job thread that runs `trainer` from log position (`seq`, `offset`).
    func startThread(of job: Job, spec: JobSpec, trainer: Trainer, seq: Int, offset: Int, paused: Bool) -> Result<Void, SystemError> {
        let runner = JobRunner(record: job.record, spec: spec, trainer: trainer, inbox: inbox, budget: budget, seq: seq,
                               offset: offset, paused: paused)
        switch runner.start() {
        case .success(let thread):
            job.thread = thread
            job.spec = spec
            return .success(())
        case .failure(let error):
            return .failure(error)
        }
    }

    /// Waits for the job thread, which has exited or is about to (it said so through the inbox, or its job is over),
    /// and lets go of its spec (`explain` reads it again from the job's directory).
    func joinThread(of job: Job) {
        guard let thread = job.thread else { return }
        pthread_join(thread, nil)
        job.thread = nil
        job.spec = nil
    }

    // MARK: Restore

    /// Registers a job that `RestoredJob.read` found (off the loop) and, if it resumes, starts its thread. Returns
    /// true when its thread resumed.
    func register(_ restored: RestoredJob) -> Bool {
        let record = restored.record
        let resume: (spec: JobSpec, trainer: Trainer, paused: Bool)?
        if case .resume(let spec, let trainer, let paused) = restored.outcome { resume = (spec, trainer, paused) } else { resume = nil }
        let job = Job(record: record, log: EventLog(path: record.files.events, publishedSeq: restored.seq,
                                                   publishedOffset: restored.offset, ended: resume == nil))
        register(job)
        guard let resume else { return false }
        switch startThread(of: job, spec: resume.spec, trainer: resume.trainer, seq: restored.seq, offset: restored.offset,
                           paused: resume.paused) {
        case .success:
            let summary = record.summary.withLock { $0 }
            Log.info("job \(record.fullName) resumed at seq \(restored.seq) (iteration \(summary.iteration), \(summary.state.rawValue))")
            return true
        case .failure(let error):
            Log.error("job \(record.fullName): cannot start its thread: \(error)")
            return false
        }
    }
}
