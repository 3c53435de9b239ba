#if canImport(Glibc)
import Glibc
#endif
import CLibUV
import LTEngine
import LTProtocol
import Synchronization

/// What `status` and `list` report about a job, kept current by the job thread (one short lock per event), so
/// the loop answers at once however hard the job is working. Also stored in each checkpoint, so a restarted daemon
/// reports finished jobs exactly.
struct JobSummary: Codable, Sendable, Equatable {
    var state: JobState
    var iteration = 0
    var epoch = 0
    var step = 0
    var stepsPerEpoch = 0
    var epochs = 0
    var totalSteps = 0
    var seq = 0
    var w: Double = 0
    var b: Double = 0
    var loss: Double?
    var rmse: Double?
    var valLoss: Double?
    var valRmse: Double?
    var message: String?
}

/// A job's identity and shared state: created on the loop thread, read by both threads.
final class JobRecord: Sendable {
    let name: String
    let owner: UInt32
    let created: String
    let files: JobFiles
    let spec: JobSpec
    let control: JobControl
    let summary: Mutex<JobSummary>

    init(name: String, owner: UInt32, created: String, files: JobFiles, spec: JobSpec, summary: JobSummary, paused: Bool) {
        self.name = name; self.owner = owner; self.created = created; self.files = files; self.spec = spec
        self.control = JobControl(paused: paused)
        self.summary = Mutex(summary)
    }
}

/// The hand-off from job threads to the loop thread: published chunks and exited jobs, behind one lock, with one
/// `uv_async_send` whenever the queue goes from empty to non-empty. Sends happen under the lock and never after
/// `close()`, so a job thread can never touch a closed async handle.
final class Inbox: @unchecked Sendable {
    // @unchecked: `async` is a libuv handle; uv_async_send is the one libuv call that is safe from any thread, and it
    // is only made while `state` is locked and not closed (the loop closes the handle only after `close()`).
    struct Pending {
        var chunks: [(JobRecord, EventChunk)] = []
        var exited: [JobRecord] = []
        var closed = false
        var isEmpty: Bool { chunks.isEmpty && exited.isEmpty }
    }

    private let state = Mutex(Pending())
    private let async: UnsafeMutablePointer<uv_async_t>

    init(async: UnsafeMutablePointer<uv_async_t>) { self.async = async }

    func publish(_ chunk: EventChunk, of job: JobRecord) {
        state.withLock { pending in
            let wake = pending.isEmpty && !pending.closed
            pending.chunks.append((job, chunk))
            if wake { uv_async_send(async) }
        }
    }

    func exited(_ job: JobRecord) {
        state.withLock { pending in
            let wake = pending.isEmpty && !pending.closed
            pending.exited.append(job)
            if wake { uv_async_send(async) }
        }
    }

    /// Everything published so far, in order; called on the loop thread.
    func take() -> Pending {
        state.withLock { pending in
            let taken = pending
            pending.chunks.removeAll()
            pending.exited.removeAll()
            return taken
        }
    }

    func close() { state.withLock { $0.closed = true } }
}
