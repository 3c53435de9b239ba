#if canImport(Glibc)
import Glibc
#endif
import CLibUV

// The thin layer over libuv: each wrapper owns one handle's memory and the closures it calls, and closes the handle
// once. A handle holds its wrapper (through `data`) from init until its close callback, so a wrapper cannot go
// while libuv may still call it. The pointer juggling between C callbacks and Swift objects lives here only.

/// One libuv loop, run on the calling thread.
final class Loop {
    let raw: UnsafeMutablePointer<uv_loop_t>

    init?() {
        raw = .allocate(capacity: 1)
        guard uv_loop_init(raw) == 0 else {
            raw.deallocate()
            return nil
        }
    }

    /// Runs until no active handle is left.
    func run() { uv_run(raw, UV_RUN_DEFAULT) }

    func close() { uv_loop_close(raw) }

    /// Runs `work` in libuv's threadpool, then `done` on the loop thread. When the work cannot be queued, runs both
    /// here and now.
    func queueWork(_ work: @escaping @Sendable () -> Void, then done: @escaping () -> Void) {
        let job = WorkRequest(work: work, done: done)
        let request = UnsafeMutablePointer<uv_work_t>.allocate(capacity: 1)
        request.pointee.data = Unmanaged.passRetained(job).toOpaque()
        let queued = uv_queue_work(raw, request, { request in
            guard let data = request?.pointee.data else { return }
            Unmanaged<WorkRequest>.fromOpaque(data).takeUnretainedValue().work()
        }, { request, _ in
            guard let request, let data = request.pointee.data else { return }
            let job = Unmanaged<WorkRequest>.fromOpaque(data).takeRetainedValue()
            request.deallocate()
            job.done()
        })
        if queued != 0 {
            Unmanaged<WorkRequest>.fromOpaque(request.pointee.data).release()
            request.deallocate()
            work()
            done()
        }
    }

    private final class WorkRequest {
        let work: @Sendable () -> Void
        let done: () -> Void
        init(work: @escaping @Sendable () -> Void, done: @escaping () -> Void) { self.work = work; self.done = done }
    }
}

/// What every handle wrapper shares: the handle's memory, its ownership of the wrapper, and closing once.
class Handle {
    fileprivate let raw: UnsafeMutableRawPointer
    private(set) var isClosing = false
    private var isAdopted = false
    private var onClosed: (() -> Void)?

    fileprivate init(type: uv_handle_type) {
        raw = .allocate(byteCount: uv_handle_size(type), alignment: 16)
    }

    deinit { raw.deallocate() }

    var handle: UnsafeMutablePointer<uv_handle_t> { raw.assumingMemoryBound(to: uv_handle_t.self) }

    /// Called after a successful `uv_*_init`: from now on the handle keeps its wrapper alive until it is closed.
    fileprivate func adopt(_ result: Int32) -> Bool {
        guard result == 0 else { return false }
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
        isAdopted = true
        return true
    }

    fileprivate static func wrapper<T: Handle>(_ handle: UnsafeMutableRawPointer?, as type: T.Type) -> T? {
        guard let data = handle?.assumingMemoryBound(to: uv_handle_t.self).pointee.data else { return nil }
        return Unmanaged<T>.fromOpaque(data).takeUnretainedValue()
    }

    /// Closes the handle (once; later calls do nothing), then calls `done` from libuv's close callback.
    func close(then done: (() -> Void)? = nil) {
        guard !isClosing else { return }
        isClosing = true
        guard isAdopted else { done?(); return }
        onClosed = done
        uv_close(handle) { handle in
            guard let data = handle?.pointee.data else { return }
            let wrapper = Unmanaged<Handle>.fromOpaque(data).takeRetainedValue()
            let done = wrapper.onClosed
            wrapper.onClosed = nil
            wrapper.forgetCallbacks()
            done?()
        }
    }

