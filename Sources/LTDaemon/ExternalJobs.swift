#if canImport(Glibc)
import Glibc
#endif
import LTEngine
import LTProtocol

/// Jobs fed from outside (docs/PROTOCOL.md, "External jobs"): a client creates the job and publishes its events.
/// LTProtocol's `ExternalStream` checks each event and encodes its lines; from there on everything is as for a native
/// job: the lines become a chunk, are appended to the job's log file and published to its `EventLog`, which fans them
/// out and serves cursors. The new parts are only who may append (the creating connection) and what its going away
/// means.
final class ExternalFeed {
    var stream: ExternalStream
    /// The connection that created the job, while it may still publish; nil once the job has ended.
    var publisher: ObjectIdentifier?
    let appender: EventLog.Appender

    init(stream: ExternalStream, publisher: ObjectIdentifier, appender: EventLog.Appender) {
        self.stream = stream; self.publisher = publisher; self.appender = appender
    }
}

extension Server {
    /// `create`: records the job as `start` does (its directory written in the threadpool, its name reserved and the
    /// connection's later requests held meanwhile), then writes its `start` and `state running` events.
    func create(_ name: String, spec requested: JobSpec, run: ExternalRun, prepared: PreparedStart?,
                _ connection: Connection, id: JSONValue?) {
        let key = JobKey(owner: connection.peerUID, name: name)
        if let refusal = refusalToRecord(key, id: id) { return connection.send(refusal.line) }
        // The publisher sets the pace; an external job is never paused by the daemon. (Neither changes the maths, so a
        // trainer prepared from the request serves.)
        var paced = requested
        paced.paused = false
        paced.paceMs = 0
        let spec = paced
        let trainer: Trainer
        switch prepared?.trainer ?? Server.makeTrainer(spec) {
        case .success(let ready): trainer = ready
        case .failure(let error):
            return connection.send(ProtocolError(.invalidSpec, error.description, field: error.field, id: id).line)
        }
        let owner = key.owner
        if let refusal = diskRefusal(spec, totalSteps: trainer.start.totalSteps, owner: owner, id: id) { return connection.send(refusal.line) }
        let summary = JobTable.initialSummary(trainer, spec: spec)
        let created = Clock.utcTimestamp()
        let initial = JobCheckpoint(seq: 0, offset: 0, state: .running, summary: summary, trainer: nil)
        let store = jobs.store
        let files = store.jobFiles(key)
        let outcome = ExternalCreateOutcome()
        jobs.reserve(key)
        connection.suspendRequests()
        loop.queueWork({
            do throws(SystemError) {
                try store.create(job: key, spec: spec, owner: owner, created: created, checkpoint: initial, kind: .external)
            } catch {
                outcome.failure = error
                return
            }
            switch EventLog.openAppender(path: files.events) {
            case .success(let appender): outcome.appender = appender
            case .failure(let error):
                outcome.failure = error
                try? FileIO.removeTree(files.directory)
            }
        }, then: { [unowned self] in
            jobs.release(key)
            defer { connection.resumeRequests() }
            guard let appender = outcome.appender else {
                let error = outcome.failure ?? SystemError(operation: "open", path: files.events, code: EIO)
                if error.code == EEXIST {
                    connection.send(ProtocolError(.jobExists, "the state directory already holds a job named \"\(name)\" that this daemon could not load (see its log); pick another name", id: id).line)
                } else {
                    Log.error("job \(name): cannot record it: \(error)")
                    connection.send(ProtocolError(.internalError, "cannot record job \(name) in the state directory: \(error)", id: id).line)
                }
                return
            }
            jobs.budget.add(FileIO.size(files.spec), owner: owner)
            let record = JobRecord(name: name, owner: owner, created: created, files: files, precision: spec.precision,
                                   summary: summary, paused: false, kind: .external)
            let job = Job(record: record, log: EventLog(path: files.events, publishedSeq: 0, publishedOffset: 0, ended: false))
            let start = trainer.start
            job.external = ExternalFeed(
                stream: ExternalStream(job: name, spec: spec, stepsPerEpoch: start.stepsPerEpoch, totalSteps: start.totalSteps,
                                       slotNames: start.slots.names, w: start.w, b: start.b, shuffled: run.shuffled),
                publisher: connection.id, appender: appender)
            jobs.register(job)
            if let failure = append([(EventEncoder.start(job: name, seq: 1, spec: spec, record: start, external: run), .start, 0),
                                     (EventEncoder.state(job: name, seq: 2, state: .running, message: nil), .state, 0)], to: job) {
                failExternal(job, cause: failure.message)
            }
            Log.info("external job \(record.fullName) created by uid \(owner): \(spec.data.x.count) rows, \(spec.epochs) epoch(s) × \(start.stepsPerEpoch) step(s), \(spec.optimizer.name.rawValue)",
                     JournalFields(job: record, messageID: .jobStarted))
            JobJournal.audit("create", of: record, by: connection, role: .owner)
            connection.send(Reply.started(id: id, job: name, status: jobs.status(of: job)))
            // The creator went away while the directory was written: nobody can publish, so the job ends here.
            if connection.closing { publisherClosing(connection) }
        })
    }

