#if canImport(Glibc)
import Glibc
#endif
import LTEngine
import LTProtocol

/// Runs one job on its own thread: takes events from the Trainer, encodes each once, appends it to the job's log,
/// hands the bytes to the loop, keeps the summary current, and checkpoints. Nothing here touches a socket.
///
/// Events are buffered and written to the log in batches (at most 64 KiB or 2 ms old, and always before the thread
/// sleeps), and a batch is published to the loop only after it is in the log: so everything a subscriber can see in
/// memory is also on disk, and a subscriber that falls behind memory finds it in the file.
final class JobRunner: @unchecked Sendable {
    // @unchecked: after `start()` this object is used only by its own thread.
    private let record: JobRecord
    private let spec: JobSpec
    /// The job's step and epoch events, their constant parts spelled once.
    private var events: EventEncoder.JobEncoder
    private var trainer: Trainer
    private let inbox: Inbox
    private let budget: DiskBudget
    private let startRecord: StartRecord
    private var seq: Int
    private var fileOffset: Int
    private var paused: Bool
    private let fresh: Bool
    private var log: EventLog.Appender?
    private var builder = EventBatchBuilder()
    private var builderFirstSeq = 1
    private var builderOffset = 0
    private var oldestBuffered: UInt64 = 0
    private var stepsSinceCheckpoint = 0
    private var lastCheckpoint: UInt64 = 0
    private var lastPausedStep: UInt64 = 0
    private var lastEpoch = 0
    private var lastStep = 0
    /// Why the log or checkpoint could not be written (a full disk, an I/O error, a disk limit), once it happened:
    /// the job then ends `failed`, saying so.
    private var storageFailure: String?
    /// Set while the final `state` and `end` are written: the watchers get them even if the log has no room.
    private var finishing = false
    /// Set once `end` is emitted: nothing follows it.
    private var ended = false
    /// The summary as of the last batch written: what the job reports again if a later batch cannot be written.
    private var writtenSummary: JobSummary

    static let flushBytes = 64 * 1024
    static let flushAgeNanoseconds: UInt64 = 2_000_000
    static let checkpointSteps = 10_000
    static let checkpointMinimumIntervalNanoseconds: UInt64 = 200_000_000

    /// `seq` and `offset` are the position of the log (0, 0 for a new job, else the checkpoint's); `paused` is the
    /// state the job is in (for a new job, the spec's `paused`).
    init(record: JobRecord, spec: JobSpec, trainer: Trainer, inbox: Inbox, budget: DiskBudget, seq: Int, offset: Int,
         paused: Bool) {
        self.record = record
        self.spec = spec
        self.budget = budget
        self.events = EventEncoder.JobEncoder(job: record.name, spec: spec)
        self.trainer = trainer
        self.inbox = inbox
        self.startRecord = trainer.start
        self.seq = seq
        self.fileOffset = offset
        self.paused = paused
        self.fresh = seq == 0
        let summary = record.summary.withLock { $0 }
        writtenSummary = summary
        lastEpoch = summary.epoch
        lastStep = summary.step
    }

    /// Starts the thread. Returns the pthread to join, or an errno.
    func start() -> Result<pthread_t, SystemError> {
        let appender: EventLog.Appender
        switch EventLog.openAppender(path: record.files.events) {
        case .success(let opened): appender = opened
        case .failure(let error): return .failure(error)
        }
        log = appender
        let result = ThreadEntry.start { self.run() }
        if case .failure = result { appender.close() }
        return result
    }

    private func run() {
        lastCheckpoint = Clock.monotonicNanoseconds()
        if fresh {
            emit(EventEncoder.start(job: record.name, seq: seq + 1, spec: spec, record: startRecord), .start, 0)
            emitState(paused ? .paused : .running, message: nil)
            flush()
            checkpoint()
        }
        var paceUntil: UInt64? = nil
        loop: while true {
            if storageFailure != nil {
                finish(.failed, message: nil)
                break loop
            }
            if paused || paceUntil != nil { flush() }
            // A paused job that was stepped makes its steps durable once it has been idle a moment.
            let checkpointAt = paused && stepsSinceCheckpoint > 0
                ? lastPausedStep &+ JobRunner.checkpointMinimumIntervalNanoseconds : nil
            switch record.control.next(paused: paused, paceUntil: paceUntil, checkpointAt: checkpointAt) {
            case .checkpoint:
                checkpoint()
            case .shutdown:
                flush()
                checkpoint()
                break loop
            case .cancel:
                finish(.cancelled, message: nil)
                break loop
            case .pause:
                paused = true
                emitState(.paused, message: nil)
                flush()
                checkpoint()
            case .resume:
                paused = false
                emitState(.running, message: nil)
            case .step:
                if takeStep() { break loop }
                if paused { lastPausedStep = Clock.monotonicNanoseconds() }
                if spec.paceMs > 0, !paused {
                    paceUntil = Clock.monotonicNanoseconds() &+ UInt64(spec.paceMs) * 1_000_000
                } else {
                    paceUntil = nil
                }
                continue loop
            }
            paceUntil = nil
        }
        flush()
        if storageFailure != nil { finish(.failed, message: nil) }
        log?.close()
        builder.release()
        inbox.exited(record)
    }

