#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// The loop thread's orders to one job thread: pause, resume, step N, cancel, shut down. A mutex and a condition
/// variable, so a paused or pacing job sleeps until it is told something, and an atomic flag, so a job running flat
/// out checks for orders with one load per step instead of a lock.
final class JobControl: @unchecked Sendable {
    // @unchecked: the fields below are read and written only with `mutex` held; `attention` is atomic.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private let attention = Atomic<Bool>(false)
    private var wantPaused: Bool
    private var stepBudget = 0
    private var cancelRequested = false
    private var shutdownRequested = false

    /// What the job thread does next.
    enum Command: Equatable { case step, pause, resume, cancel, shutdown, checkpoint }

    init(paused: Bool) {
        wantPaused = paused
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    private func change(_ body: () -> Void) {
        pthread_mutex_lock(mutex)
        body()
        attention.store(true, ordering: .releasing)
        pthread_cond_signal(condition)
        pthread_mutex_unlock(mutex)
    }

    func requestPause() { change { wantPaused = true; stepBudget = 0 } }
    func requestResume() { change { wantPaused = false; stepBudget = 0 } }
    func requestCancel() { change { cancelRequested = true } }
    func requestShutdown() { change { shutdownRequested = true } }
    /// Adds `count` steps to a paused job's budget (saturating). Returns false when the job is not paused.
    func requestSteps(_ count: Int) -> Bool {
        var accepted = false
        change {
            guard wantPaused else { return }
            let (sum, overflow) = stepBudget.addingReportingOverflow(count)
            stepBudget = overflow ? Int.max : sum
            accepted = true
        }
        return accepted
    }

    /// The job thread's next command. `paused` is the state the job last announced; `paceUntil` is the monotonic
    /// time before which a running job must not take its next step. Blocks while there is nothing to do; the caller
    /// flushes its log before calling when it may block (paused or pacing). `checkpointAt` is when an idle paused job
    /// should write a checkpoint for steps it took (`.checkpoint`), so a stepped job is durable without an fsync
    /// between two quick `step` requests.
    func next(paused: Bool, paceUntil: UInt64?, checkpointAt: UInt64? = nil) -> Command {
        if !paused, paceUntil == nil, !attention.load(ordering: .acquiring) { return .step }
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while true {
            attention.store(false, ordering: .relaxed)
            if shutdownRequested { return .shutdown }
            if cancelRequested { return .cancel }
            if wantPaused && !paused { return .pause }
            if !wantPaused && paused { return .resume }
            if paused {
                if stepBudget > 0 { stepBudget -= 1; return .step }
                if let checkpointAt {
                    if Clock.monotonicNanoseconds() >= checkpointAt { return .checkpoint }
                    var deadline = timespec(tv_sec: Int(checkpointAt / 1_000_000_000), tv_nsec: Int(checkpointAt % 1_000_000_000))
                    _ = pthread_cond_timedwait(condition, mutex, &deadline)
                } else {
                    pthread_cond_wait(condition, mutex)
                }
                continue
            }
            guard let paceUntil else { return .step }
            let now = Clock.monotonicNanoseconds()
            if now >= paceUntil { return .step }
            var deadline = timespec(tv_sec: Int(paceUntil / 1_000_000_000), tv_nsec: Int(paceUntil % 1_000_000_000))
            _ = pthread_cond_timedwait(condition, mutex, &deadline)
        }
    }
}
