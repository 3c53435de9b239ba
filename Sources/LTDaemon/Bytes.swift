#if canImport(Glibc)
import Glibc
#endif

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
}

/// The kinds of event a subscriber can filter on. Raw values index a bit mask.
enum EventKind: UInt8, Sendable {
    case start = 0, state, step, epoch, end

    /// The kind named by the `"type":"..."` member of an encoded event line (the first `"type":` in the line,
    /// which is the event's own: the encoder writes it first).
    static func of(line: UnsafeRawBufferPointer) -> EventKind? {
        guard let value = EventLineScan.stringValue(of: "\"type\":\"", in: line) else { return nil }
        switch value {
        case "start": return .start
        case "state": return .state
        case "step": return .step
        case "epoch": return .epoch
        case "end": return .end
        default: return nil
        }
    }
}

/// Reads the few top-level members of an encoded event line that the daemon needs (type, iteration) without
/// parsing the whole line. Event lines are our own encoder's output, so the first occurrence is the top-level one.
enum EventLineScan {
    static func find(_ pattern: StaticString, in line: UnsafeRawBufferPointer) -> Int? {
        let needle = UnsafeRawBufferPointer(start: pattern.utf8Start, count: pattern.utf8CodeUnitCount)
        guard needle.count > 0, line.count >= needle.count, let base = line.baseAddress,
              let needleBase = needle.baseAddress else { return nil }
        var i = 0
        let last = line.count - needle.count
        while i <= last {
            guard let hit = memchr(base + i, Int32(needle[0]), last - i + 1) else { return nil }
            let at = base.distance(to: UnsafeRawPointer(hit))
            if memcmp(base + at, needleBase, needle.count) == 0 { return at + needle.count }
            i = at + 1
        }
        return nil
    }

    static func stringValue(of pattern: StaticString, in line: UnsafeRawBufferPointer) -> String? {
        guard let start = find(pattern, in: line) else { return nil }
        var end = start
        while end < line.count, line[end] != UInt8(ascii: "\"") { end += 1 }
        guard end < line.count, end - start <= 16 else { return nil }
        return String(decoding: UnsafeRawBufferPointer(rebasing: line[start..<end]), as: UTF8.self)
    }

    static func integerValue(of pattern: StaticString, in line: UnsafeRawBufferPointer) -> Int? {
        guard let start = find(pattern, in: line) else { return nil }
        var value = 0
        var end = start
        while end < line.count, end - start < 18, line[end] >= 0x30, line[end] <= 0x39 {
            value = value * 10 + Int(line[end] - 0x30)
            end += 1
        }
        return end > start ? value : nil
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

    init(bytes: ByteChunk, firstSeq: Int, lineEnds: [Int], kinds: [EventKind], iterations: [Int], fileOffset: Int) {
        self.bytes = bytes; self.firstSeq = firstSeq; self.lineEnds = lineEnds; self.kinds = kinds
        self.iterations = iterations; self.fileOffset = fileOffset
    }

    var count: Int { lineEnds.count }
    var lastSeq: Int { firstSeq + lineEnds.count - 1 }
    var endOffset: Int { fileOffset + bytes.count }
    func lineStart(_ index: Int) -> Int { index == 0 ? 0 : lineEnds[index - 1] }
}

/// The job thread's buffer of encoded events not yet written to the log: one growing malloc block that becomes
/// an EventChunk's storage when flushed, so events are copied once (encoder → here) and never again.
struct EventBatchBuilder {
    private(set) var base: UnsafeMutableRawPointer
    private(set) var capacity: Int
    private(set) var count = 0
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

    mutating func append(_ line: [UInt8], kind: EventKind, iteration: Int) {
        let needed = count + line.count
        if needed > capacity {
            var newCapacity = capacity * 2
            while newCapacity < needed { newCapacity *= 2 }
            base = ByteChunk.reallocate(base, newCapacity)
            capacity = newCapacity
        }
        line.withUnsafeBytes { raw in
            if let source = raw.baseAddress { memcpy(base + count, source, raw.count) }
        }
        count = needed
        lineEnds.append(count)
        kinds.append(kind)
        iterations.append(iteration)
    }

    /// Hands the buffered bytes to a chunk and starts a fresh buffer.
    mutating func take(firstSeq: Int, fileOffset: Int) -> EventChunk {
        // Give back the unused capacity: a slow job publishes small chunks, and the tail holds thousands of them.
        if count < capacity / 2 { base = ByteChunk.reallocate(base, count) }
        let chunk = EventChunk(bytes: ByteChunk(takingMalloced: base, count: count), firstSeq: firstSeq,
                               lineEnds: lineEnds, kinds: kinds, iterations: iterations, fileOffset: fileOffset)
        capacity = initialCapacity
        base = ByteChunk.allocate(capacity)
        count = 0
        lineEnds.removeAll(keepingCapacity: true)
        kinds.removeAll(keepingCapacity: true)
        iterations.removeAll(keepingCapacity: true)
        return chunk
    }

    /// Frees the buffer; the builder must not be used afterwards.
    func release() { free(base) }
}