    /// The threadpool's answer to `create`'s directory writes.
    private final class ExternalCreateOutcome: @unchecked Sendable {
        // @unchecked: written by the threadpool thread before the after-callback reads it on the loop.
        var failure: SystemError?
        var appender: EventLog.Appender?
    }

    /// `publish`: one event from the creating connection, checked, sequenced, logged and fanned out.
    func publish(_ name: String, event: JSONValue, _ connection: Connection, id: JSONValue?) {
        guard let job = job(named: name, connection, id: id) else { return }
        guard let feed = job.external else {
            let message = job.record.kind == .external
                ? "\(name) has ended (\(job.record.summary.withLock { $0.state }.rawValue)); nothing more can be published to it"
                : "\(name) is a native job, trained by ltd; publish feeds only jobs made with create"
            return connection.send(ProtocolError(.wrongState, message, id: id).line)
        }
        guard !feed.stream.ended else {
            let state = job.record.summary.withLock { $0.state }
            return connection.send(ProtocolError(.wrongState, "\(name) has ended (\(state.rawValue)); nothing more can be published to it", id: id).line)
        }
        guard feed.publisher == connection.id else {
            let owner = job.record.owner
            return connection.send(ProtocolError(.permissionDenied, "only the connection that created \(name) may publish to it", owner: owner, id: id).line)
        }
        let before = feed.stream
        let result: (lines: [[UInt8]], outcome: ExternalStream.Outcome)
        do throws(ProtocolError) {
            result = try feed.stream.accept(event, seq: job.log.publishedSeq + 1)
        } catch {
            var e = error
            e.id = id
            return connection.send(e.line)
        }
        let failure: AppendFailure?
        switch result.outcome {
        case let .step(epoch, step, iteration, w, b, loss, rmse, valLoss, valRmse):
            failure = append([(result.lines[0], .step, iteration)], to: job)
            if failure == nil {
                job.record.summary.withLock { s in
                    s.iteration = iteration; s.epoch = epoch; s.step = step; s.w = w; s.b = b
                    s.loss = loss; s.rmse = rmse; s.valLoss = valLoss; s.valRmse = valRmse
                }
            }
        case .epoch:
            failure = append([(result.lines[0], .epoch, 0)], to: job)
        case let .end(state, message):
            failure = nil
            finishExternal(job, feed: feed, lines: result.lines, state: state, message: message)
        }
        if let failure {
            // The event is not logged, so nobody sees it (its end reports the job as it was before it); the job
            // cannot go on and ends failed, saying why.
            feed.stream = before
            failExternal(job, cause: failure.message)
            let code: ErrorCode = failure.isLimit ? .diskLimit : .wrongState
            return connection.send(ProtocolError(code, "this event was not recorded because \(failure.message); \(name) has failed, its events before this one are kept", id: id).line)
        }
        connection.send(Reply.published(id: id, job: name, seq: job.log.publishedSeq))
    }

