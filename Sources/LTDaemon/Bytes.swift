#if canImport(Glibc)
import Glibc
#endif
import LTProtocol

/// An immutable block of bytes with a stable address, shared by reference: the job thread encodes each event once
/// into one of these, and every subscriber's pending write points into it. Freed when the last reference goes,
/// which for a write is after libuv's write callback.
final class ByteChunk: @unchecked Sendable {
    // @unchecked: the memory is written only before init returns and never after, so sharing it is safe.
    let base: UnsafeMutableRawPointer
    let count: Int

    /// Takes ownership of `malloc`ed memory.
    init(takingMalloced base: UnsafeMutableRawPointer, count: Int) {
        self.base = base
        self.count = count
    }

    convenience init(copying bytes: [UInt8]) {
        let base = ByteChunk.allocate(bytes.count)
        bytes.withUnsafeBytes { raw in
            if let source = raw.baseAddress { memcpy(base, source, raw.count) }
        }
        self.init(takingMalloced: base, count: bytes.count)
    }

    deinit { free(base) }

    /// `malloc`, stopping loudly on failure: a daemon that promised to keep every event cannot go on without memory.
    static func allocate(_ count: Int) -> UnsafeMutableRawPointer {
        guard let base = malloc(max(count, 1)) else { outOfMemory() }
        return base
    }

    static func reallocate(_ base: UnsafeMutableRawPointer, _ count: Int) -> UnsafeMutableRawPointer {
        guard let moved = realloc(base, max(count, 1)) else { outOfMemory() }
        return moved
    }

    static func outOfMemory() -> Never {
        Log.error("out of memory")
        abort()
    }
}

/// A view of part of a ByteChunk, keeping it alive.
struct ByteSlice {
    let chunk: ByteChunk
    let offset: Int
    let count: Int
    var start: UnsafeMutableRawPointer { chunk.base + offset }

    init(chunk: ByteChunk, offset: Int, count: Int) {
        self.chunk = chunk; self.offset = offset; self.count = count
    }

    /// A slice of a fresh copy of `bytes` (a reply, or events picked out by a filter).
    init(copying bytes: [UInt8]) {
        self.init(chunk: ByteChunk(copying: bytes), offset: 0, count: bytes.count)
    }
}

/// Consecutive encoded events of one job, as the job thread published them: immutable, shared by the job's
/// in-memory tail and by every subscriber write that points into it.
final class EventChunk: Sendable {
    let bytes: ByteChunk
    let firstSeq: Int
    /// Offset just past each event's `\n`.
    let lineEnds: [Int]
    let kinds: [EventKind]
    /// The step iteration of each event (0 for non-step events), for `every` filtering.
    let iterations: [Int]
    /// Where `bytes` starts in the job's log file.
    let fileOffset: Int
    /// False for a job's final events that its log could not take (a full disk): memory is their only copy until
    /// the next start writes them (`StateStore.load`).
    let inFile: Bool

    init(bytes: ByteChunk, firstSeq: Int, lineEnds: [Int], kinds: [EventKind], iterations: [Int], fileOffset: Int,
         inFile: Bool = true) {
        self.bytes = bytes; self.firstSeq = firstSeq; self.lineEnds = lineEnds; self.kinds = kinds
        self.iterations = iterations; self.fileOffset = fileOffset; self.inFile = inFile
    }

    /// The same events, marked as missing from the file.
    func notInFile() -> EventChunk {
        EventChunk(bytes: bytes, firstSeq: firstSeq, lineEnds: lineEnds, kinds: kinds, iterations: iterations,
                   fileOffset: fileOffset, inFile: false)
    }

    var count: Int { lineEnds.count }
    var lastSeq: Int { firstSeq + lineEnds.count - 1 }
    /// The memory the chunk holds, for the tail's limit: its bytes, its three per-event arrays, and the fixed cost of
    /// its objects and allocations. A paced job publishes one ~450-byte event per chunk, so counting the bytes alone
    /// let a "4 MiB" tail hold about three times that.
    var memoryBytes: Int {
        bytes.count + count * (2 * MemoryLayout<Int>.stride + MemoryLayout<EventKind>.stride) + EventChunk.fixedMemoryBytes
    }
    /// Two objects and four malloc blocks, with their headers and array headers: about 64 bytes each.
    static let fixedMemoryBytes = 6 * 64
    var endOffset: Int { fileOffset + bytes.count }
    func lineStart(_ index: Int) -> Int { index == 0 ? 0 : lineEnds[index - 1] }
}