    /// Drops the closures once closed, so a wrapper and the object its closures capture do not keep each other.
    fileprivate func forgetCallbacks() {}

    /// Whether the handle keeps the loop running (`uv_ref`) or not (`uv_unref`).
    func keepsLoopAlive(_ keeps: Bool) {
        guard !isClosing else { return }
        if keeps { uv_ref(handle) } else { uv_unref(handle) }
    }
}

/// A repeating or one-shot timer.
final class Timer: Handle {
    private var body: (() -> Void)?

    init(loop: Loop) {
        super.init(type: UV_TIMER)
        _ = adopt(uv_timer_init(loop.raw, raw.assumingMemoryBound(to: uv_timer_t.self)))
    }

    /// Calls `body` after `milliseconds`, then every `repeat` milliseconds (0: once).
    func start(after milliseconds: UInt64, repeat interval: UInt64, _ body: @escaping () -> Void) {
        guard !isClosing else { return }
        self.body = body
        uv_timer_start(raw.assumingMemoryBound(to: uv_timer_t.self), { timer in
            Handle.wrapper(timer.map { UnsafeMutableRawPointer($0) }, as: Timer.self)?.body?()
        }, milliseconds, interval)
    }

    func stop() {
        guard !isClosing else { return }
        uv_timer_stop(raw.assumingMemoryBound(to: uv_timer_t.self))
    }

    override fileprivate func forgetCallbacks() { body = nil }
}

/// A signal delivered on the loop thread.
final class Signal: Handle {
    private var body: ((Int32) -> Void)?

    init(loop: Loop) {
        super.init(type: UV_SIGNAL)
        _ = adopt(uv_signal_init(loop.raw, raw.assumingMemoryBound(to: uv_signal_t.self)))
    }

    func start(_ number: Int32, _ body: @escaping (Int32) -> Void) {
        guard !isClosing else { return }
        self.body = body
        uv_signal_start(raw.assumingMemoryBound(to: uv_signal_t.self), { signal, number in
            Handle.wrapper(signal.map { UnsafeMutableRawPointer($0) }, as: Signal.self)?.body?(number)
        }, number)
    }

    override fileprivate func forgetCallbacks() { body = nil }
}

/// A wake-up of the loop thread from any thread. `send` is the one libuv call that is safe off the loop thread; the
/// caller must make sure it is never made after `close` (see `Inbox`).
final class Async: Handle, @unchecked Sendable {
    // @unchecked: only `send` is used off the loop thread, and it touches nothing but the handle.
    private var body: (() -> Void)?

    init(loop: Loop) {
        super.init(type: UV_ASYNC)
        _ = adopt(uv_async_init(loop.raw, raw.assumingMemoryBound(to: uv_async_t.self)) { async in
            Handle.wrapper(async.map { UnsafeMutableRawPointer($0) }, as: Async.self)?.body?()
        })
    }

    /// What the loop thread does when woken (a wake-up before this is delivered after it).
    func onWake(_ body: @escaping () -> Void) { self.body = body }

    func send() { uv_async_send(raw.assumingMemoryBound(to: uv_async_t.self)) }

    override fileprivate func forgetCallbacks() { body = nil }
}

/// A callback run once per loop iteration, just before the loop waits for I/O: where the daemon writes what the
/// iteration queued.
final class Prepare: Handle {
    private var body: (() -> Void)?

    init(loop: Loop) {
        super.init(type: UV_PREPARE)
        _ = adopt(uv_prepare_init(loop.raw, raw.assumingMemoryBound(to: uv_prepare_t.self)))
    }

    func start(_ body: @escaping () -> Void) {
        guard !isClosing else { return }
        self.body = body
        uv_prepare_start(raw.assumingMemoryBound(to: uv_prepare_t.self)) { prepare in
            Handle.wrapper(prepare.map { UnsafeMutableRawPointer($0) }, as: Prepare.self)?.body?()
        }
    }

