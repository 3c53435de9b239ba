import CLibUV
import LTEngine
import LTProtocol

/// `explain`: the engine's working of one step of a job. The daemon does no maths: `Trainer.working` replays the
/// job's spec up to the iteration (the engine is deterministic) in libuv's threadpool, since a replay costs as many
/// steps as the iteration asked for; the reply is sent on the loop. Other requests are answered meanwhile, so this
/// reply can follow replies to requests sent after it (each carries its request's `id`).
final class ExplainWork: @unchecked Sendable {
    // @unchecked: `reply` is written by the threadpool thread between uv_queue_work and its after-callback;
    // `connection` is touched only on the loop thread.
    let job: String
    let spec: JobSpec
    let iteration: Int
    let id: JSONValue?
    let connection: Connection
    var reply: [UInt8] = []

    init(job: String, spec: JobSpec, iteration: Int, id: JSONValue?, connection: Connection) {
        self.job = job; self.spec = spec; self.iteration = iteration; self.id = id; self.connection = connection
    }

    func run() {
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

    /// Answers `explain` for `record`'s job: refuses an iteration the job has not taken, else queues the replay.
    static func start(_ record: JobRecord, iteration: Int, loop: UnsafeMutablePointer<uv_loop_t>,
                      connection: Connection, id: JSONValue?) {
        let summary = record.summary.withLock { $0 }
        guard iteration <= summary.iteration else {
            let ofTotal = summary.totalSteps > 0 ? " of \(summary.totalSteps)" : ""
            let what = summary.state.isFinal ? "it ended (\(summary.state.rawValue)) after" : "it has taken"
            connection.send(ProtocolError(.notReached, "\(record.name) has not reached iteration \(iteration): \(what) \(summary.iteration)\(ofTotal) steps; ask for 0 to \(summary.iteration)", field: "iteration", id: id).line)
            return
        }
        let work = ExplainWork(job: record.name, spec: record.spec, iteration: iteration, id: id, connection: connection)
        let request = UnsafeMutablePointer<uv_work_t>.allocate(capacity: 1)
        request.pointee.data = Unmanaged.passRetained(work).toOpaque()
        let queued = uv_queue_work(loop, request, { request in
            guard let data = request?.pointee.data else { return }
            Unmanaged<ExplainWork>.fromOpaque(data).takeUnretainedValue().run()
        }, { request, _ in
            guard let request, let data = request.pointee.data else { return }
            let work = Unmanaged<ExplainWork>.fromOpaque(data).takeRetainedValue()
            request.deallocate()
            work.answer()
        })
        if queued != 0 {
            if let data = request.pointee.data { Unmanaged<ExplainWork>.fromOpaque(data).release() }
            request.deallocate()
            work.run()
            work.answer()
        }
    }

    private func answer() {
        guard !connection.closing else { return }
        connection.send(reply)
        connection.flush()
    }
}