/// The job thread's buffer of encoded events not yet written to the log: one growing malloc block that becomes
/// an EventChunk's storage when flushed. The encoders write each event straight into it (`writeLine`), so an event
/// is never copied before the log write.
///
/// A line is written in two steps: `writeLine` puts it at the end, where it is not yet part of the batch (the job
/// thread first checks it against the log's limit, which may flush the batch without it), then `commitLine` adds it.
/// Writing another line instead drops it.
struct EventBatchBuilder: EventLineSink {
    private(set) var base: UnsafeMutableRawPointer
    private(set) var capacity: Int
    private(set) var count = 0
    /// The bytes of the line written at `count` and not yet committed.
    private(set) var pendingCount = 0
    private(set) var lineEnds: [Int] = []
    private(set) var kinds: [EventKind] = []
    private(set) var iterations: [Int] = []
    let initialCapacity: Int

    init(capacity: Int = 80 * 1024) {
        initialCapacity = capacity
        self.capacity = capacity
        base = ByteChunk.allocate(capacity)
    }

    var isEmpty: Bool { lineEnds.isEmpty }

    mutating func writeLine(room: Int, _ write: (UnsafeMutablePointer<UInt8>) -> Int) {
        // The room is the encoder's own bound; past it the heap would be damaged (the array form traps likewise).
        precondition(room >= 0, "an event line's room is negative")
        let needed = count + room
        if needed > capacity {
            var newCapacity = capacity * 2
            while newCapacity < needed { newCapacity *= 2 }
            base = ByteChunk.reallocate(base, newCapacity)
            capacity = newCapacity
        }
        let written = write((base + count).bindMemory(to: UInt8.self, capacity: room))
        precondition(written >= 0 && written <= room, "an event line overran its room")
        pendingCount = written
    }

    /// Adds the line last written to the batch.
    mutating func commitLine(kind: EventKind, iteration: Int) {
        count += pendingCount
        pendingCount = 0
        lineEnds.append(count)
        kinds.append(kind)
        iterations.append(iteration)
    }

    /// Forgets the line last written.
    mutating func dropLine() { pendingCount = 0 }

    mutating func append(_ line: [UInt8], kind: EventKind, iteration: Int) {
        write(line)
        commitLine(kind: kind, iteration: iteration)
    }

    /// Hands the committed bytes to a chunk; the next batch starts with the uncommitted line if there is one.
    mutating func take(firstSeq: Int, fileOffset: Int) -> EventChunk {
        let bytes: ByteChunk
        if count < capacity / 2 {
            // A small batch (a paced job publishes one event at a time, and the tail holds thousands of them) is
            // copied into an allocation of its own size and the buffer is kept for the next batch. Shrinking the
            // buffer in place instead left a hole of its size beside every chunk the tail held: RSS grew by about
            // 7 KiB per event in the soak (docs/RELIABILITY.md, "Soak").
            let copy = ByteChunk.allocate(count)
            memcpy(copy, base, count)
            bytes = ByteChunk(takingMalloced: copy, count: count)
            if pendingCount > 0 { memmove(base, base + count, pendingCount) }
        } else {
            let freshCapacity = max(initialCapacity, pendingCount)
            let fresh = ByteChunk.allocate(freshCapacity)
            if pendingCount > 0 { memcpy(fresh, base + count, pendingCount) }
            bytes = ByteChunk(takingMalloced: base, count: count)
            capacity = freshCapacity
            base = fresh
        }
        // The chunk gets exact-size copies of the per-event arrays and the builder keeps its capacity: handing over
        // the builder's own arrays would give every later chunk, even of one event, the largest batch's capacity.
        let chunk = EventChunk(bytes: bytes, firstSeq: firstSeq, lineEnds: Self.exactCopy(lineEnds),
                               kinds: Self.exactCopy(kinds), iterations: Self.exactCopy(iterations), fileOffset: fileOffset)
        count = 0
        lineEnds.removeAll(keepingCapacity: true)
        kinds.removeAll(keepingCapacity: true)
        iterations.removeAll(keepingCapacity: true)
        return chunk
    }

    private static func exactCopy<Element>(_ array: [Element]) -> [Element] {
        [Element](unsafeUninitializedCapacity: array.count) { buffer, initialized in
            initialized = buffer.initialize(fromContentsOf: array)
        }
    }

    /// Frees the buffer; the builder must not be used afterwards.
    func release() { free(base) }
}