    /// Ends an external job that is still open: cancelled by its owner, or failed when its publisher went away.
    func endExternal(_ job: Job, state: JobState, message: String) {
        guard let feed = job.external, !feed.stream.ended else { return }
        let lines = feed.stream.end(state: state, message: message, seq: job.log.publishedSeq + 1)
        finishExternal(job, feed: feed, lines: lines, state: state, message: message)
    }

    /// A connection is going away: the jobs it was publishing end failed.
    func publisherClosing(_ connection: Connection) {
        for job in jobs.all {
            guard let feed = job.external, feed.publisher == connection.id, !feed.stream.ended else { continue }
            let message = ExternalStream.lostPublisherMessage(iteration: feed.stream.iteration, total: feed.stream.totalSteps)
            endExternal(job, state: .failed, message: message)
        }
    }

    /// Ends an external job whose log cannot take its events (a disk limit, a full disk, an I/O error).
    private func failExternal(_ job: Job, cause: String) {
        let message = "stopped because \(cause); its events so far are kept (ltctl delete \(job.name) removes it)"
        Log.error("external job \(job.name): \(message)")
        endExternal(job, state: .failed, message: message)
    }

    /// Writes the final events, closes the log and writes the final checkpoint (in the threadpool: it fsyncs).
    /// Watchers get the final events even when the log cannot take them; the checkpoint records what it holds.
    private func finishExternal(_ job: Job, feed: ExternalFeed, lines: [[UInt8]], state: JobState, message: String?) {
        let ended = Clock.utcTimestamp()
        job.record.summary.withLock { $0.state = state; $0.message = message; $0.ended = ended }
        let durable = (seq: job.log.publishedSeq, offset: job.log.publishedOffset)
        let failure = append([(lines[0], .state, 0), (lines[1], .end, 0)], to: job, final: true)
        feed.publisher = nil
        feed.appender.close()
        let summary = job.record.summary.withLock { $0 }
        let end = failure == nil ? (seq: job.log.publishedSeq, offset: job.log.publishedOffset) : durable
        let checkpoint = JobCheckpoint(seq: end.seq, offset: end.offset, state: state, summary: summary, trainer: nil)
        let files = job.record.files
        let name = job.name
        loop.queueWork({
            do {
                try checkpoint.write(to: files)
            } catch {
                Log.error("job \(name): final checkpoint failed: \(error)")
            }
        }, then: {})
        if job.subscribers.isEmpty { job.log.releaseTail() }
        JobJournal.ended(job.record, summary)
    }

    /// Why lines could not be logged: a disk limit (`isLimit`), or the file refused them.
    private struct AppendFailure {
        let message: String
        let isLimit: Bool
    }

    /// Appends encoded lines (consecutive seqs from the log's next one) to the log file, then publishes them to the
    /// job's `EventLog` and pumps its subscribers, exactly as a job thread's chunk is handled (and with the same
    /// rules: lines the log cannot take are shown to nobody, except the `final` ones, which may pass the limits).
    @discardableResult
    private func append(_ lines: [(line: [UInt8], kind: EventKind, iteration: Int)], to job: Job, final: Bool = false) -> AppendFailure? {
        guard let feed = job.external else { return nil }
        var builder = EventBatchBuilder(capacity: lines.reduce(0) { $0 + $1.line.count })
        for l in lines { builder.append(l.line, kind: l.kind, iteration: l.iteration) }
        let chunk = builder.take(firstSeq: job.log.publishedSeq + 1, fileOffset: job.log.publishedOffset)
        builder.release()
        let bytes = chunk.bytes.count
        if !final, let refusal = jobs.budget.take(bytes, logAt: chunk.fileOffset, owner: job.record.owner) {
            return AppendFailure(message: refusal, isLimit: true)
        }
        if let error = feed.appender.append(chunk) {
            if !final { jobs.budget.release(bytes, owner: job.record.owner) }
            jobs.budget.freeReserve()
            let failure = AppendFailure(message: "its log cannot be written: \(error)", isLimit: false)
            guard final else { return failure }
            Log.error("external job \(job.name): its final events could not be written (\(error)); its watchers get them, and the next start writes them")
            publishAndPump(chunk.notInFile(), of: job)
            return failure
        }
        if final { jobs.budget.add(bytes, owner: job.record.owner) }
        publishAndPump(chunk, of: job)
        return nil
    }