    override fileprivate func forgetCallbacks() { body = nil }
}

/// A callback run on every loop iteration while started, without waiting for I/O: more work to do soon.
final class Idle: Handle {
    private var body: (() -> Void)?
    private(set) var isActive = false

    init(loop: Loop) {
        super.init(type: UV_IDLE)
        _ = adopt(uv_idle_init(loop.raw, raw.assumingMemoryBound(to: uv_idle_t.self)))
    }

    func start(_ body: @escaping () -> Void) {
        guard !isClosing, !isActive else { return }
        self.body = body
        isActive = true
        uv_idle_start(raw.assumingMemoryBound(to: uv_idle_t.self)) { idle in
            Handle.wrapper(idle.map { UnsafeMutableRawPointer($0) }, as: Idle.self)?.body?()
        }
    }

    func stop() {
        guard !isClosing, isActive else { return }
        isActive = false
        uv_idle_stop(raw.assumingMemoryBound(to: uv_idle_t.self))
    }

    override fileprivate func forgetCallbacks() { body = nil }
}

/// A Unix-socket stream (`uv_pipe_t`): a listener, or one client connection.
final class Pipe: Handle {
    private var onConnection: ((Int32) -> Void)?
    private var onRead: ((Int, UnsafeRawBufferPointer) -> Void)?
    private var readBuffer: UnsafeMutableRawBufferPointer?

    init(loop: Loop) {
        super.init(type: UV_NAMED_PIPE)
        _ = adopt(uv_pipe_init(loop.raw, raw.assumingMemoryBound(to: uv_pipe_t.self), 0))
    }

    private var stream: UnsafeMutablePointer<uv_stream_t> { raw.assumingMemoryBound(to: uv_stream_t.self) }

    /// Takes an already open socket (one systemd passed).
    func open(_ fd: Int32) -> Int32 { uv_pipe_open(raw.assumingMemoryBound(to: uv_pipe_t.self), fd) }

    func bind(_ path: String) -> Int32 { uv_pipe_bind(raw.assumingMemoryBound(to: uv_pipe_t.self), path) }

    /// Listens; `body` gets libuv's status for each incoming connection (accept it with `accept(into:)`).
    func listen(backlog: Int32, _ body: @escaping (Int32) -> Void) -> Int32 {
        onConnection = body
        return uv_listen(stream, backlog) { server, status in
            Handle.wrapper(server.map { UnsafeMutableRawPointer($0) }, as: Pipe.self)?.onConnection?(status)
        }
    }

    func accept(into client: Pipe) -> Int32 { uv_accept(stream, client.stream) }

    /// The socket's file descriptor, if it has one.
    var fileDescriptor: Int32? {
        var fd = uv_os_fd_t()
        return uv_fileno(handle, &fd) == 0 ? fd : nil
    }

    /// Reads into `buffer` (shared by every connection of the loop: each read is handled before the next one) and
    /// hands each read to `body`: a byte count and the bytes, or a negative libuv error (`UV_EOF` at the end).
    func startReading(into buffer: UnsafeMutableRawBufferPointer,
                      _ body: @escaping (Int, UnsafeRawBufferPointer) -> Void) -> Int32 {
        readBuffer = buffer
        onRead = body
        return uv_read_start(stream, { handle, _, buffer in
            guard let buffer, let pipe = Handle.wrapper(handle.map { UnsafeMutableRawPointer($0) }, as: Pipe.self),
                  let shared = pipe.readBuffer else { return }
            buffer.pointee = uv_buf_init(shared.baseAddress?.assumingMemoryBound(to: CChar.self), UInt32(shared.count))
        }, { stream, count, buffer in
            guard let pipe = Handle.wrapper(stream.map { UnsafeMutableRawPointer($0) }, as: Pipe.self) else { return }
            let bytes = UnsafeRawBufferPointer(start: count > 0 ? buffer?.pointee.base : nil, count: max(count, 0))
            pipe.onRead?(count, bytes)
        })
    }

