#if canImport(Glibc)
import Glibc
#endif
import LTEngine
import LTProtocol

/// Jobs fed from outside (docs/PROTOCOL.md, "External jobs"): a client creates the job and publishes its events.
/// LTProtocol's `ExternalStream` checks each event and encodes its lines; from there on everything is as for a native
/// job: the lines become a chunk, are appended to the job's log, and go to `JobStream`, which fans them out and serves
/// cursors. The new parts are only who may append (the creating connection) and what its going away means.
final class ExternalFeed {
    var stream: ExternalStream
    /// The connection that created the job, while it may still publish; nil once the job has ended.
    var publisher: ObjectIdentifier?
    let logFD: Int32
    var logBroken = false

    init(stream: ExternalStream, publisher: ObjectIdentifier, logFD: Int32) {
        self.stream = stream; self.publisher = publisher; self.logFD = logFD
    }

    func closeLog() { _ = close(logFD) }
}

extension Daemon {
    /// `create`: records the job as `start` does, then writes its `start` and `state running` events.
    func createExternal(name: String, spec requested: JobSpec, run: ExternalRun, prepared: Result<Trainer, SpecError>?,
                        from connection: Connection, id: JSONValue?) {
        guard jobs[name] == nil else {
            connection.send(ProtocolError(.jobExists, "a job named \"\(name)\" already exists; pick another name, or delete it first (ltctl delete \(name))", id: id).line)
            return
        }
        guard jobs.count < configuration.maxJobs else {
            connection.send(ProtocolError(.tooManyJobs, "this daemon already keeps \(jobs.count) jobs, its limit; delete finished ones with ltctl delete NAME", id: id).line)
            return
        }
        // The publisher sets the pace; an external job is never paused by the daemon. (Neither changes the maths, so a
        // trainer prepared from the request serves.)
        var spec = requested
        spec.paused = false
        spec.paceMs = 0
        let trainer: Trainer
        switch prepared ?? Daemon.prepareTrainer(spec) {
        case .success(let ready): trainer = ready
        case .failure(let error):
            connection.send(ProtocolError(.invalidSpec, error.description, field: error.field, id: id).line)
            return
        }
        let summary = Daemon.initialSummary(trainer, spec: spec)
        let created = Clock.utcTimestamp()
        let directory = store.directory(of: name)
        let initial = JobCheckpoint(seq: 0, offset: 0, state: .running, summary: summary, trainer: nil)
        do {
            try store.create(job: name, spec: spec, owner: connection.peerUID, created: created, checkpoint: initial, kind: .external)
        } catch let error where error.code == EEXIST {
            connection.send(ProtocolError(.jobExists, "the state directory already holds a job named \"\(name)\" that this daemon could not load (see its log); pick another name", id: id).line)
            return
        } catch {
            Log.error("job \(name): cannot record it: \(error)")
            connection.send(ProtocolError(.internalError, "cannot record job \(name) in the state directory: \(error)", id: id).line)
            return
        }
        let record = JobRecord(name: name, owner: connection.peerUID, created: created, directory: directory,
                               spec: spec, summary: summary, paused: false, kind: .external)
        let fd = open(record.logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let code = errno
            try? FileIO.removeTree(directory)
            connection.send(ProtocolError(.internalError, "cannot open job \(name)'s log: \(errnoText(code))", id: id).line)
            return
        }
        let start = trainer.start
        let stream = JobStream(record: record, publishedSeq: 0, publishedOffset: 0, ended: false)
        stream.external = ExternalFeed(
            stream: ExternalStream(job: name, spec: spec, stepsPerEpoch: start.stepsPerEpoch, totalSteps: start.totalSteps,
                                   slotNames: start.slots.names,
                                   w: start.w, b: start.b, shuffled: run.shuffled),
            publisher: connection.id, logFD: fd)
        register(stream)
        append([(EventEncoder.start(job: name, seq: 1, spec: spec, record: start, external: run), .start, 0),
                (EventEncoder.state(job: name, seq: 2, state: .running, message: nil), .state, 0)], to: stream)
        Log.info("external job \(name) created by uid \(connection.peerUID): \(spec.data.x.count) rows, \(spec.epochs) epoch(s) × \(start.stepsPerEpoch) step(s), \(spec.optimizer.name.rawValue)")
        connection.send(Reply.started(id: id, job: name, status: status(of: stream)))
    }

    /// `publish`: one event from the creating connection, checked, sequenced, logged and fanned out.
    func publish(name: String, event: JSONValue, from connection: Connection, id: JSONValue?) {
        guard let stream = jobs[name] else { connection.send(unknownJob(name, id: id).line); return }
        guard let feed = stream.external else {
            connection.send(ProtocolError(.wrongState, "\(name) is a native job, trained by ltd; publish feeds only jobs made with create", id: id).line)
            return
        }
        guard !feed.stream.ended else {
            let state = stream.record.summary.withLock { $0.state }
            connection.send(ProtocolError(.wrongState, "\(name) has ended (\(state.rawValue)); nothing more can be published to it", id: id).line)
            return
        }
        guard feed.publisher == connection.id else {
            let owner = stream.record.owner
            connection.send(ProtocolError(.permissionDenied, "only the connection that created \(name) may publish to it", owner: owner, id: id).line)
            return
        }
        let result: (lines: [[UInt8]], outcome: ExternalStream.Outcome)
        do throws(ProtocolError) {
            result = try feed.stream.accept(event, seq: stream.publishedSeq + 1)
        } catch {
            var e = error
            e.id = id
            connection.send(e.line)
            return
        }
        switch result.outcome {
        case let .step(epoch, step, iteration, w, b, loss, rmse, valLoss, valRmse):
            stream.record.summary.withLock { s in
                s.iteration = iteration; s.epoch = epoch; s.step = step; s.w = w; s.b = b
                s.loss = loss; s.rmse = rmse; s.valLoss = valLoss; s.valRmse = valRmse
            }
            append([(result.lines[0], .step, iteration)], to: stream)
        case .epoch:
            append([(result.lines[0], .epoch, 0)], to: stream)
        case let .end(state, message):
            finishExternal(stream, feed: feed, lines: result.lines, state: state, message: message)
        }
        connection.send(Reply.published(id: id, job: name, seq: stream.publishedSeq))
    }

