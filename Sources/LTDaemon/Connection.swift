#if canImport(Glibc)
import Glibc
#endif
import CLibUV
import LTProtocol

/// One client connection, owned by the loop thread: line framing with a size limit, the caller's credentials,
/// queued replies and events, and at most one subscription.
///
/// Writes are coalesced: at most one `uv_write` is in flight, and it carries everything queued since the last one.
/// `queuedBytes` counts what is queued or in flight; a subscription pulls events only while it is under
/// `highWater`, so a reader that stops reading costs at most about `highWater` bytes, however long the job runs.
final class Connection {
    let pipe: UnsafeMutablePointer<uv_pipe_t>
    unowned let daemon: Daemon
    private(set) var peerUID: UInt32 = UInt32.max
    private(set) var peerPID: Int32 = 0
    private var partial: [UInt8] = []
    /// Bytes read after a large request line, kept while that line is decoded off the loop thread.
    private var deferred: [UInt8] = []
    /// True while a large request line is being decoded in libuv's threadpool: reading is paused so requests
    /// stay in order.
    private var decoding = false
    /// Set when a line was refused as too long: input is discarded, the error is sent, our side is shut down, and
    /// the connection closes at the client's EOF or after a grace period. Closing at once, with unread input
    /// queued, would make the client's read fail (ECONNRESET) before it sees the error.
    private(set) var lingerSince: UInt64?
    private var halfClosed = false
    private var outbox: [ByteSlice] = []
    private var outboxBytes = 0
    private var inFlightBytes = 0
    private var writing = false
    private(set) var subscription: Subscription?
    private var readStopped = false
    private var sawEOF = false
    private var closeWhenFlushed = false
    private(set) var closing = false

    static let highWater = 1024 * 1024
    /// How much of a job's log one pump may scan before yielding to other work.
    static let scanBudget = 1024 * 1024

    var queuedBytes: Int { outboxBytes + inFlightBytes }
    var id: ObjectIdentifier { ObjectIdentifier(self) }

    init(daemon: Daemon, pipe: UnsafeMutablePointer<uv_pipe_t>) {
        self.daemon = daemon
        self.pipe = pipe
    }

    /// Reads the peer's credentials and starts reading. Returns false (and closes) when libuv refuses.
    func begin() -> Bool {
        pipe.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        var fd = uv_os_fd_t()
        if uv_fileno(ltd_handle(pipe), &fd) == 0 {
            var credentials = ltd_ucred()
            if ltd_peer_credentials(fd, &credentials) == 0 {
                peerUID = credentials.uid
                peerPID = credentials.pid
            }
        }
        return startReading()
    }

    private func startReading() -> Bool {
        let result = uv_read_start(ltd_stream(pipe), { handle, suggested, buffer in
            guard let handle, let buffer, let data = handle.pointee.data else { return }
            let connection = Unmanaged<Connection>.fromOpaque(data).takeUnretainedValue()
            buffer.pointee = uv_buf_init(connection.daemon.readBuffer.assumingMemoryBound(to: CChar.self),
                                         UInt32(Daemon.readBufferSize))
        }, { stream, count, buffer in
            guard let stream, let data = stream.pointee.data else { return }
            let connection = Unmanaged<Connection>.fromOpaque(data).takeUnretainedValue()
            connection.didRead(count: count, buffer: buffer)
        })
        if result < 0 {
            Log.warning("connection: cannot read: \(uvErrorText(result))")
            close()
            return false
        }
        return true
    }

    // MARK: Reading and framing

    private func didRead(count: Int, buffer: UnsafePointer<uv_buf_t>?) {
        if count < 0 {
            if count == Int(UV_EOF.rawValue) {
                if lingerSince != nil { close(); return }
                sawEOF = true
                uv_read_stop(ltd_stream(pipe))
                partial = []
                if subscription == nil { closeWhenFlushed = true; closeIfDone() }
            } else {
                Log.debug("connection uid \(peerUID): read failed: \(uvErrorText(Int32(count)))")
                close()
            }
            return
        }
        if lingerSince != nil { return }   // refused: input is discarded
        guard count > 0, let base = buffer?.pointee.base else { return }
        received(UnsafeRawBufferPointer(start: base, count: count))
        if !closing && !readStopped && !decoding && !sawEOF && queuedBytes > Connection.highWater {
            uv_read_stop(ltd_stream(pipe))
            readStopped = true
        }
    }

