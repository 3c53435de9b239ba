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
    /// The caller, from SO_PEERCRED; a connection without readable credentials is refused in `begin()`.
    private(set) var peer = ProcessIdentity(pid: 0, uid: UInt32.max, gid: UInt32.max, user: nil)
    var peerUID: UInt32 { peer.uid }
    var peerPID: Int32 { peer.pid }
    private var partial: [UInt8] = []
    /// How much of `partial` is counted in the daemon's `pendingLineBytes`.
    private var partialCounted = 0
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
    /// Back-pressure on replies: past this much queued output, no further request line of this connection is
    /// handled until the client has read its way back under `resumeInputBytes`. So a client that sends thousands
    /// of requests and reads nothing costs about this much, one reply more at most, instead of every reply.
    static let holdInputBytes = 2 * highWater
    static let resumeInputBytes = highWater + highWater / 2
    /// How much of a job's log one pump may scan before yielding to other work.
    static let scanBudget = 1024 * 1024
    static let readChunk = 256 * 1024

    var queuedBytes: Int { outboxBytes + inFlightBytes }
    var id: ObjectIdentifier { ObjectIdentifier(self) }

    init(daemon: Daemon, pipe: UnsafeMutablePointer<uv_pipe_t>) {
        self.daemon = daemon
        self.pipe = pipe
    }

    /// Reads the peer's credentials and starts reading. Returns false when libuv refuses (the connection closes) or
    /// the credentials cannot be read (the caller gets an error, then the connection closes).
    func begin() -> Bool {
        pipe.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        var fd = uv_os_fd_t()
        let credentials = uv_fileno(ltd_handle(pipe), &fd) == 0
            ? PeerCredentials.read(fd: fd)
            : .failure(CredentialsUnavailable(reason: "the connection has no file descriptor"))
        guard startReading() else { return false }
        switch credentials {
        case .success(let identity):
            peer = identity
            return true
        case .failure(let unavailable):
            Log.warning("connection refused: cannot tell who is calling: \(unavailable.reason)")
            refuse(ProtocolError(.permissionDenied, "ltd cannot tell who you are (\(unavailable.reason)), and serves no one it cannot identify: connect through its Unix socket on this host"))
            return false
        }
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
                countPartial()
                // EOF alone may be a half-close (`nc` after its input ends) whose reader still wants the stream;
                // a peer that has closed entirely gets nothing more, so its socket goes now, not at the next write
                // (which an idle or paused job may never make).
                if subscription == nil || peerHungUp { closeWhenFlushed = true; closeIfDone() }
            } else {
                Log.debug("connection uid \(peerUID): read failed: \(uvErrorText(Int32(count)))")
                close()
            }
            return
        }
        if lingerSince != nil { return }   // refused: input is discarded
        guard count > 0, let base = buffer?.pointee.base else { return }
        received(UnsafeRawBufferPointer(start: base, count: count))
        countPartial()
        if !closing && !decoding && !sawEOF && queuedBytes > Connection.holdInputBytes { holdInput() }
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
            if queuedBytes > Connection.holdInputBytes, start < bytes.count, !closing, !closeWhenFlushed {
                // The client is not reading its replies: keep the rest of this read for later, and read no more.
                deferred = Array(UnsafeRawBufferPointer(rebasing: bytes[start...]))
                holdInput()
                return
            }
        }
        guard start < bytes.count, !closing, !closeWhenFlushed, lingerSince == nil else { return }
        let rest = bytes.count - start
        if partial.count + rest > limit {
            refuseLongLine(length: partial.count + rest)
            return
        }
        let pendingLimit = daemon.configuration.maxPendingLineBytes
        if daemon.pendingLineBytes - partialCounted + partial.count + rest > pendingLimit {
            refuseBusy(pendingLimit)
            return
        }
        partial.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start...]))
    }

    /// Brings the daemon's count of unfinished-line bytes up to date with `partial`.
    private func countPartial() {
        daemon.pendingLineBytes += partial.count - partialCounted
        partialCounted = partial.count
        if daemon.pendingLineBytes < daemon.configuration.maxPendingLineBytes / 2, let refused = daemon.pendingLineLimitRefusals {
            Log.info("unfinished request lines well below the limit again (\(refused) connection(s) refused meanwhile)")
            daemon.pendingLineLimitRefusals = nil
        }
    }

    private func refuseBusy(_ limit: Int) {
        if daemon.pendingLineLimitRefusals == nil {
            Log.warning("unfinished request lines reached the limit of \(limit) bytes in all (--max-pending-line-bytes): refusing connections that send more")
        }
        daemon.pendingLineLimitRefusals = (daemon.pendingLineLimitRefusals ?? 0) + 1
        refuse(ProtocolError(.busy, "ltd holds as many unfinished request lines as it will (\(limit) bytes in all); try again shortly, and end each request with a newline"))
    }

    /// Stops reading until the queued output drains (see `holdInputBytes`).
    private func holdInput() {
        guard !readStopped else { return }
        uv_read_stop(ltd_stream(pipe))
        readStopped = true
        flush()   // its completion is what resumes reading
    }

    /// The queued output has drained: handle the input held back, then read again (unless that input holds it anew).
    private func resumeInput() {
        readStopped = false
        guard startReading() else { return }
        let rest = deferred
        deferred = []
        if !rest.isEmpty { rest.withUnsafeBytes { received($0) } }
        countPartial()
    }

    /// The large line handed to `decodeInBackground` has been answered: go on with what followed it.
    func decodeFinished() {
        decoding = false
        guard !closing else { return }
        let rest = deferred
        deferred = []
        if !rest.isEmpty { rest.withUnsafeBytes { received($0) } }
        countPartial()
        if !decoding, !closing, !closeWhenFlushed, !sawEOF, !readStopped { _ = startReading() }
    }

    private func refuseLongLine(length: Int) {
        let limit = daemon.configuration.maxLineBytes
        Log.warning("connection uid \(peerUID) pid \(peerPID): line of more than \(limit) bytes refused; closing")
        refuse(ProtocolError(.lineTooLong, "a request line is longer than this daemon's limit of \(limit) bytes (seen \(length) bytes of it); send smaller requests, or start ltd with a larger --max-line-bytes"))
    }

    /// Sends `error`, discards all further input, and closes once the client has read it (see `lingerSince`).
    private func refuse(_ error: ProtocolError) {
        partial = []
        countPartial()
        deferred = []
        send(error.line)
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
        subscription.stream.subscribers[id] = self
    }

    func endSubscription() {
        guard let subscription else { return }
        let stream = subscription.stream
        stream.subscribers[id] = nil
        self.subscription = nil
        // A finished job nobody follows needs no memory: later subscribers read its log.
        if stream.ended, stream.thread == nil, stream.subscribers.isEmpty { stream.releaseTail() }
        if sawEOF { closeWhenFlushed = true }
    }

    /// Queues events for the subscription until the queue reaches `highWater`, the subscriber has everything
    /// published, or this pump has scanned `scanBudget` bytes of log (then the daemon pumps again soon).
    func pump() {
        guard let subscription, !closing else { return }
        let stream = subscription.stream
        var scanned = 0
        while queuedBytes < Connection.highWater, subscription.cursor <= stream.publishedSeq {
            if scanned >= Connection.scanBudget {
                daemon.pumpSoon(self)
                break
            }
            let budget = Connection.highWater - queuedBytes
            if let (chunk, line) = stream.locate(subscription.cursor) {
                scanned += serveFromMemory(subscription, chunk: chunk, line: line, budget: budget)
            } else {
                guard let read = serveFromLog(subscription, budget: budget) else {
                    send(ProtocolError(.internalError, "cannot read the log of job \(stream.name); subscribe again from seq \(subscription.cursor)").line)
                    endSubscription()
                    break
                }
                scanned += read
            }
        }
        if stream.ended, subscription.cursor > stream.publishedSeq {
            subscription.complete = true
            endSubscription()
        }
        flush()
    }

    /// Serves events from one in-memory chunk. Returns the bytes examined.
    private func serveFromMemory(_ subscription: Subscription, chunk: EventChunk, line first: Int, budget: Int) -> Int {
        let startOffset = chunk.lineStart(first)
        var last = first
        while last + 1 < chunk.count, chunk.lineEnds[last] - startOffset < budget { last += 1 }
        let endOffset = chunk.lineEnds[last]
        if subscription.isFiltered {
            var selected: [UInt8] = []
            for line in first...last where subscription.wants(chunk.kinds[line], iteration: chunk.iterations[line]) {
                let from = chunk.lineStart(line)
                selected.append(contentsOf: UnsafeRawBufferPointer(start: chunk.bytes.base + from, count: chunk.lineEnds[line] - from))
            }
            if !selected.isEmpty { enqueue(ByteSlice(chunk: ByteChunk(copying: selected), offset: 0, count: selected.count)) }
        } else {
            enqueue(ByteSlice(chunk: chunk.bytes, offset: startOffset, count: endOffset - startOffset))
        }
        subscription.cursor = chunk.firstSeq + last + 1
        subscription.filePosition = (subscription.cursor, chunk.fileOffset + endOffset)
        return endOffset - startOffset
    }

    /// Serves events from the job's log file, starting at the subscription's file position (or the nearest indexed
    /// one before its cursor). Reads at most `readChunk` bytes, more only for a single longer line. Returns the bytes
    /// read, or nil when the log cannot be read as expected.
    private func serveFromLog(_ subscription: Subscription, budget: Int) -> Int? {
        let stream = subscription.stream
        let limit = stream.tailStartOffset
        var position = subscription.filePosition ?? stream.indexedPosition(atOrBefore: subscription.cursor)
        if position.seq > subscription.cursor || position.offset >= limit {
            position = stream.indexedPosition(atOrBefore: subscription.cursor)
        }
        guard position.offset < limit else { return nil }
        let fd = open(stream.record.logPath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else {
            Log.error("job \(stream.name): cannot open \(stream.record.logPath): \(errnoText(errno))")
            return nil
        }
        defer { Glibc.close(fd) }
        var size = min(Connection.readChunk, limit - position.offset)
        while true {
            let buffer = ByteChunk.allocate(size)
            let chunk = ByteChunk(takingMalloced: buffer, count: size)
            var got = 0
            while got < size {
                let n = pread(fd, buffer + got, size - got, off_t(position.offset + got))
                if n < 0 { if errno == EINTR { continue }; return nil }
                if n == 0 { break }
                got += n
            }
            guard got == size else {
                Log.error("job \(stream.name): log is shorter than expected (\(position.offset + got) < \(limit) bytes)")
                return nil
            }
            // Walk complete lines.
            var offset = 0
            var deliveredStart = -1
            var deliveredEnd = 0
            var selected: [UInt8] = []
            var delivered = 0
            while offset < got, delivered < budget {
                guard let hit = memchr(buffer + offset, 0x0A, got - offset) else { break }
                let end = buffer.distance(to: hit) + 1
                if position.seq >= subscription.cursor {
                    if subscription.isFiltered {
                        let line = UnsafeRawBufferPointer(start: buffer + offset, count: end - offset)
                        let kind = EventKind.of(line: line) ?? .state
                        let iteration = kind == .step ? (EventLineScan.integerValue(of: "\"iteration\":", in: line) ?? 0) : 0
                        if subscription.wants(kind, iteration: iteration) { selected.append(contentsOf: line) }
                    } else if deliveredStart < 0 {
                        deliveredStart = offset
                    }
                    deliveredEnd = end
                    delivered += end - offset
                    subscription.cursor = position.seq + 1
                }
                position.seq += 1
                position.offset += end - offset
                stream.noteIndex(seq: position.seq, offset: position.offset)
                offset = end
            }
            if offset == 0 {
                // One line longer than the buffer: read it whole.
                guard size < limit - position.offset else {
                    Log.error("job \(stream.name): log has no line end before offset \(limit)")
                    return nil
                }
                size = min(size * 2, limit - position.offset)
                continue
            }
            subscription.filePosition = position
            if subscription.isFiltered {
                if !selected.isEmpty { enqueue(ByteSlice(chunk: ByteChunk(copying: selected), offset: 0, count: selected.count)) }
            } else if deliveredStart >= 0 {
                enqueue(ByteSlice(chunk: chunk, offset: deliveredStart, count: deliveredEnd - deliveredStart))
            }
            return offset
        }
    }

    // MARK: Writing

    /// Queues a whole line (a reply or an error) for this connection.
    func send(_ line: [UInt8]) {
        guard !closing else { return }
        enqueue(ByteSlice(chunk: ByteChunk(copying: line), offset: 0, count: line.count))
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
        if readStopped, !decoding, !closeWhenFlushed, !sawEOF, lingerSince == nil, queuedBytes <= Connection.resumeInputBytes {
            resumeInput()
        }
        closeIfDone()
    }

    /// True once the peer has closed its socket entirely, not just its writing side: poll(2) reports POLLHUP on a
    /// Unix stream socket only when both directions are shut down.
    var peerHungUp: Bool {
        var fd = uv_os_fd_t()
        guard uv_fileno(ltd_handle(pipe), &fd) == 0 else { return true }
        var probe = pollfd(fd: fd, events: 0, revents: 0)
        return poll(&probe, 1, 0) == 1 && probe.revents & Int16(POLLHUP | POLLERR) != 0
    }

    /// A half-closed subscriber (EOF read, still following its job) whose peer has since gone away: checked by the
    /// daemon's housekeeping, since no read will tell.
    var isHalfClosedAndGone: Bool { sawEOF && !closing && !closeWhenFlushed && peerHungUp }

    /// Closes the connection if its peer has gone away; see `isHalfClosedAndGone`.
    func closeIfPeerGone() {
        guard isHalfClosedAndGone else { return }
        Log.debug("connection uid \(peerUID) pid \(peerPID): subscriber hung up")
        close()
    }

    private func closeIfDone() {
        if closeWhenFlushed, !writing, outbox.isEmpty { close() }
    }

    /// Closes the connection; the handle's memory goes in the close callback.
    func close() {
        guard !closing else { return }
        closing = true
        endSubscription()
        partial = []
        countPartial()
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
