#if canImport(Glibc)
import Glibc
#endif
import LTEngine
import LTProtocol

// The requests: one `switch` over the typed `Request`, one method per op. A new op is a case in `answer` and a
// method here. Each method queues its reply on the connection; the server's flush pass writes it.

extension Server {
    /// Answers one request line from `connection` (without its `\n`).
    func handle(line: UnsafeRawBufferPointer, from connection: Connection) {
        answer(RequestLine.decode(line), prepared: nil, from: connection)
    }

    /// What `start` needs before the loop can register the job, worked out in the threadpool for a large line.
    struct PreparedStart: Sendable {
        var trainer: Result<Trainer, SpecError>
        var specFile: [UInt8]?
    }

    static func makeTrainer(_ spec: JobSpec) -> Result<Trainer, SpecError> {
        do throws(SpecError) { return .success(try Trainer(spec: spec)) } catch { return .failure(error) }
    }

    /// A large request line on its way through the threadpool: decoded, and for `start` its Trainer prepared.
    private final class DecodeWork: @unchecked Sendable {
        // @unchecked: `decoded` and `prepared` are written by the threadpool thread before the loop reads them
        // (uv_queue_work's after-callback orders the two).
        let line: [UInt8]
        var decoded: Result<RequestLine, ProtocolError>?
        var prepared: PreparedStart?
        init(line: [UInt8]) { self.line = line }

        func run() {
            let result = RequestLine.decode(line)
            decoded = result
            if case .success(let request) = result, case .create(_, let spec, _) = request.request {
                prepared = PreparedStart(trainer: Server.makeTrainer(spec), specFile: nil)
            } else if case .success(let request) = result, case .start(_, let spec) = request.request {
                let trainer = Server.makeTrainer(spec)
                if case .success = trainer {
                    prepared = PreparedStart(trainer: trainer, specFile: StateStore.specFile(spec))
                } else {
                    prepared = PreparedStart(trainer: trainer, specFile: nil)
                }
            }
        }
    }

    /// Decodes `line` in libuv's threadpool, then answers it on the loop (`connection` reads nothing meanwhile).
    func decodeInBackground(_ line: [UInt8], from connection: Connection) {
        let work = DecodeWork(line: line)
        connection.suspendRequests()
        loop.queueWork({ work.run() }, then: { [unowned self] in
            if !connection.closing, let decoded = work.decoded { answer(decoded, prepared: work.prepared, from: connection) }
            connection.resumeRequests()
        })
    }

    /// Answers a decoded request, or holds it while restore has not registered the job it needs (`Restorer`).
    func answer(_ decoded: Result<RequestLine, ProtocolError>, prepared: PreparedStart?, from connection: Connection) {
        if isShuttingDown {
            connection.send(ProtocolError(.shuttingDown, "ltd is shutting down; try again when it is back").line)
            connection.finishAfterFlush()
            return
        }
        let line: RequestLine
        switch decoded {
        case .failure(let error):
            Log.debug("uid \(connection.peerUID): \(error.code.rawValue): \(error.message)")
            connection.send(error.line)
            return
        case .success(let decoded):
            line = decoded
        }
        if restorer.mustWait(line.request, from: connection) { return restorer.wait(line, prepared: prepared, from: connection) }
        let id = line.id
        switch line.request {
        case .hello: hello(connection, id: id)
        case .start(let job, let spec): start(job, spec: spec, prepared: prepared, connection, id: id)
        case .list(let all): list(all: all, connection, id: id)
        case .status(let job): status(job, connection, id: id)
        case .subscribe(let job, let from, let every, let types):
            subscribe(job, from: from, every: every, types: types, connection, id: id)
        case .unsubscribe: unsubscribe(connection, id: id)
        case .pause(let job): pause(job, connection, id: id)
        case .resume(let job): resume(job, connection, id: id)
        case .step(let job, let count): step(job, count: count, connection, id: id)
        case .cancel(let job): cancel(job, connection, id: id)
        case .delete(let job): delete(job, connection, id: id)
        case .explain(let job, let iteration): explain(job, iteration: iteration, connection, id: id)
        case .create(let job, let spec, let run): create(job, spec: spec, run: run, prepared: prepared, connection, id: id)
        case .publish(let job, let event): publish(job, event: event, connection, id: id)
        case .prune(let olderThan, let all, let dryRun): prune(olderThan: olderThan, all: all, dryRun: dryRun, connection, id: id)
        case .stats: stats(connection, id: id)
        }
    }

