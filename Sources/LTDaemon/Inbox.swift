import Synchronization

/// The hand-off from job threads to the loop thread: published chunks and exited jobs, behind one lock, with one
/// `uv_async_send` whenever the queue goes from empty to non-empty. Sends happen under the lock and never after
/// `close()`, so a job thread can never touch a closed async handle.
final class Inbox: @unchecked Sendable {
    // @unchecked: `wakeup.send()` is the one libuv call that is safe from any thread, and it is only made while
    // `state` is locked and not closed (the loop closes the handle only after `close()`).
    struct Pending {
        var chunks: [(JobRecord, EventChunk)] = []
        var exited: [JobRecord] = []
        var closed = false
        var isEmpty: Bool { chunks.isEmpty && exited.isEmpty }
    }

    private let state = Mutex(Pending())
    private let wakeup: Async

    init(wakeup: Async) { self.wakeup = wakeup }

    func publish(_ chunk: EventChunk, of job: JobRecord) {
        state.withLock { pending in
            let wake = pending.isEmpty && !pending.closed
            pending.chunks.append((job, chunk))
            if wake { wakeup.send() }
        }
    }

    func exited(_ job: JobRecord) {
        state.withLock { pending in
            let wake = pending.isEmpty && !pending.closed
            pending.exited.append(job)
            if wake { wakeup.send() }
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