    /// Ends an external job that is still open: cancelled by its owner, or failed when its publisher went away.
    func endExternal(_ stream: JobStream, state: JobState, message: String) {
        guard let feed = stream.external, !feed.stream.ended else { return }
        let lines = feed.stream.end(state: state, message: message, seq: stream.publishedSeq + 1)
        finishExternal(stream, feed: feed, lines: lines, state: state, message: message)
    }

    /// A connection is going away: the jobs it was publishing end failed.
    func publisherClosing(_ connection: Connection) {
        for stream in jobs.values {
            guard let feed = stream.external, feed.publisher == connection.id, !feed.stream.ended else { continue }
            let message = ExternalStream.lostPublisherMessage(iteration: feed.stream.iteration, total: feed.stream.totalSteps)
            endExternal(stream, state: .failed, message: message)
        }
    }

    private func finishExternal(_ stream: JobStream, feed: ExternalFeed, lines: [[UInt8]], state: JobState, message: String?) {
        stream.record.summary.withLock { $0.state = state; $0.message = message }
        append([(lines[0], .state, 0), (lines[1], .end, 0)], to: stream)
        feed.publisher = nil
        feed.closeLog()
        let summary = stream.record.summary.withLock { $0 }
        let checkpoint = JobCheckpoint(seq: stream.publishedSeq, offset: stream.publishedOffset, state: state,
                                       summary: summary, trainer: nil)
        do {
            try FileIO.writeAtomically(try checkpoint.encoded(), to: stream.record.checkpointPath, directory: stream.record.directory)
        } catch {
            Log.error("job \(stream.name): final checkpoint failed: \(error)")
        }
        Log.info("external job \(stream.name) \(state.rawValue) after \(summary.iteration) step(s), \(summary.seq) event(s)\(message.map { ": " + $0 } ?? "")")
    }

    /// Appends encoded lines (consecutive seqs from `publishedSeq + 1`) to the log, then hands them to the stream
    /// and its subscribers, exactly as a job thread's chunk is handled.
    private func append(_ lines: [(line: [UInt8], kind: EventKind, iteration: Int)], to stream: JobStream) {
        guard let feed = stream.external else { return }
        var builder = EventBatchBuilder(capacity: lines.reduce(0) { $0 + $1.line.count })
        for l in lines { builder.append(l.line, kind: l.kind, iteration: l.iteration) }
        let chunk = builder.take(firstSeq: stream.publishedSeq + 1, fileOffset: stream.publishedOffset)
        builder.release()
        if !feed.logBroken, let failure = FileIO.writeAll(fd: feed.logFD, chunk.bytes.base, chunk.bytes.count) {
            feed.logBroken = true
            Log.error("job \(stream.name): cannot append to \(stream.record.logPath): \(errnoText(failure)); events are no longer durable")
        }
        stream.append(chunk)
        stream.record.summary.withLock { $0.seq = chunk.lastSeq }
        for connection in stream.subscribers.values { connection.pump() }
    }

    /// An external job found unfinished at start-up (the daemon stopped while it was being published): its complete
    /// lines are kept, and it ends failed. Returns the ended record's stream, or nil when the log cannot be read.
    func restoreUnfinishedExternal(_ stored: StateStore.StoredJob, directory: String) -> JobStream? {
        let name = stored.name
        let logPath = directory + "/events.ndjson"
        let bytes: [UInt8]
        do { bytes = try FileIO.readAll(path: logPath) } catch {
            Log.error("external job \(name): cannot read its log (\(error)); leaving its directory alone")
            return nil
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
        guard store.truncateLog(path: logPath, toSeq: seq, offset: complete) == complete else {
            Log.error("external job \(name): cannot cut its log back to its complete lines; leaving its directory alone")
            return nil
        }
        let message = "ltd stopped while this job was being published, after \(summary.iteration) of \(summary.totalSteps) steps; the steps so far are kept"
        var tail = EventEncoder.state(job: name, seq: seq + 1, state: .failed, message: message)
        tail += EventEncoder.end(job: name, seq: seq + 2, state: .failed, iteration: summary.iteration, epoch: summary.epoch,
                                 w: summary.w, b: summary.b, message: message, precision: stored.spec.precision)
        let fd = open(logPath, O_WRONLY | O_APPEND | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        let failure = tail.withUnsafeBytes { raw in raw.baseAddress.flatMap { FileIO.writeAll(fd: fd, $0, raw.count) } }
        _ = close(fd)
        if failure != nil { return nil }
        summary.state = .failed
        summary.message = message
        summary.seq = seq + 2
        let checkpoint = JobCheckpoint(seq: seq + 2, offset: complete + tail.count, state: .failed, summary: summary, trainer: nil)
        do { try FileIO.writeAtomically(try checkpoint.encoded(), to: directory + "/checkpoint.json", directory: directory) } catch {
            Log.error("external job \(name): final checkpoint failed: \(error)")
        }
        Log.warning("external job \(name): \(message)")
        let record = JobRecord(name: name, owner: stored.owner, created: stored.created, directory: directory,
                               spec: stored.spec, summary: summary, paused: false, kind: .external)
        return JobStream(record: record, publishedSeq: seq + 2, publishedOffset: complete + tail.count, ended: true)
    }
}