    /// Takes one optimizer step, plus the events that follow it without computation (an epoch's end, the end of the
    /// run). Returns true when the job is over.
    private func takeStep() -> Bool {
        var tookStep = false
        while true {
            if storageFailure != nil {
                finish(.failed, message: nil)
                return true
            }
            if tookStep && !followsWithoutComputation() { return false }
            guard let event = trainer.next() else {
                finish(.failed, message: "the trainer stopped without a final event")
                return true
            }
            switch event {
            case .step(let step):
                tookStep = true
                lastEpoch = step.epoch
                lastStep = step.step
                events.step(seq: seq + 1, record: step, into: &builder)
                // The summary changes with the event, after the events before it may be flushed (`makeRoom`) and
                // before it may be: the summary as of each written batch is what that batch holds.
                makeRoom(for: builder.pendingCount)
                if storageFailure != nil { builder.dropLine(); continue }
                let next = seq + 1
                record.summary.withLock { s in
                    s.iteration = step.iteration; s.epoch = step.epoch; s.step = step.step; s.seq = next
                    s.w = step.wAfter; s.b = step.bAfter
                    s.loss = step.loss; s.rmse = step.rmse; s.valLoss = step.valLoss; s.valRmse = step.valRmse
                }
                emitLine(.step, step.iteration)
                if storageFailure != nil { continue }
                stepsSinceCheckpoint += 1
                if stepsSinceCheckpoint >= JobRunner.checkpointSteps { checkpointIfDue() }
                divergencePending = spec.onDivergence == .stop && !step.loss.isFinite
                pendingAfterStep = step.step == startRecord.stepsPerEpoch || divergencePending
            case .epoch(let epoch):
                events.epoch(seq: seq + 1, record: epoch, into: &builder)
                emitLine(.epoch, 0)
                record.summary.withLock { $0.seq = seq }
                pendingAfterStep = epoch.epoch >= spec.epochs || divergencePending
                checkpointIfDue()
            case .finished:
                finish(.finished, message: nil)
                return true
            case .diverged(_, let message):
                finish(.diverged, message: message)
                return true
            }
        }
    }

    /// Whether the trainer's next event needs no computation (so a `step 1` on a paused job also delivers the epoch
    /// or end events that close it).
    private var pendingAfterStep = false
    private var divergencePending = false
    private func followsWithoutComputation() -> Bool {
        let pending = pendingAfterStep
        pendingAfterStep = false
        return pending
    }

    private func emitState(_ state: JobState, message: String?) {
        emit(EventEncoder.state(job: record.name, seq: seq + 1, state: state, message: message), .state, 0)
        let ended = state.isFinal ? Clock.utcTimestamp() : nil
        record.summary.withLock { $0.state = state; $0.seq = seq; $0.message = message; $0.ended = ended }
    }

    /// The final `state` and `end` events, then a final checkpoint. After a storage failure the job ends `failed`
    /// whatever `state` says, with a message naming the cause.
    private func finish(_ state: JobState, message: String?) {
        guard !ended else { return }
        // The events before the final ones go on their own: if they cannot be written, the job fails.
        flush()
        var state = state, message = message
        if let cause = storageFailure {
            state = .failed
            message = "stopped because \(cause); its events so far are kept (free space or raise the limit for new jobs; ltctl delete \(record.name) removes it)"
            Log.error("job \(record.name): \(message ?? "")")
        }
        let summary = record.summary.withLock { $0 }
        finishing = true
        emitState(state, message: message)
        emit(EventEncoder.end(job: record.name, seq: seq + 1, state: state, iteration: summary.iteration,
                              epoch: summary.epoch, w: summary.w, b: summary.b, message: message,
                              precision: spec.precision), .end, 0)
        ended = true
        record.summary.withLock { $0.seq = seq }
        flush()
        checkpoint(final: true)
    }