    // MARK: The ops

    /// Who the daemon is, and who the caller is as the daemon sees it (SO_PEERCRED), as separate fields.
    private func hello(_ connection: Connection, id: JSONValue?) {
        var peer = connection.peer
        peer.user = PeerCredentials.userName(of: peer.uid)
        connection.send(Reply.hello(id: id, daemon: PeerCredentials.ownIdentity(), peer: peer))
    }

    /// The caller's jobs, or everyone's.
    private func list(all: Bool, _ connection: Connection, id: JSONValue?) {
        let listed = all ? jobs.inOrder : jobs.inOrder(ownedBy: connection.peerUID)
        connection.send(Reply.jobs(id: id, listed.map(jobs.status(of:))))
    }

    private func status(_ name: String, _ connection: Connection, id: JSONValue?) {
        guard let job = job(named: name, connection, id: id) else { return }
        connection.send(Reply.status(id: id, jobs.status(of: job)))
    }

    private func subscribe(_ name: String, from: Int, every: Int, types: Set<EventType>?, _ connection: Connection,
                           id: JSONValue?) {
        guard let job = sound(job(named: name, connection, id: id), named: name, connection, id: id) else { return }
        if connection.subscription != nil {
            return connection.send(ProtocolError(.alreadySubscribed, "this connection already follows a job; unsubscribe first or open another connection", id: id).line)
        }
        let state = job.record.summary.withLock { $0.state }
        let complete = job.log.ended && from > job.log.publishedSeq
        connection.send(Reply.subscribed(id: id, job: name, from: from, lastSeq: job.log.publishedSeq, state: state, complete: complete))
        if !complete {
            connection.subscribe(Subscription(job: job, from: from, every: every, types: types))
            connection.pump()
        }
    }

    private func unsubscribe(_ connection: Connection, id: JSONValue?) {
        connection.endSubscription()
        connection.send(Reply.ok(id: id, op: "unsubscribe", job: nil, state: nil))
    }

