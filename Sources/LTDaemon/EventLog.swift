#if canImport(Glibc)
import Glibc
#endif
import CLibUV
import LTProtocol

/// One job's event log: `events.ndjson`, where line k is the event with seq k, byte for byte what subscribers get.
///
/// It has two sides. The job thread appends encoded batches through an `Appender` (write first, publish after, so
/// whatever memory holds is also in the file). The loop thread publishes those batches into the log's in-memory
/// **tail** (the newest events, about 4 MiB of memory) and a sparse **index** (seq → byte offset, one entry per
/// 1024 events), and serves readers with one call, `read`: a cursor, a byte budget and a filter in, slices to write
/// out. A reader inside the tail gets slices of the shared chunks (no copy); a reader behind it gets bytes `pread`
/// from the file. After a crash, `recover` cuts the file back to the last checkpointed event.
final class EventLog {
    let path: String
    /// Last seq published to the loop (and so written to the file).
    private(set) var publishedSeq: Int
    /// File length in bytes through `publishedSeq`.
    private(set) var publishedOffset: Int
    /// True once the `end` event is published.
    private(set) var ended: Bool
    private var tail: [EventChunk] = []
    private var tailHead = 0
    private var tailBytes = 0
    /// (seq, byte offset of that event's line), ascending; always starts with (1, 0).
    private var index: [(seq: Int, offset: Int)] = [(1, 0)]
    /// Memory kept for readers that are nearly caught up; older events are read from the file.
    let tailLimitBytes: Int
    let indexSpacing: Int
    /// Most bytes one `read` takes from the file (more only for a single longer line).
    let fileReadBytes: Int

    static let defaultTailLimitBytes = 4 * 1024 * 1024
    static let defaultIndexSpacing = 1024
    static let defaultFileReadBytes = 256 * 1024

    /// A log that holds events 1...`publishedSeq` in its first `publishedOffset` bytes.
    init(path: String, publishedSeq: Int, publishedOffset: Int, ended: Bool,
         tailLimitBytes: Int = defaultTailLimitBytes, indexSpacing: Int = defaultIndexSpacing,
         fileReadBytes: Int = defaultFileReadBytes) {
        self.path = path
        self.publishedSeq = publishedSeq
        self.publishedOffset = publishedOffset
        self.ended = ended
        self.tailLimitBytes = tailLimitBytes
        self.indexSpacing = max(indexSpacing, 1)
        self.fileReadBytes = max(fileReadBytes, 1)
        if publishedSeq > 0 { noteIndex(seq: publishedSeq + 1, offset: publishedOffset) }
    }

    // MARK: Writing (the job thread)

    /// The job thread's write end of a log (an external job's is the loop's).
    final class Appender {
        let path: String
        private let fd: Int32

        fileprivate init(path: String, fd: Int32) { self.path = path; self.fd = fd }

        /// Appends a batch at the log's end, `chunk.fileOffset`. When the write fails (a full disk, an I/O error),
        /// whatever part of it reached the file is cut off again, so the log still ends with a whole event, and the
        /// failure is returned: the caller decides what the job does.
        func append(_ chunk: EventChunk) -> SystemError? {
            guard let failure = FileIO.writeAll(fd: fd, chunk.bytes.base, chunk.bytes.count, path: path) else { return nil }
            _ = ftruncate(fd, off_t(chunk.fileOffset))
            return SystemError(operation: "append to", path: path, code: failure)
        }

        /// Write-behind and drop-behind: once `writeBehindBytes` more have been appended, asks the kernel to start
        /// writing them to disk now (`sync_file_range`, no wait), and drops the range started the time before from
        /// the page cache. A long job's log then neither piles up as dirty data nor grows the cache by gigabytes:
        /// the same pages are reused, where fresh ones cost the job 3–4× its system time on a VM whose free memory
        /// goes back to the host (docs/BENCHMARKS.md, "Logs piling up"). Not a durability point: no fsync. Readers
        /// behind the in-memory tail read those ranges from the disk.
        func writeBehind(through end: Int) {
            guard end - writtenBehind >= EventLog.writeBehindBytes else { return }
            _ = ltd_start_writeback(fd, off_t(writtenBehind), off_t(end - writtenBehind))
            // The range started one call ago has had 8 MiB of appends' time to reach the disk: drop it from the page
            // cache (pages still being written are skipped by the kernel), so the cache is reused rather than grown.
            if writtenBehind > droppedThrough {
                _ = posix_fadvise(fd, off_t(droppedThrough), off_t(writtenBehind - droppedThrough), POSIX_FADV_DONTNEED)
                droppedThrough = writtenBehind
            }
            writtenBehind = end
        }
        private var writtenBehind = 0
        private var droppedThrough = 0

