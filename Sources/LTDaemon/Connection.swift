#if canImport(Glibc)
import Glibc
#endif
import CLibUV
import LTProtocol

/// One client connection, owned by the loop thread: line framing with a size limit, the caller's credentials,
/// queued replies and events, and at most one subscription.
///
/// Writes are coalesced: at most one `uv_write` is in flight, and it carries everything queued since the last one.
/// `queuedBytes` counts what is queued or in flight, and `OutputMarks` bound it: a reader that stops reading costs
/// a few MiB at most, however long its job runs and however many requests it sends.
final class Connection {
    let pipe: Pipe
    unowned let server: Server
    /// The caller, from SO_PEERCRED; a connection without readable credentials is refused in `begin()`.
    private(set) var peer = ProcessIdentity(pid: 0, uid: UInt32.max, gid: UInt32.max, user: nil)
    var peerUID: UInt32 { peer.uid }
    var peerPID: Int32 { peer.pid }
    /// True once the server's `ClientLimits` counted this connection (it is uncounted when it closes).
    var admitted = false
    /// The unfinished line read so far; its bytes count in `ClientLimits.pendingLineBytes` (see `dropPartial`).
    private var partial: [UInt8] = []
    /// Bytes read after a request whose answer is being worked out off the loop thread, handled once it is answered.
    private var deferred: [UInt8] = []
    /// Non-zero while a request is answered off the loop thread (a large line decoded, then perhaps its job's files
    /// written): nothing more is read or handled, so requests are answered in order.
    private var suspensions = 0
    private var suspended: Bool { suspensions > 0 }
    /// True while the queue has passed `marks.hold` and not yet drained to `marks.resume`: no request line is
    /// handled (nor read), so a client that asks without reading cannot make ltd queue without end.
    private var holding = false
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
    private var reading = false
    private var sawEOF = false
    private var closeWhenFlushed = false
    private(set) var closing = false

    let marks: OutputMarks
    /// How much of a job's log one pump may scan before yielding to other work.
    static let scanBudget = 1024 * 1024
    /// Request lines longer than this are decoded (and their spec validated) in libuv's threadpool.
    static let offloadLineBytes = 256 * 1024

    var queuedBytes: Int { outboxBytes + inFlightBytes }
    /// Bytes read without their `\n` yet.
    var partialLineBytes: Int { partial.count }
    var id: ObjectIdentifier { ObjectIdentifier(self) }

    init(server: Server, pipe: Pipe) {
        self.server = server
        self.pipe = pipe
        marks = OutputMarks(limit: server.configuration.maxQueuedBytes)
    }