    /// Records a new job: its directory is written in the threadpool (fsyncs), its name reserved meanwhile and the
    /// connection's later requests held, then its thread starts on the loop.
    private func start(_ name: String, spec: JobSpec, prepared: PreparedStart?, _ connection: Connection, id: JSONValue?) {
        let key = JobKey(owner: connection.peerUID, name: name)
        let owner = key.owner
        if let refusal = refusalToRecord(key, id: id) { return connection.send(refusal.line) }
        // A small spec's file is encoded with the rest of the directory, in the threadpool.
        let ready = prepared ?? PreparedStart(trainer: Server.makeTrainer(spec), specFile: nil)
        let trainer: Trainer
        switch ready.trainer {
        case .success(let prepared): trainer = prepared
        case .failure(let error):
            return connection.send(ProtocolError(.invalidSpec, error.description, field: error.field, id: id).line)
        }
        if let refusal = diskRefusal(spec, totalSteps: trainer.start.totalSteps, owner: owner, id: id) { return connection.send(refusal.line) }
        let summary = JobTable.initialSummary(trainer, spec: spec)
        let created = Clock.utcTimestamp()
        let initial = JobCheckpoint(seq: 0, offset: 0, state: summary.state, summary: summary, trainer: trainer.checkpoint)
        let store = jobs.store
        let specFile = ready.specFile
        let outcome = CreateOutcome()
        jobs.reserve(key)
        connection.suspendRequests()
        loop.queueWork({
            do throws(SystemError) {
                try store.create(job: key, spec: spec, specFile: specFile, owner: owner, created: created, checkpoint: initial)
            } catch {
                outcome.failure = error
            }
        }, then: { [unowned self] in
            jobs.release(key)
            defer { connection.resumeRequests() }
            if let error = outcome.failure {
                if error.code == EEXIST {
                    // A directory the daemon could not restore at start-up still holds this name.
                    connection.send(ProtocolError(.jobExists, "the state directory already holds a job named \"\(name)\" that this daemon could not load (see its log); pick another name", id: id).line)
                } else {
                    Log.error("job \(name): cannot record it: \(error)")
                    connection.send(ProtocolError(.internalError, "cannot record job \(name) in the state directory: \(error)", id: id).line)
                }
                return
            }
            let files = store.jobFiles(key)
            jobs.budget.add(FileIO.size(files.spec), owner: owner)
            let record = JobRecord(name: name, owner: owner, created: created, files: files, precision: spec.precision,
                                   summary: summary, paused: spec.paused)
            let job = Job(record: record, log: EventLog(path: files.events, publishedSeq: 0, publishedOffset: 0, ended: false))
            if case .failure(let error) = jobs.startThread(of: job, spec: spec, trainer: trainer, seq: 0, offset: 0, paused: spec.paused) {
                Log.error("job \(name): cannot start its thread: \(error)")
                removeInBackground(files.directory)
                connection.send(ProtocolError(.internalError, "cannot start a thread for job \(name): \(error)", id: id).line)
                return
            }
            jobs.register(job)
            Log.info("job \(record.fullName) started by uid \(owner): \(spec.data.x.count) rows, \(spec.epochs) epoch(s) × \(trainer.start.stepsPerEpoch) step(s), \(spec.optimizer.name.rawValue), \(spec.precision.rawValue)\(spec.paused ? ", paused" : "")",
                     JournalFields(job: record, messageID: .jobStarted))
            JobJournal.audit("start", of: record, by: connection, role: .owner)
            connection.send(Reply.started(id: id, job: name, status: jobs.status(of: job)))
        })
    }

    /// The threadpool's answer to `start`'s directory writes.
    private final class CreateOutcome: @unchecked Sendable {
        // @unchecked: written by the threadpool thread before the after-callback reads it on the loop.
        var failure: SystemError?
    }

    private func pause(_ name: String, _ connection: Connection, id: JSONValue?) {
        guard let (job, state, role) = controllable(name, op: "pause", connection, id: id) else { return }
        guard !job.isOver else { return wrongState("\(name) is \(state.rawValue); only a running job can be paused", connection, id: id) }
        job.record.control.requestPause()
        JobJournal.audit("pause", of: job.record, by: connection, role: role)
        connection.send(Reply.ok(id: id, op: "pause", job: name, state: .paused))
    }

    private func resume(_ name: String, _ connection: Connection, id: JSONValue?) {
        guard let (job, state, role) = controllable(name, op: "resume", connection, id: id) else { return }
        guard !job.isOver else { return wrongState("\(name) is \(state.rawValue); only a paused job can be resumed", connection, id: id) }
        job.record.control.requestResume()
        JobJournal.audit("resume", of: job.record, by: connection, role: role)
        connection.send(Reply.ok(id: id, op: "resume", job: name, state: .running))
    }

    private func step(_ name: String, count: Int, _ connection: Connection, id: JSONValue?) {
        guard let (job, state, role) = controllable(name, op: "step", connection, id: id) else { return }
        guard !job.isOver else { return wrongState("\(name) is \(state.rawValue); it has no steps left", connection, id: id) }
        guard job.record.control.requestSteps(count) else {
            return wrongState("\(name) is running; pause it first (ltctl pause \(name)), then step it", connection, id: id)
        }
        JobJournal.audit("step", of: job.record, by: connection, role: role, detail: " by \(count)")
        connection.send(Reply.ok(id: id, op: "step", job: name, state: .paused))
    }