        /// Closes the file once: a second call must not close whatever descriptor has since been given that number.
        func close() {
            guard !closed else { return }
            closed = true
            _ = Glibc.close(fd)
        }
        private var closed = false
    }

    static let writeBehindBytes = 8 * 1024 * 1024

    static func openAppender(path: String) -> Result<Appender, SystemError> {
        let fd = FileIO.open(path, O_WRONLY | O_CREAT | O_APPEND)
        guard fd >= 0 else { return .failure(SystemError(operation: "open", path: path, code: errno)) }
        return .success(Appender(path: path, fd: fd))
    }

    // MARK: Recovery

    /// Cuts the log at `path` back to the end of event `seq`, which the checkpoint says ends at byte `offset`. Checks
    /// that claim (the byte before `offset` ends a line whose seq is `seq`) and otherwise finds the right offset by
    /// counting lines, so a torn last line or events written after the checkpoint go. Returns the offset the log now
    /// ends at, or nil when it holds fewer than `seq` whole events.
    static func recover(path: String, toSeq seq: Int, offset: Int) -> Int? {
        let fd = FileIO.open(path, O_RDWR | O_CREAT)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return nil }
        let size = Int(info.st_size)
        let target: Int?
        if seq <= 0 {
            target = 0
        } else if offset <= size, offset > 0, lastLineSeq(fd: fd, endingAt: offset) == seq {
            target = offset
        } else {
            target = scanForEnd(fd: fd, seq: seq, size: size)
        }
        guard let target else { return nil }
        if target < size {
            guard ftruncate(fd, off_t(target)) == 0 else { return nil }
            try? FileIO.sync(fd: fd, path: path)
        }
        return target
    }

    /// Appends, at start-up, events a job owes its log (its final `state` and `end`), durably. The log must end at
    /// `offset` (a whole event); on failure it is cut back to it.
    static func appendOwed(_ bytes: [UInt8], path: String, at offset: Int) throws(SystemError) {
        let fd = FileIO.open(path, O_WRONLY | O_APPEND)
        guard fd >= 0 else { throw SystemError(operation: "open", path: path, code: errno) }
        defer { close(fd) }
        let failure = bytes.withUnsafeBytes { raw in raw.baseAddress.flatMap { FileIO.writeAll(fd: fd, $0, raw.count, path: path) } }
        if let failure {
            _ = ftruncate(fd, off_t(offset))
            throw SystemError(operation: "append to", path: path, code: failure)
        }
        try FileIO.sync(fd: fd, path: path)
    }

    /// The seq of the line that ends (with its `\n`) exactly at `end`.
    private static func lastLineSeq(fd: Int32, endingAt end: Int) -> Int? {
        let window = min(end, 1 << 20)
        var buffer = [UInt8](repeating: 0, count: window)
        let got = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, window, off_t(end - window)) }
        guard got == window, buffer.last == 0x0A else { return nil }
        var start = window - 1
        while start > 0, buffer[start - 1] != 0x0A { start -= 1 }
        guard start > 0 || window == end else { return nil }
        return buffer.withUnsafeBytes { raw in EventLine.seq(of: UnsafeRawBufferPointer(rebasing: raw[start..<window])) }
    }

    /// The offset just after the `seq`-th line, by counting lines from the start.
    private static func scanForEnd(fd: Int32, seq: Int, size: Int) -> Int? {
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var position = 0
        var lines = 0
        while position < size {
            let got = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(position)) }
            guard got > 0 else { return nil }
            for i in 0..<got where buffer[i] == 0x0A {
                lines += 1
                if lines == seq { return position + i + 1 }
            }
            position += got
        }
        return nil
    }

    // MARK: Publishing (the loop thread)

    /// Takes a batch the job thread has written. Returns false (and drops it) when it does not follow the last one.
    @discardableResult
    func publish(_ chunk: EventChunk) -> Bool {
        guard chunk.firstSeq == publishedSeq + 1, chunk.fileOffset == publishedOffset else {
            Log.error("\(path): batch starts at seq \(chunk.firstSeq), offset \(chunk.fileOffset); expected \(publishedSeq + 1), \(publishedOffset); dropped")
            return false
        }
        tail.append(chunk)
        if !chunk.inFile { holdsUnwrittenEvents = true }
        tailBytes += chunk.memoryBytes
        publishedSeq = chunk.lastSeq
        publishedOffset = chunk.endOffset
        if chunk.kinds.last == .end { ended = true }
        noteIndex(seq: chunk.firstSeq, offset: chunk.fileOffset)
        while tailBytes > tailLimitBytes, tail.count - tailHead > 1 {
            tailBytes -= tail[tailHead].memoryBytes
            tailHead += 1
        }
        if tailHead > 64, tailHead * 2 > tail.count {
            tail.removeFirst(tailHead)
            tailHead = 0
        }
        return true
    }

    /// Set when the newest events are in memory only (see `EventChunk.inFile`): the tail is then kept.
    private var holdsUnwrittenEvents = false

    /// Drops the in-memory tail (for a finished job nobody follows live any more), unless it holds the only copy.
    func releaseTail() {
        guard !holdsUnwrittenEvents else { return }
        tail.removeAll()
        tailHead = 0
        tailBytes = 0
    }

    /// The first seq held in memory, if any.
    var firstSeqInMemory: Int? { tailHead < tail.count ? tail[tailHead].firstSeq : nil }

    private func noteIndex(seq: Int, offset: Int) {
        guard let last = index.last else { return }
        if seq >= last.seq + indexSpacing {
            index.append((seq, offset))
            return
        }
        // Behind the newest entry (a restored log starts with its end indexed): file reads fill in a grid of seqs.
        guard seq < last.seq, (seq - 1) % indexSpacing == 0 else { return }
        var low = 0, high = index.count - 1
        while low < high {
            let mid = (low + high) / 2
            if index[mid].seq < seq { low = mid + 1 } else { high = mid }
        }
        if index[low].seq != seq { index.insert((seq, offset), at: low) }
    }

    /// The indexed position at or before `seq`: where a file scan for `seq` starts.
    func indexedPosition(atOrBefore seq: Int) -> (seq: Int, offset: Int) {
        var low = 0, high = index.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if index[mid].seq <= seq { low = mid } else { high = mid - 1 }
        }
        return index[low]
    }

    /// The number of index entries (for tests of its spacing).
    var indexCount: Int { index.count }

    // MARK: Reading (the loop thread; file reads anywhere)

    /// What one `read` produced: slices to write, in order, and how many bytes of log it examined.
    struct Read {
        var slices: [ByteSlice] = []
        var scanned = 0
    }

    struct ReadError: Error, CustomStringConvertible {
        let description: String
    }

    /// A reader's next step: served from memory at once, or a file read to run (in libuv's threadpool) and then
    /// hand to `finish`.
    enum NextRead {
        case served(Read)
        case fromFile(FileRead)
    }

    /// Serves the reader at `cursor` from one in-memory batch or one file read: at most about `budget` bytes of
    /// events it has not had (at least one event), kept or dropped by `filter`. Moves the cursor past every event it
    /// examined. Call again while `cursor.seq <= publishedSeq` and the reader wants more. (The daemon splits this
    /// into `next`, the file read off the loop, and `finish`; this is the same path run in one go.)
    func read(_ cursor: inout LogCursor, budget: Int, filter: EventFilter) -> Result<Read, ReadError> {
        switch next(&cursor, budget: budget, filter: filter) {
        case .failure(let error): return .failure(error)
        case .success(.served(let read)): return .success(read)
        case .success(.fromFile(let request)):
            request.perform()
            return finish(request, cursor: &cursor)
        }
    }

    /// The first half of `read`: an in-memory read is done at once; a read behind memory is described for `perform`.
    func next(_ cursor: inout LogCursor, budget: Int, filter: EventFilter) -> Result<NextRead, ReadError> {
        guard cursor.seq <= publishedSeq else { return .success(.served(Read())) }
        if let (chunk, line) = locate(cursor.seq) {
            return .success(.served(readMemory(&cursor, chunk: chunk, line: line, budget: budget, filter: filter)))
        }
        // From the cursor's file position (or the nearest indexed one before its seq), up to where memory starts.
        let limit = tailHead < tail.count ? tail[tailHead].fileOffset : publishedOffset
        var position = cursor.filePosition ?? indexedPosition(atOrBefore: cursor.seq)
        if position.seq > cursor.seq || position.offset >= limit {
            position = indexedPosition(atOrBefore: cursor.seq)
        }
        guard position.offset < limit else {
            return .failure(ReadError(description: "\(path): no event \(cursor.seq) before offset \(limit)"))
        }
        return .success(.fromFile(FileRead(path: path, start: position, wanted: cursor.seq, limit: limit, budget: budget,
                                           filter: filter, size: fileReadBytes, indexSpacing: indexSpacing)))
    }

    /// The second half of `read`, on the loop: notes the index points the file read passed and moves the cursor.
    func finish(_ request: FileRead, cursor: inout LogCursor) -> Result<Read, ReadError> {
        guard let outcome = request.outcome else { return .failure(ReadError(description: "\(path): the read did not run")) }
        switch outcome {
        case .failure(let error): return .failure(error)
        case .success(let done):
            for point in done.indexPoints { noteIndex(seq: point.seq, offset: point.offset) }
            if let next = done.nextSeq { cursor.seq = next }
            cursor.filePosition = done.position
            return .success(done.read)
        }
    }

    /// The chunk in memory that holds `seq`, with the event's position in it.
    private func locate(_ seq: Int) -> (chunk: EventChunk, line: Int)? {
        guard tailHead < tail.count, seq >= tail[tailHead].firstSeq, seq <= publishedSeq else { return nil }
        var low = tailHead, high = tail.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if tail[mid].firstSeq <= seq { low = mid } else { high = mid - 1 }
        }
        let chunk = tail[low]
        return (chunk, seq - chunk.firstSeq)
    }

    private func readMemory(_ cursor: inout LogCursor, chunk: EventChunk, line first: Int, budget: Int,
                            filter: EventFilter) -> Read {
        let startOffset = chunk.lineStart(first)
        var last = first
        while last + 1 < chunk.count, chunk.lineEnds[last] - startOffset < budget { last += 1 }
        let endOffset = chunk.lineEnds[last]
        var read = Read(scanned: endOffset - startOffset)
        if filter.isFiltering {
            var selected: [UInt8] = []
            for line in first...last where filter.wants(chunk.kinds[line], iteration: chunk.iterations[line]) {
                let from = chunk.lineStart(line)
                selected.append(contentsOf: UnsafeRawBufferPointer(start: chunk.bytes.base + from, count: chunk.lineEnds[line] - from))
            }
            if !selected.isEmpty { read.slices.append(ByteSlice(copying: selected)) }
        } else {
            read.slices.append(ByteSlice(chunk: chunk.bytes, offset: startOffset, count: endOffset - startOffset))
        }
        cursor.seq = chunk.firstSeq + last + 1
        cursor.filePosition = (cursor.seq, chunk.fileOffset + endOffset)
        return read
    }

    /// One read of the log file behind memory. It touches only its own fields and the file's bytes before `limit`
    /// (which never change once published), so it runs in libuv's threadpool; `finish` applies it on the loop.
    final class FileRead: @unchecked Sendable {
        // @unchecked: `outcome` is written by `perform` (threadpool) before the loop reads it in `finish`
        // (uv_queue_work's after-callback orders the two); the other fields are constants.
        let path: String
        let start: (seq: Int, offset: Int)
        let wanted: Int
        let limit: Int
        let budget: Int
        let filter: EventFilter
        let size: Int
        let indexSpacing: Int
        fileprivate(set) var outcome: Result<Done, ReadError>?

        struct Done {
            var read: Read
            /// The reader's next seq, when the read reached it.
            var nextSeq: Int?
            var position: (seq: Int, offset: Int)
            /// Line starts on the index grid (and the last one) that the read passed.
            var indexPoints: [(seq: Int, offset: Int)]
        }

        init(path: String, start: (seq: Int, offset: Int), wanted: Int, limit: Int, budget: Int, filter: EventFilter,
             size: Int, indexSpacing: Int) {
            self.path = path; self.start = start; self.wanted = wanted; self.limit = limit; self.budget = budget
            self.filter = filter; self.size = size; self.indexSpacing = indexSpacing
        }

        /// Reads about `size` bytes (a single longer line whole) and walks their complete lines.
        func perform() {
            outcome = run()
        }

        private func run() -> Result<Done, ReadError> {
            let fd = FileIO.open(path, O_RDONLY)
            guard fd >= 0 else { return .failure(ReadError(description: "cannot open \(path): \(errnoText(errno))")) }
            defer { close(fd) }
            var position = start
            var size = min(self.size, limit - position.offset)
            while true {
                let buffer = ByteChunk.allocate(size)
                let chunk = ByteChunk(takingMalloced: buffer, count: size)
                var got = 0
                while got < size {
                    let n = pread(fd, buffer + got, size - got, off_t(position.offset + got))
                    if n < 0 {
                        if errno == EINTR { continue }
                        return .failure(ReadError(description: "cannot read \(path): \(errnoText(errno))"))
                    }
                    if n == 0 { break }
                    got += n
                }
                guard got == size else {
                    return .failure(ReadError(description: "\(path) is shorter than expected (\(position.offset + got) < \(limit) bytes)"))
                }
                // Walk complete lines.
                var offset = 0
                var deliveredStart = -1
                var deliveredEnd = 0
                var selected: [UInt8] = []
                var delivered = 0
                var nextSeq: Int?
                var indexPoints: [(seq: Int, offset: Int)] = []
                while offset < got, delivered < budget {
                    guard let hit = memchr(buffer + offset, 0x0A, got - offset) else { break }
                    let end = buffer.distance(to: hit) + 1
                    if position.seq >= wanted {
                        if filter.isFiltering {
                            let line = UnsafeRawBufferPointer(start: buffer + offset, count: end - offset)
                            let kind = EventLine.kind(of: line) ?? .state
                            let iteration = kind == .step ? (EventLine.iteration(of: line) ?? 0) : 0
                            if filter.wants(kind, iteration: iteration) { selected.append(contentsOf: line) }
                        } else if deliveredStart < 0 {
                            deliveredStart = offset
                        }
                        deliveredEnd = end
                        delivered += end - offset
                        nextSeq = position.seq + 1
                    }
                    position.seq += 1
                    position.offset += end - offset
                    if (position.seq - 1) % indexSpacing == 0 { indexPoints.append(position) }
                    offset = end
                }
                if offset == 0 {
                    // One line longer than the buffer: read it whole.
                    guard size < limit - position.offset else {
                        return .failure(ReadError(description: "\(path) has no line end before offset \(limit)"))
                    }
                    size = min(size * 2, limit - position.offset)
                    continue
                }
                if indexPoints.last.map({ $0 != position }) ?? true { indexPoints.append(position) }
                var read = Read(scanned: offset)
                if filter.isFiltering {
                    if !selected.isEmpty { read.slices.append(ByteSlice(copying: selected)) }
                } else if deliveredStart >= 0 {
                    read.slices.append(ByteSlice(chunk: chunk, offset: deliveredStart, count: deliveredEnd - deliveredStart))
                }
                return .success(Done(read: read, nextSeq: nextSeq, position: position, indexPoints: indexPoints))
            }
        }
    }
}