    /// Flushes the buffered events when an event of `count` bytes would take the log past its limit: the events
    /// that fit go first, so the log ends as close to the limit as it can.
    private func makeRoom(for count: Int) {
        if !finishing, fileOffset &+ count > budget.limits.maxLogBytes { flush() }
    }

    private func emit(_ line: [UInt8], _ kind: EventKind, _ iteration: Int) {
        builder.write(line)
        emitLine(kind, iteration)
    }

    /// Makes the line last written into `builder` (by an encoder, straight into the batch buffer) the next event.
    private func emitLine(_ kind: EventKind, _ iteration: Int) {
        guard !ended, storageFailure == nil || finishing else { return builder.dropLine() }
        let count = builder.pendingCount
        makeRoom(for: count)
        if builder.isEmpty {
            builderFirstSeq = seq + 1
            builderOffset = fileOffset
            oldestBuffered = Clock.monotonicNanoseconds()
        }
        seq += 1
        builder.commitLine(kind: kind, iteration: iteration)
        fileOffset += count
        if builder.count >= JobRunner.flushBytes
            || Clock.monotonicNanoseconds() &- oldestBuffered >= JobRunner.flushAgeNanoseconds {
            flush()
        }
    }

    /// Appends the buffered events to the log, then hands them to the loop. Events the log cannot take (no room, an
    /// I/O error, a disk limit) are shown to nobody, so watchers, the log and a restart agree; the job then fails.
    /// Only its final `state` and `end` reach the watchers even so (and always may pass the limits: they are small).
    private func flush() {
        guard !builder.isEmpty else { return }
        let chunk = builder.take(firstSeq: builderFirstSeq, fileOffset: builderOffset)
        let bytes = chunk.bytes.count
        var failure = finishing ? nil : budget.take(bytes, logAt: chunk.fileOffset, owner: record.owner)
        if failure == nil, let log {
            if let error = log.append(chunk) {
                if !finishing { budget.release(bytes, owner: record.owner) }
                budget.freeReserve()
                failure = "its log cannot be written: \(error)"
            } else if finishing {
                budget.add(bytes, owner: record.owner)
            }
        }
        guard let failure else {
            if !finishing { writtenSummary = record.summary.withLock { $0 } }
            log?.writeBehind(through: chunk.endOffset)
            return inbox.publish(chunk, of: record)
        }
        // The log ends at the last whole event written (the appender cut off any part of this chunk), and the job
        // reports what it holds.
        seq = chunk.firstSeq - 1
        fileOffset = chunk.fileOffset
        if !finishing { record.summary.withLock { [writtenSummary] in $0 = writtenSummary } }
        if finishing {
            Log.error("job \(record.name): its final events could not be written (\(failure)); its watchers get them, its log ends at seq \(seq) until ltd starts again")
            inbox.publish(chunk.notInFile(), of: record)
        } else if storageFailure == nil {
            storageFailure = failure
        }
    }

    private func checkpointIfDue() {
        let now = Clock.monotonicNanoseconds()
        guard now &- lastCheckpoint >= JobRunner.checkpointMinimumIntervalNanoseconds else { return }
        flush()
        checkpoint()
    }

    /// Writes the checkpoint for the current position. Call after `flush()`, so the log holds every event up to `seq`.
    private func checkpoint(final: Bool = false) {
        // After a storage failure only the final checkpoint is written: the last good one stays until then.
        guard final || storageFailure == nil else { return }
        let summary = record.summary.withLock { $0 }
        let state: JobState = final ? summary.state : (paused ? .paused : .running)
        let value = JobCheckpoint(seq: seq, offset: fileOffset, state: state, summary: summary,
                                  trainer: final ? nil : trainer.checkpoint)
        do { try value.write(to: record.files) } catch {
            // The last good checkpoint stays, consistent with the log; the job cannot go on without new ones. The
            // final one is tried once more with the reserve freed: without it the next start resumes the job.
            budget.freeReserve()
            if final, (try? value.write(to: record.files)) != nil { return }
            Log.error("job \(record.name): checkpoint failed: \(error)")
            if !final, storageFailure == nil { storageFailure = "its checkpoint cannot be written: \(error)" }
        }
        stepsSinceCheckpoint = 0
        lastCheckpoint = Clock.monotonicNanoseconds()
    }
}