    private func cancel(_ name: String, _ connection: Connection, id: JSONValue?) {
        guard let (job, state, role) = controllable(name, op: "cancel", connection, id: id) else { return }
        guard !job.isOver else { return wrongState("\(name) is already \(state.rawValue)", connection, id: id) }
        JobJournal.audit("cancel", of: job.record, by: connection, role: role)
        if job.external != nil {
            endExternal(job, state: .cancelled, message: "cancelled by \(PeerCredentials.describe(uid: connection.peerUID))")
            return connection.send(Reply.ok(id: id, op: "cancel", job: name, state: .cancelled))
        }
        job.record.control.requestCancel()
        connection.send(Reply.ok(id: id, op: "cancel", job: name, state: .cancelled))
    }

    /// Deletes a finished job: its directory is renamed away at once and removed in the threadpool.
    private func delete(_ name: String, _ connection: Connection, id: JSONValue?) {
        guard let (job, state, role) = controllable(name, op: "delete", connection, id: id) else { return }
        guard job.isOver, job.thread == nil || state.isFinal else {
            return connection.send(ProtocolError(.jobActive, "\(name) is \(state.rawValue); cancel it first (ltctl cancel \(name)), then delete it", id: id).line)
        }
        if let error = discard(job, because: "was deleted") {
            return connection.send(ProtocolError(.internalError, "cannot remove job \(name)'s files: \(error)", id: id).line)
        }
        JobJournal.audit("delete", of: job.record, by: connection, role: role)
        connection.send(Reply.ok(id: id, op: "delete", job: name, state: nil))
    }

    // MARK: What the job ops share

    /// The job `name` names for the caller (docs/PROTOCOL.md, "Job names"); else queues `unknown_job`.
    func job(named name: String, _ connection: Connection, id: JSONValue?) -> Job? {
        if let job = jobs.find(name, for: connection.peerUID) { return job }
        connection.send(jobs.unknownJob(name, for: connection.peerUID, id: id).line)
        return nil
    }

    /// `job` unless it is damaged (then queues why, and how to delete it): for the ops that need its events or spec.
    func sound(_ job: Job?, named name: String, _ connection: Connection, id: JSONValue?) -> Job? {
        guard let job, let damage = job.record.damage else { return job }
        connection.send(ProtocolError(.wrongState, "\(name) is damaged: \(damage). Its files are left as they were in \(job.record.files.directory); delete it with: ltctl delete \(name)", id: id).line)
        return nil
    }


    /// The job, if it exists and the caller may control it (its owner, root or an admin), with its state and the
    /// caller's role; else queues the error.
    private func controllable(_ name: String, op: String, _ connection: Connection, id: JSONValue?) -> (Job, JobState, AccessPolicy.Role)? {
        guard let job = job(named: name, connection, id: id) else { return nil }
        let owner = job.record.owner
        guard let role = access.role(of: connection, over: owner) else {
            Log.info("refused: \(PeerCredentials.describe(uid: connection.peerUID)) may not \(op) \(job.record.fullName), owned by uid \(owner)")
            connection.send(ProtocolError(.permissionDenied, "\(name) belongs to \(PeerCredentials.describe(uid: owner)); only its owner, root or a member of the group \(access.adminGroup) may \(op) it", owner: owner, id: id).line)
            return nil
        }
        // An external job's publisher drives it: it can be cancelled (and deleted once over), not paused or stepped.
        if job.record.kind == .external, ["pause", "resume", "step"].contains(op) {
            wrongState("\(name) is fed from outside (by the Keras bridge or another publisher), which sets its pace; it cannot \(op)", connection, id: id)
            return nil
        }
        return (job, job.record.summary.withLock { $0.state }, role)
    }

    private func wrongState(_ message: String, _ connection: Connection, id: JSONValue?) {
        connection.send(ProtocolError(.wrongState, message, id: id).line)
    }
}