    func stopReading() {
        guard !isClosing else { return }
        uv_read_stop(stream)
    }

    /// Writes `slices` in one `uv_write`; they are kept alive until `done` gets libuv's status. Returns the error
    /// when the write cannot start (then `done` is not called).
    func write(_ slices: [ByteSlice], _ done: @escaping (Int32) -> Void) -> Int32 {
        let request = WriteRequest(slices: slices, done: done)
        request.request.pointee.data = Unmanaged.passRetained(request).toOpaque()
        let result = uv_write(request.request, stream, request.buffers, UInt32(slices.count)) { request, status in
            guard let data = request?.pointee.data else { return }
            Unmanaged<WriteRequest>.fromOpaque(data).takeRetainedValue().done(status)
        }
        if result < 0 { Unmanaged<WriteRequest>.fromOpaque(request.request.pointee.data).release() }
        return result
    }

    /// Ends the writing side once queued writes are done (the peer reads EOF).
    func shutdown() -> Int32 {
        let request = UnsafeMutablePointer<uv_shutdown_t>.allocate(capacity: 1)
        let result = uv_shutdown(request, stream) { request, _ in request?.deallocate() }
        if result != 0 { request.deallocate() }
        return result
    }

    override fileprivate func forgetCallbacks() {
        onConnection = nil
        onRead = nil
        readBuffer = nil
    }

    /// One `uv_write`: the slices it sends, kept alive until the callback, and libuv's request and buffer array.
    private final class WriteRequest {
        let slices: [ByteSlice]
        let done: (Int32) -> Void
        let request: UnsafeMutablePointer<uv_write_t>
        let buffers: UnsafeMutablePointer<uv_buf_t>

        init(slices: [ByteSlice], done: @escaping (Int32) -> Void) {
            self.slices = slices
            self.done = done
            request = .allocate(capacity: 1)
            buffers = .allocate(capacity: max(slices.count, 1))
            for (i, slice) in slices.enumerated() {
                buffers[i] = uv_buf_init(slice.start.assumingMemoryBound(to: CChar.self), UInt32(slice.count))
            }
        }

        deinit {
            request.deallocate()
            buffers.deallocate()
        }
    }
}

/// A closure as a pthread start routine and its argument: `pthread_create` takes a C function and a pointer.
enum ThreadEntry {
    typealias Entry = @convention(c) (UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer?

    private final class Body {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }

    /// The start routine: runs the closure its argument holds, once, and frees it.
    static let entry: Entry = { context in
        guard let context else { return nil }
        Unmanaged<Body>.fromOpaque(context).takeRetainedValue().run()
        return nil
    }

    /// The argument for `entry`; pass it to exactly one thread, or to `discard` when no thread was created.
    static func context(_ body: @escaping @Sendable () -> Void) -> UnsafeMutableRawPointer {
        Unmanaged.passRetained(Body(body)).toOpaque()
    }

    static func discard(_ context: UnsafeMutableRawPointer) {
        Unmanaged<Body>.fromOpaque(context).release()
    }

    /// Starts a thread running `body` with every signal blocked, so signals go to the loop thread, whose libuv
    /// handles they are for. The new thread inherits the mask blocked here around `pthread_create`: it never has a
    /// moment with signals open.
    static func start(_ body: @escaping @Sendable () -> Void) -> Result<pthread_t, SystemError> {
        var all = sigset_t(), previous = sigset_t()
        sigfillset(&all)
        pthread_sigmask(SIG_BLOCK, &all, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        let context = ThreadEntry.context(body)
        var thread = pthread_t()
        let code = pthread_create(&thread, nil, entry, context)
        guard code == 0 else {
            discard(context)
            return .failure(SystemError(operation: "pthread_create", path: "job thread", code: code))
        }
        return .success(thread)
    }
}
