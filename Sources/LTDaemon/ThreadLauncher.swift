#if canImport(Glibc)
import Glibc
#endif
import CLibUV

/// Creates job threads from a thread of its own. It starts before the loop thread lowers its scheduling weight
/// (`Daemon.loopNiceIncrement`), so job threads keep the process's normal weight: Linux threads inherit their
/// creator's nice value, and an unprivileged thread cannot lower it again. The effect: when CPUs are short,
/// training gets them first, and subscribers — who never lose anything, the log holds it all — catch up after.
final class ThreadLauncher: @unchecked Sendable {
    // @unchecked: `pending` and `result` are read and written only with `mutex` held.
    typealias Entry = ThreadEntry.Entry
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private var pending: (entry: Entry, context: UnsafeMutableRawPointer)?
    private var result: (thread: pthread_t, code: Int32)?
    private var running = false

    init() {
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    /// Starts the launcher thread. Returns false when it cannot (then `create` creates threads directly).
    func start() -> Bool {
        var thread = pthread_t()
        let context = ThreadEntry.context { self.serve() }
        let code = pthread_create(&thread, nil, ThreadEntry.entry, context)
        guard code == 0 else {
            ThreadEntry.discard(context)
            return false
        }
        pthread_detach(thread)
        running = true
        return true
    }

    private func serve() {
        pthread_mutex_lock(mutex)
        while true {
            guard let request = pending else {
                pthread_cond_wait(condition, mutex)
                continue
            }
            pending = nil
            var thread = pthread_t()
            let code = pthread_create(&thread, nil, request.entry, request.context)
            result = (thread, code)
            pthread_cond_broadcast(condition)
        }
    }

    /// Creates a thread running `body`; returns it, or the pthread_create error code.
    func create(_ body: @escaping @Sendable () -> Void) -> Result<pthread_t, SystemError> {
        let entry = ThreadEntry.entry
        let context = ThreadEntry.context(body)
        var thread = pthread_t()
        var code: Int32
        if running {
            pthread_mutex_lock(mutex)
            while pending != nil || result != nil { pthread_cond_wait(condition, mutex) }
            pending = (entry, context)
            pthread_cond_broadcast(condition)
            while result == nil { pthread_cond_wait(condition, mutex) }
            if let done = result { thread = done.thread; code = done.code } else { code = EAGAIN }
            result = nil
            pthread_cond_broadcast(condition)
            pthread_mutex_unlock(mutex)
        } else {
            code = pthread_create(&thread, nil, entry, context)
        }
        guard code == 0 else {
            ThreadEntry.discard(context)
            return .failure(SystemError(operation: "pthread_create", path: "job thread", code: code))
        }
        return .success(thread)
    }
}