    /// Splits bytes into lines and handles each. A line longer than the limit, terminated or not, gets
    /// `line_too_long` and closes the connection; memory never holds more than the limit for one connection.
    private func received(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress else { return }
        let limit = daemon.configuration.maxLineBytes
        var start = 0
        while start < bytes.count, !closing, !closeWhenFlushed, lingerSince == nil {
            guard let hit = memchr(base + start, 0x0A, bytes.count - start) else { break }
            let end = base.distance(to: UnsafeRawPointer(hit))
            let length = partial.count + (end - start)
            if length > limit {
                refuseLongLine(length: length)
                return
            }
            if length > Daemon.offloadLineBytes {
                // Parsing megabytes of inline data would stall every other client: decode it in the threadpool,
                // and hold what follows until it is done.
                var line = partial
                partial = []
                line.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
                deferred = Array(UnsafeRawBufferPointer(rebasing: bytes[(end + 1)...]))
                decoding = true
                uv_read_stop(ltd_stream(pipe))
                daemon.decodeInBackground(line, from: self)
                return
            }
            if partial.isEmpty {
                daemon.handle(line: UnsafeRawBufferPointer(rebasing: bytes[start..<end]), from: self)
            } else {
                partial.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
                let line = partial
                partial = []
                line.withUnsafeBytes { daemon.handle(line: $0, from: self) }
            }
            start = end + 1
        }
        guard start < bytes.count, !closing, !closeWhenFlushed, lingerSince == nil else { return }
        let rest = bytes.count - start
        if partial.count + rest > limit {
            refuseLongLine(length: partial.count + rest)
            return
        }
        partial.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start...]))
    }

    /// The large line handed to `decodeInBackground` has been answered: go on with what followed it.
    func decodeFinished() {
        decoding = false
        guard !closing else { return }
        let rest = deferred
        deferred = []
        if !rest.isEmpty { rest.withUnsafeBytes { received($0) } }
        if !decoding, !closing, !closeWhenFlushed, !sawEOF, !readStopped { _ = startReading() }
    }

    private func refuseLongLine(length: Int) {
        partial = []
        deferred = []
        let limit = daemon.configuration.maxLineBytes
        Log.warning("connection uid \(peerUID) pid \(peerPID): line of more than \(limit) bytes refused; closing")
        send(ProtocolError(.lineTooLong, "a request line is longer than this daemon's limit of \(limit) bytes (seen \(length) bytes of it); send smaller requests, or start ltd with a larger --max-line-bytes").line)
        endSubscription()
        lingerSince = Clock.monotonicNanoseconds()
        if readStopped, !sawEOF { readStopped = false; _ = startReading() }
        flush()
        shutDownIfFlushed()
    }

    /// After a refusal: once the error is written, send EOF (shutdown of our writing side).
    private func shutDownIfFlushed() {
        guard lingerSince != nil, !halfClosed, !closing, !writing, outbox.isEmpty else { return }
        halfClosed = true
        let request = UnsafeMutablePointer<uv_shutdown_t>.allocate(capacity: 1)
        let result = uv_shutdown(request, ltd_stream(pipe)) { request, _ in request?.deallocate() }
        if result != 0 {
            request.deallocate()
            close()
        }
    }

    /// Stops reading, sends what is queued, then closes.
    func finishAfterFlush() {
        if !readStopped && !sawEOF { uv_read_stop(ltd_stream(pipe)) }
        readStopped = true
        closeWhenFlushed = true
        endSubscription()
        flush()
        closeIfDone()
    }

    // MARK: Subscriptions

    func subscribe(_ subscription: Subscription) {
        self.subscription = subscription
        subscription.job.subscribers[id] = self
    }

    func endSubscription() {
        guard let subscription else { return }
        let job = subscription.job
        job.subscribers[id] = nil
        self.subscription = nil
        // A finished job nobody follows needs no memory: later subscribers read its log.
        if job.log.ended, job.thread == nil, job.subscribers.isEmpty { job.log.releaseTail() }
        if sawEOF { closeWhenFlushed = true }
    }

    /// Queues events for the subscription until the queue reaches `highWater`, the subscriber has everything
    /// published, or this pump has scanned `scanBudget` bytes of log (then the daemon pumps again soon).
    func pump() {
        guard let subscription, !closing else { return }
        let log = subscription.job.log
        var scanned = 0
        while queuedBytes < Connection.highWater, !subscription.isCaughtUp {
            if scanned >= Connection.scanBudget {
                daemon.pumpSoon(self)
                break
            }
            switch log.read(&subscription.cursor, budget: Connection.highWater - queuedBytes, filter: subscription.filter) {
            case .success(let read):
                for slice in read.slices { enqueue(slice) }
                scanned += read.scanned
            case .failure(let error):
                Log.error("job \(subscription.job.name): \(error)")
                send(ProtocolError(.internalError, "cannot read the log of job \(subscription.job.name); subscribe again from seq \(subscription.cursor.seq)").line)
                endSubscription()
                flush()
                return
            }
        }
        if log.ended, subscription.isCaughtUp {
            subscription.complete = true
            endSubscription()
        }
        flush()
    }

    // MARK: Writing

    /// Queues a whole line (a reply or an error) for this connection.
    func send(_ line: [UInt8]) {
        guard !closing else { return }
        enqueue(ByteSlice(copying: line))
    }

    private func enqueue(_ slice: ByteSlice) {
        guard slice.count > 0 else { return }
        outbox.append(slice)
        outboxBytes += slice.count
    }

    /// Starts one write with everything queued, unless a write is already in flight (its callback flushes again).
    func flush() {
        guard !writing, !outbox.isEmpty, !closing else { return }
        let request = WriteRequest(connection: self, slices: outbox)
        outbox = []
        inFlightBytes = outboxBytes
        outboxBytes = 0
        writing = true
        request.request.pointee.data = Unmanaged.passRetained(request).toOpaque()
        let result = uv_write(request.request, ltd_stream(pipe), request.buffers, UInt32(request.count)) { request, status in
            guard let request, let data = request.pointee.data else { return }
            let write = Unmanaged<WriteRequest>.fromOpaque(data).takeRetainedValue()
            write.connection.didWrite(status: status)
        }
        if result < 0 {
            Unmanaged<WriteRequest>.fromOpaque(request.request.pointee.data).release()
            writing = false
            inFlightBytes = 0
            Log.debug("connection uid \(peerUID): write failed: \(uvErrorText(result))")
            close()
        }
    }

    private func didWrite(status: Int32) {
        writing = false
        inFlightBytes = 0
        guard !closing else { return }
        if status < 0 {
            Log.debug("connection uid \(peerUID) pid \(peerPID): client went away (\(uvErrorText(status)))")
            close()
            return
        }
        pump()
        flush()
        shutDownIfFlushed()
        if readStopped, !decoding, !closeWhenFlushed, !sawEOF, queuedBytes <= Connection.highWater / 2 {
            readStopped = false
            _ = startReading()
        }
        closeIfDone()
    }

    private func closeIfDone() {
        if closeWhenFlushed, !writing, outbox.isEmpty { close() }
    }

    /// Closes the connection; the handle's memory goes in the close callback.
    func close() {
        guard !closing else { return }
        closing = true
        endSubscription()
        outbox = []
        outboxBytes = 0
        daemon.connectionClosing(self)
        uv_close(ltd_handle(pipe)) { handle in
            guard let handle, let data = handle.pointee.data else { return }
            let connection = Unmanaged<Connection>.fromOpaque(data).takeUnretainedValue()
            connection.daemon.connectionClosed(connection)
            UnsafeMutableRawPointer(handle).deallocate()
        }
    }

    var hasPendingOutput: Bool { writing || !outbox.isEmpty }
}

/// One `uv_write`: the slices it sends (kept alive until the callback) and libuv's request and buffer array.
final class WriteRequest {
    let connection: Connection
    let slices: [ByteSlice]
    let request: UnsafeMutablePointer<uv_write_t>
    let buffers: UnsafeMutablePointer<uv_buf_t>
    let count: Int

    init(connection: Connection, slices: [ByteSlice]) {
        self.connection = connection
        self.slices = slices
        count = slices.count
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
