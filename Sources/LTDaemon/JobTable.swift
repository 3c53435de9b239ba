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
    private var jobs: [String: Job] = [:]
    private var order: [String] = []
    /// Names of jobs whose directory is being written in the threadpool.
    private var reserved: Set<String> = []

    init(store: StateStore, inbox: Inbox, launcher: ThreadLauncher) {
        self.store = store
        self.inbox = inbox
        self.launcher = launcher
    }

    subscript(name: String) -> Job? { jobs[name] }
    var count: Int { jobs.count + reserved.count }
    var all: Dictionary<String, Job>.Values { jobs.values }
    var inOrder: [Job] { order.compactMap { jobs[$0] } }

    func isTaken(_ name: String) -> Bool { jobs[name] != nil || reserved.contains(name) }
    func reserve(_ name: String) { reserved.insert(name) }
    func release(_ name: String) { reserved.remove(name) }

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
                         precision: record.precision, kind: record.kind, reason: record.damage)
    }

    /// The answer to an op that needs a damaged job's events or spec.
    func damagedError(_ name: String, _ damage: String, id: JSONValue?) -> ProtocolError {
        ProtocolError(.wrongState, "\(name) is damaged: \(damage). Its files are left as they were in \(store.jobFiles(name).directory); delete it with: ltctl delete \(name)", id: id)
    }

    static func initialSummary(_ trainer: Trainer, spec: JobSpec) -> JobSummary {
        let start = trainer.start
        return JobSummary(state: spec.paused ? .paused : .running, stepsPerEpoch: start.stepsPerEpoch,
                          epochs: spec.epochs, totalSteps: start.totalSteps, w: start.w, b: start.b)
    }

    /// Starts the job thread that runs `trainer` from log position (`seq`, `offset`).
    func startThread(of job: Job, spec: JobSpec, trainer: Trainer, seq: Int, offset: Int, paused: Bool) -> Result<Void, SystemError> {
        let runner = JobRunner(record: job.record, spec: spec, trainer: trainer, inbox: inbox, seq: seq, offset: offset, paused: paused)
        switch runner.start(using: launcher) {
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
            Log.info("job \(record.name) resumed at seq \(restored.seq) (iteration \(summary.iteration), \(summary.state.rawValue))")
            return true
        case .failure(let error):
            Log.error("job \(record.name): cannot start its thread: \(error)")
            return false
        }
    }
}