    private func publishAndPump(_ chunk: EventChunk, of job: Job) {
        job.log.publish(chunk)
        job.record.summary.withLock { $0.seq = chunk.lastSeq }
        for connection in job.subscribers.values { connection.pump() }
    }
}

extension JobTable {
    /// An external job found unfinished at start-up (the daemon stopped while it was being published): its complete
    /// lines are kept, and it ends failed. Runs off the loop thread (restore); throws when its log cannot be read
    /// or repaired (the job is then listed as damaged).
    static func restoreUnfinishedExternal(_ stored: StateStore.StoredJob, key: JobKey, store: StateStore) throws -> RestoredJob {
        let name = stored.name
        let files = store.jobFiles(key)
        let bytes: [UInt8]
        do { bytes = try FileIO.readAll(path: files.events) } catch {
            throw RestoredJob.Damage("cannot read its log (\(error))")
        }
        let complete = (bytes.lastIndex(of: 0x0A).map { $0 + 1 }) ?? 0
        var seq = 0
        var summary = stored.checkpoint?.summary ?? JobSummary(state: .running, epochs: stored.spec.epochs)
        var lineStart = 0
        for i in 0..<complete where bytes[i] == 0x0A {
            seq += 1
            if let event = try? Event(line: bytes[lineStart..<i]), event.type == .step {
                summary.iteration = event.int("iteration") ?? summary.iteration
                summary.epoch = event.int("epoch") ?? summary.epoch
                summary.step = event.int("step") ?? summary.step
                summary.w = event.double("w_after") ?? summary.w
                summary.b = event.double("b_after") ?? summary.b
            }
            lineStart = i + 1
        }
        guard EventLog.recover(path: files.events, toSeq: seq, offset: complete) == complete else {
            throw RestoredJob.Damage("cannot cut its log back to its complete lines")
        }
        let message = "ltd stopped while this job was being published, after \(summary.iteration) of \(summary.totalSteps) steps; the steps so far are kept"
        var tail = EventEncoder.state(job: name, seq: seq + 1, state: .failed, message: message)
        tail += EventEncoder.end(job: name, seq: seq + 2, state: .failed, iteration: summary.iteration, epoch: summary.epoch,
                                 w: summary.w, b: summary.b, message: message, precision: stored.spec.precision)
        do { try EventLog.appendOwed(tail, path: files.events, at: complete) } catch {
            throw RestoredJob.Damage("cannot end its log: \(error)")
        }
        summary.state = .failed
        summary.message = message
        summary.ended = Clock.utcTimestamp()
        summary.seq = seq + 2
        let end = complete + tail.count
        let checkpoint = JobCheckpoint(seq: seq + 2, offset: end, state: .failed, summary: summary, trainer: nil)
        do { try checkpoint.write(to: files) } catch {
            Log.error("external job \(key.owner)/\(name): final checkpoint failed: \(error)")
        }
        let record = JobRecord(name: name, owner: stored.owner, created: stored.created, files: files,
                               precision: stored.spec.precision, summary: summary, paused: false, kind: .external)
        Log.warning("external job \(record.fullName): \(message)")
        return RestoredJob(record: record, seq: seq + 2, offset: end, outcome: .over,
                           bytes: store.bytesInUse(of: key, logBytes: end))
    }
}
