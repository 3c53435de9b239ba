import LTEngine
import LTProtocol

// `explain`: the engine's working of one step of a job. The daemon does no maths: `Trainer.working` replays the
// job's spec up to the iteration (the engine is deterministic) in libuv's threadpool, since a replay costs as many
// steps as the iteration asked for; the reply is queued on the loop. Other requests are answered meanwhile, so this
// reply can follow replies to requests sent after it (each carries its request's `id`).
extension Server {
    func explain(_ name: String, iteration: Int, _ connection: Connection, id: JSONValue?) {
        guard let job = sound(job(named: name, connection, id: id), named: name, connection, id: id) else { return }
        let record = job.record
        let summary = record.summary.withLock { $0 }
        guard iteration <= summary.iteration else {
            let ofTotal = summary.totalSteps > 0 ? " of \(summary.totalSteps)" : ""
            let what = summary.state.isFinal ? "it ended (\(summary.state.rawValue)) after" : "it has taken"
            return connection.send(ProtocolError(.notReached, "\(name) has not reached iteration \(iteration): \(what) \(summary.iteration)\(ofTotal) steps; ask for 0 to \(summary.iteration)", field: "iteration", id: id).line)
        }
        // A finished job's spec is not kept in memory: the replay reads it again from its directory.
        let source: ExplainWork.Source = job.spec.map { .memory($0) } ?? .file(jobs.store)
        let work = ExplainWork(job: name, key: record.key, source: source, iteration: iteration, id: id)
        loop.queueWork({ work.run() }, then: {
            if !connection.closing { connection.send(work.reply) }
        })
    }
}

/// One replay, handed to the threadpool.
private final class ExplainWork: @unchecked Sendable {
    // @unchecked: `reply` is written by the threadpool thread before the loop reads it (uv_queue_work's
    // after-callback orders the two).
    enum Source {
        case memory(JobSpec)
        case file(StateStore)
    }
    let job: String
    let key: JobKey
    let source: Source
    let iteration: Int
    let id: JSONValue?
    var reply: [UInt8] = []

    init(job: String, key: JobKey, source: Source, iteration: Int, id: JSONValue?) {
        self.job = job; self.key = key; self.source = source; self.iteration = iteration; self.id = id
    }

    func run() {
        let spec: JobSpec
        switch source {
        case .memory(let kept): spec = kept
        case .file(let store):
            do throws(StateStore.LoadError) { spec = try store.spec(job: key) } catch {
                reply = ProtocolError(.internalError, "cannot read \(job)'s spec again: \(error)", id: id).line
                return
            }
        }
        do throws(SpecError) {
            if let working = try Trainer.working(spec: spec, iteration: iteration, rowLimit: Reply.maxExplainedRows) {
                reply = Reply.explanation(id: id, job: job, iteration: iteration, working: working)
            } else {
                reply = ProtocolError(.notReached, "\(job) ends before iteration \(iteration)", id: id).line
            }
        } catch {
            reply = ProtocolError(.internalError, "\(job)'s spec no longer validates (\(error.description))", id: id).line
        }
    }
}