    /// Reads the peer's credentials and starts reading. Returns false when libuv refuses (the connection closes) or
    /// the credentials cannot be read (the caller gets an error, then the connection closes).
    func begin() -> Bool {
        let credentials = pipe.fileDescriptor.map { PeerCredentials.read(fd: $0) }
            ?? .failure(CredentialsUnavailable(reason: "the connection has no file descriptor"))
        updateReading()
        guard !closing else { return false }
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

    /// The one place that starts or stops reading, from the connection's state. Reading stops while a request is
    /// answered off the loop, while output is held back (`holding`), after EOF and when closing; a refused
    /// connection reads on, discarding, until the client's EOF.
    private func updateReading() {
        guard !closing else { return }
        let wanted = lingerSince != nil || !(sawEOF || closeWhenFlushed || suspended || holding)
        guard wanted != reading else { return }
        reading = wanted
        guard wanted else { return pipe.stopReading() }
        let result = pipe.startReading(into: server.readBuffer) { [unowned self] count, bytes in
            didRead(count: count, bytes: bytes)
        }
        if result < 0 {
            Log.warning("connection: cannot read: \(uvErrorText(result))")
            close()
        }
    }

    // MARK: Reading and framing

    private func didRead(count: Int, bytes: UnsafeRawBufferPointer) {
        if count < 0 {
            if count == Int(UV_EOF.rawValue) {
                if lingerSince != nil { close(); return }
                sawEOF = true
                dropPartial()
                // EOF alone may be a half-close (`nc` once its input ends) whose reader still wants the stream; a
                // peer that has closed entirely gets nothing more, so it goes now, not at the next write, which an
                // idle or paused job may never make.
                if subscription == nil || peerHungUp { closeWhenFlushed = true }
                updateReading()
                closeIfDone()
            } else {
                Log.debug("connection uid \(peerUID): read failed: \(uvErrorText(Int32(count)))")
                close()
            }
            return
        }
        if lingerSince != nil { return }   // refused: input is discarded
        guard count > 0 else { return }
        received(bytes)
        updateReading()
    }

    /// Splits bytes into lines and handles each. A line longer than the limit, terminated or not, gets
    /// `line_too_long` and closes the connection; memory never holds more than the limit for one connection.
    private func received(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress else { return }
        let limit = server.configuration.maxLineBytes
        var start = 0
        while start < bytes.count, !closing, !closeWhenFlushed, lingerSince == nil {
            if suspended || holdsOutput() {
                // The last request is answered off the loop, or the client has not read its replies: what follows
                // waits (and nothing more is read meanwhile).
                deferred = Array(UnsafeRawBufferPointer(rebasing: bytes[start...]))
                return
            }
            guard let hit = memchr(base + start, 0x0A, bytes.count - start) else { break }
            let end = base.distance(to: UnsafeRawPointer(hit))
            let length = partial.count + (end - start)
            if length > limit {
                refuseLongLine(length: length)
                return
            }
            if length > Connection.offloadLineBytes {
                // Parsing megabytes of inline data would stall every other client: decode it in the threadpool.
                var line = partial
                dropPartial()
                line.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
                server.decodeInBackground(line, from: self)
            } else if partial.isEmpty {
                server.handle(line: UnsafeRawBufferPointer(rebasing: bytes[start..<end]), from: self)
            } else {
                var line = partial
                dropPartial()
                line.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
                line.withUnsafeBytes { server.handle(line: $0, from: self) }
            }
            start = end + 1
        }
        guard start < bytes.count, !closing, !closeWhenFlushed, lingerSince == nil, !suspended else { return }
        let rest = bytes.count - start
        if partial.count + rest > limit {
            refuseLongLine(length: partial.count + rest)
            return
        }
        if let busy = server.limits.holdLineBytes(rest) {
            Log.debug("connection uid \(peerUID) pid \(peerPID): unfinished line refused, ltd holds too many")
            return refuse(busy)
        }
        partial.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start...]))
    }

    /// Forgets the unfinished line, and gives its bytes back to the server's count.
    private func dropPartial() {
        server.limits.releaseLineBytes(partial.count)
        partial = []
    }

    /// Whether request lines are held back: the queue passed `marks.hold` and has not drained to `marks.resume`.
    /// Checked before each line, so a read of thousands of requests stops at the one whose reply crossed the mark.
    private func holdsOutput() -> Bool {
        if !holding, queuedBytes > marks.hold { holding = true }
        return holding
    }

    /// Holds this connection's later requests while the current one is answered off the loop thread.
    func suspendRequests() {
        suspensions += 1
        updateReading()
    }

    /// The request answered off the loop is done: go on with what followed it.
    func resumeRequests() {
        suspensions -= 1
        handleDeferred()
    }

    /// Handles the input kept back while a request was answered off the loop or output was held, then reads again
    /// (unless that input holds the connection anew).
    private func handleDeferred() {
        guard !suspended, !holding, !closing else { return }
        let rest = deferred
        deferred = []
        if !rest.isEmpty { rest.withUnsafeBytes { received($0) } }
        updateReading()
    }

    private func refuseLongLine(length: Int) {
        let limit = server.configuration.maxLineBytes
        Log.warning("connection uid \(peerUID) pid \(peerPID): line of more than \(limit) bytes refused; closing")
        refuse(ProtocolError(.lineTooLong, "a request line is longer than this daemon's limit of \(limit) bytes (seen \(length) bytes of it); send smaller requests, or start ltd with a larger --max-line-bytes"))
    }

    /// Sends `error`, discards all further input, and closes once the client has read it (see `lingerSince`).
    private func refuse(_ error: ProtocolError) {
        dropPartial()
        deferred = []
        holding = false
        enqueue(ByteSlice(copying: error.line))
        endSubscription()
        lingerSince = Clock.monotonicNanoseconds()
        updateReading()
    }

    /// After a refusal: once the error is written, send EOF (shutdown of our writing side).
    private func shutDownIfFlushed() {
        guard lingerSince != nil, !halfClosed, !closing, !writing, outbox.isEmpty else { return }
        halfClosed = true
        if pipe.shutdown() != 0 { close() }
    }

    /// Stops reading, sends what is queued, then closes.
    func finishAfterFlush() {
        closeWhenFlushed = true
        updateReading()
        endSubscription()
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
    /// published, or this pump has scanned `scanBudget` bytes of log (then the daemon pumps again soon). Events in
    /// memory are queued at once; events behind it are read from the file in libuv's threadpool, and the pump goes
    /// on when that read is back (one read in flight per subscription, so order is kept).
    func pump() {
        guard let subscription, !closing, !subscription.reading else { return }
        let log = subscription.job.log
        var scanned = 0
        while queuedBytes < marks.pull, !subscription.isCaughtUp {
            if scanned >= Connection.scanBudget {
                server.pumpSoon(self)
                break
            }
            switch log.next(&subscription.cursor, budget: marks.pull - queuedBytes, filter: subscription.filter) {
            case .success(.served(let read)):
                for slice in read.slices { enqueue(slice) }
                scanned += read.scanned
            case .success(.fromFile(let request)):
                return readInBackground(request, for: subscription)
            case .failure(let error):
                return readFailed(error, subscription)
            }
        }
        if log.ended, subscription.isCaughtUp {
            subscription.complete = true
            endSubscription()
        }
    }

    /// Runs a file read of the subscription's log off the loop, then queues what it read and pumps on.
    private func readInBackground(_ request: EventLog.FileRead, for subscription: Subscription) {
        subscription.reading = true
        server.loop.queueWork({ request.perform() }, then: { [self] in
            subscription.reading = false
            // The subscription may have ended (unsubscribe, delete, close) while the read ran: drop what it read.
            guard self.subscription === subscription, !closing else { return }
            switch subscription.job.log.finish(request, cursor: &subscription.cursor) {
            case .success(let read):
                for slice in read.slices { enqueue(slice) }
                pump()
            case .failure(let error):
                readFailed(error, subscription)
            }
        })
    }

    private func readFailed(_ error: EventLog.ReadError, _ subscription: Subscription) {
        Log.error("job \(subscription.job.name): \(error)")
        send(ProtocolError(.internalError, "cannot read the log of job \(subscription.job.name); subscribe again from seq \(subscription.cursor.seq)").line)
        endSubscription()
    }

    // MARK: Writing

    /// Queues a whole line (a reply or an error) for this connection. A request is handled only while at most
    /// `marks.hold` is queued, so a reply of up to `marks.largestReply` keeps the queue within `marks.limit`; a
    /// larger one is not queued: the client is told `busy` and the connection closes once it has read what was
    /// queued before. The rule depends on the reply alone, never on how many events happen to be in flight (events
    /// never come here: they are pulled from the log, see `pump`).
    func send(_ line: [UInt8]) {
        guard !closing, lingerSince == nil else { return }
        guard line.count <= marks.largestReply else {
            Log.debug("connection uid \(peerUID) pid \(peerPID): a reply of \(line.count) bytes is over the output limit; closing")
            return refuse(ProtocolError(.busy, "a reply of \(line.count) bytes is more than this daemon queues for one request (\(marks.largestReply) bytes: half of --max-queued-bytes \(marks.limit)); ask for less at once"))
        }
        enqueue(ByteSlice(copying: line))
    }

    private func enqueue(_ slice: ByteSlice) {
        guard slice.count > 0 else { return }
        if outbox.isEmpty { server.needsFlush(self) }
        outbox.append(slice)
        outboxBytes += slice.count
    }

    /// Starts one write with everything queued, unless a write is already in flight (its callback asks for another).
    /// Called by the server's flush pass only.
    func flush() {
        guard !writing, !outbox.isEmpty, !closing else { return }
        let slices = outbox
        outbox = []
        inFlightBytes = outboxBytes
        outboxBytes = 0
        writing = true
        let result = pipe.write(slices) { [unowned self] status in didWrite(status: status) }
        if result < 0 {
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
        if !outbox.isEmpty { server.needsFlush(self) }
        shutDownIfFlushed()
        if holding, queuedBytes <= marks.resume {
            holding = false
            handleDeferred()
        } else {
            updateReading()
        }
        closeIfDone()
    }

    private func closeIfDone() {
        if closeWhenFlushed, !writing, outbox.isEmpty { close() }
    }

    /// True once the peer has closed its socket entirely, not just its writing side: poll(2) reports POLLHUP on a
    /// Unix stream socket only when both directions are shut down.
    private var peerHungUp: Bool {
        guard let fd = pipe.fileDescriptor else { return true }
        var probe = pollfd(fd: fd, events: 0, revents: 0)
        return poll(&probe, 1, 0) == 1 && probe.revents & Int16(POLLHUP | POLLERR) != 0
    }

    /// Closes the connection if it reads nothing now (half-closed, held back, or waiting on the threadpool) and its
    /// peer has gone away, which no read will tell. Called by the server's once-a-second housekeeping.
    func closeIfPeerGone() {
        guard !closing, !reading, peerHungUp else { return }
        Log.debug("connection uid \(peerUID) pid \(peerPID): peer gone while not reading")
        close()
    }

    /// Closes the connection; the server forgets it in the close callback.
    func close() {
        guard !closing else { return }
        closing = true
        endSubscription()
        dropPartial()
        deferred = []
        outbox = []
        outboxBytes = 0
        server.connectionClosing(self)
        pipe.close { [self] in server.connectionClosed(self) }
    }

    var hasPendingOutput: Bool { writing || !outbox.isEmpty }
}

/// How much output one connection may have queued or in flight, all derived from `--max-queued-bytes` (`limit`,
/// 4 MiB by default), so one flag scales them together.
struct OutputMarks {
    /// A subscription pulls events from its log only while the queue is under this (a quarter: 1 MiB). Events wait
    /// in the log, not in memory, so a slow reader loses none and costs no more.
    let pull: Int
    /// Past this (half: 2 MiB) no further request line is handled, nor read, ...
    let hold: Int
    /// ... until the client has read the queue down to this (three eighths: 1.5 MiB).
    let resume: Int
    /// The queue stays within this (the flag), but for one event line read whole from the log.
    let limit: Int
    /// A longer reply gets `busy` instead, and the connection closes (the other half: 2 MiB).
    var largestReply: Int { limit - hold }

    init(limit: Int) {
        self.limit = limit
        pull = limit / 4
        hold = limit / 2
        resume = limit / 8 * 3
    }
}