/// A reader's place in a log: the next seq it needs, and, when known, where the line of an earlier or equal seq
/// starts in the file (so a reader behind memory goes on where its last file read stopped).
struct LogCursor {
    var seq: Int
    var filePosition: (seq: Int, offset: Int)?

    init(seq: Int) { self.seq = max(seq, 1) }
}

/// Which events a reader wants: a set of kinds (`end` always) and, for steps, every n-th iteration.
struct EventFilter: Equatable, Sendable {
    let every: Int
    /// Bit per EventKind.
    let kinds: UInt8

    static let all = EventFilter(every: 1, types: nil)

    init(every: Int, types: Set<EventType>?) {
        self.every = max(every, 1)
        guard let types else { kinds = 0xFF; return }
        var mask: UInt8 = 1 << EventKind.end.rawValue
        for type in types {
            switch type {
            case .start: mask |= 1 << EventKind.start.rawValue
            case .state: mask |= 1 << EventKind.state.rawValue
            case .step: mask |= 1 << EventKind.step.rawValue
            case .epoch: mask |= 1 << EventKind.epoch.rawValue
            case .end: break
            }
        }
        kinds = mask
    }

    var isFiltering: Bool { every != 1 || kinds != 0xFF }

    func wants(_ kind: EventKind, iteration: Int) -> Bool {
        guard kinds & (1 << kind.rawValue) != 0 else { return false }
        return kind != .step || every == 1 || iteration % every == 0
    }
}
