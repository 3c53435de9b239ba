#if canImport(Glibc)
import Glibc
#endif
import LTProtocol

/// The loop thread's side of one job: the events published so far, the recent ones in memory (the tail), a sparse
/// index of seq → log offset for the older ones, and the subscriptions that follow it.
final class JobStream {
    let record: JobRecord
    /// The job thread, until it has exited and been joined.
    var thread: pthread_t?
    /// Last seq published to the loop (and so written to the log).
    private(set) var publishedSeq: Int
    /// Log length in bytes through `publishedSeq`.
    private(set) var publishedOffset: Int
    /// True once the `end` event is published.
    private(set) var ended: Bool
    private var tail: [EventChunk] = []
    private var tailHead = 0
    private var tailBytes = 0
    /// (seq, byte offset of that event's line), ascending; always starts with (1, 0).
    private var index: [(seq: Int, offset: Int)] = [(1, 0)]
    /// Connections subscribed to this job, by connection identity.
    var subscribers: [ObjectIdentifier: Connection] = [:]
    /// For an external job being published: its checker, publisher and log.
    var external: ExternalFeed?

    /// Memory kept per job for subscribers that are nearly caught up; older events are read from the log.
    static let tailLimitBytes = 4 * 1024 * 1024
    static let indexSpacing = 1024

    init(record: JobRecord, publishedSeq: Int, publishedOffset: Int, ended: Bool) {
        self.record = record
        self.publishedSeq = publishedSeq
        self.publishedOffset = publishedOffset
        self.ended = ended
        if publishedSeq > 0 { noteIndex(seq: publishedSeq + 1, offset: publishedOffset) }
    }

    var name: String { record.name }

    func append(_ chunk: EventChunk) {
        guard chunk.firstSeq == publishedSeq + 1 else {
            Log.error("job \(name): chunk starts at seq \(chunk.firstSeq), expected \(publishedSeq + 1); dropped")
            return
        }
        tail.append(chunk)
        tailBytes += chunk.bytes.count
        publishedSeq = chunk.lastSeq
        publishedOffset = chunk.endOffset
        if chunk.kinds.last == .end { ended = true }
        noteIndex(seq: chunk.firstSeq, offset: chunk.fileOffset)
        while tailBytes > JobStream.tailLimitBytes, tail.count - tailHead > 1 {
            tailBytes -= tail[tailHead].bytes.count
            tailHead += 1
        }
        if tailHead > 64, tailHead * 2 > tail.count {
            tail.removeFirst(tailHead)
            tailHead = 0
        }
    }

    /// Drops the in-memory tail (for a finished job nobody follows live any more).
    func releaseTail() {
        tail.removeAll()
        tailHead = 0
        tailBytes = 0
    }

    func noteIndex(seq: Int, offset: Int) {
        guard let last = index.last, seq >= last.seq + JobStream.indexSpacing else { return }
        index.append((seq, offset))
    }

    /// The indexed position at or before `seq`: where a log scan for `seq` starts.
    func indexedPosition(atOrBefore seq: Int) -> (seq: Int, offset: Int) {
        var low = 0, high = index.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if index[mid].seq <= seq { low = mid } else { high = mid - 1 }
        }
        return index[low]
    }

    /// The chunk in memory that holds `seq`, with the event's position in it.
    func locate(_ seq: Int) -> (chunk: EventChunk, line: Int)? {
        guard tailHead < tail.count, seq >= tail[tailHead].firstSeq, seq <= publishedSeq else { return nil }
        var low = tailHead, high = tail.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if tail[mid].firstSeq <= seq { low = mid } else { high = mid - 1 }
        }
        let chunk = tail[low]
        return (chunk, seq - chunk.firstSeq)
    }

    /// The log offset where memory starts: events before it are served from the file.
    var tailStartOffset: Int { tailHead < tail.count ? tail[tailHead].fileOffset : publishedOffset }
}

/// One connection's subscription to a job: a cursor (the next seq it needs) and its filters.
final class Subscription {
    let stream: JobStream
    /// The next seq to deliver.
    var cursor: Int
    let every: Int
    /// Bit per EventKind; `end` is always delivered.
    let kinds: UInt8
    /// Where `filePosition.seq`'s line starts in the log, when known; `filePosition.seq` ≤ `cursor`.
    var filePosition: (seq: Int, offset: Int)?
    var complete = false

    init(stream: JobStream, from: Int, every: Int, types: Set<EventType>?) {
        self.stream = stream
        self.cursor = from
        self.every = max(every, 1)
        if let types {
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
        } else {
            kinds = 0xFF
        }
    }

    var isFiltered: Bool { every != 1 || kinds != 0xFF }

    func wants(_ kind: EventKind, iteration: Int) -> Bool {
        guard kinds & (1 << kind.rawValue) != 0 else { return false }
        return kind != .step || every == 1 || iteration % every == 0
    }
}
