#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import LTDaemon
import LTProtocol

/// EventLog against crafted logs: recovery of torn files, the sparse index, a tail that rolled past a reader, filters.
@Suite struct EventLogTests {
    /// One event line as the encoders write it (type, job, seq first; a step's iteration after epoch and step).
    static func line(_ seq: Int, _ kind: EventKind = .step, iteration: Int? = nil) -> [UInt8] {
        switch kind {
        case .step:
            let i = iteration ?? seq
            return Array(#"{"type":"step","job":"t","seq":\#(seq),"epoch":1,"step":\#(i),"iteration":\#(i),"loss":0.5}"#.utf8) + [0x0A]
        case .epoch: return Array(#"{"type":"epoch","job":"t","seq":\#(seq),"epoch":1}"#.utf8) + [0x0A]
        case .start: return Array(#"{"type":"start","job":"t","seq":\#(seq)}"#.utf8) + [0x0A]
        case .state: return Array(#"{"type":"state","job":"t","seq":\#(seq),"state":"running"}"#.utf8) + [0x0A]
        case .end: return Array(#"{"type":"end","job":"t","seq":\#(seq),"state":"finished"}"#.utf8) + [0x0A]
        }
    }

    /// A fresh file path in a fresh temporary directory.
    static func temporaryLogPath() throws -> String {
        var template = Array("/tmp/ltd-eventlog-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer in buffer.baseAddress.flatMap { mkdtemp($0) } }
        try #require(made != nil)
        let directory = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return directory + "/events.ndjson"
    }

    static func write(_ bytes: [UInt8], to path: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        #expect(fd >= 0)
        bytes.withUnsafeBytes { raw in _ = FileIO.writeAll(fd: fd, raw.baseAddress!, raw.count, path: path) }
        close(fd)
    }

    static func bytes(_ slices: [ByteSlice]) -> [UInt8] {
        slices.flatMap { Array(UnsafeRawBufferPointer(start: $0.start, count: $0.count)) }
    }

    /// Reads everything from `from` on, as a subscriber would, in reads of at most `budget` bytes.
    static func readAll(_ log: EventLog, from: Int, budget: Int = 1 << 20, filter: EventFilter = .all) throws -> [UInt8] {
        var cursor = LogCursor(seq: from)
        var out: [UInt8] = []
        var reads = 0
        while cursor.seq <= log.publishedSeq {
            let read = try log.read(&cursor, budget: budget, filter: filter).get()
            out += bytes(read.slices)
            reads += 1
            #expect(reads < 10_000, "read makes no progress")
            if reads >= 10_000 { break }
        }
        return out
    }

    /// Appends `lines` through the job thread's path: a batch written to the file, then published to the log.
    static func append(_ lines: [(line: [UInt8], kind: EventKind, iteration: Int)], to log: EventLog,
                       appender: EventLog.Appender) {
        var builder = EventBatchBuilder(capacity: 256)
        for entry in lines { builder.append(entry.line, kind: entry.kind, iteration: entry.iteration) }
        let chunk = builder.take(firstSeq: log.publishedSeq + 1, fileOffset: log.publishedOffset)
        builder.release()
        #expect(appender.append(chunk) == nil)
        #expect(log.publish(chunk))
    }

    static func steps(_ range: ClosedRange<Int>) -> [(line: [UInt8], kind: EventKind, iteration: Int)] {
        range.map { (line($0), .step, $0) }
    }

    // MARK: Recovery

    @Test("recover cuts a torn last line back to the checkpoint's event")
    func tornLastLine() throws {
        let path = try Self.temporaryLogPath()
        let whole = Self.line(1, .start) + Self.line(2, .state) + Self.line(3)
        Self.write(whole + Array(Self.line(4).prefix(17)), to: path)
        #expect(EventLog.recover(path: path, toSeq: 3, offset: whole.count) == whole.count)
        #expect(try FileIO.readAll(path: path) == whole)
    }

    @Test("recover finds the right end by counting lines when the checkpoint's offset is wrong")
    func wrongOffset() throws {
        let path = try Self.temporaryLogPath()
        let two = Self.line(1, .start) + Self.line(2, .state)
        Self.write(two + Self.line(3) + Self.line(4), to: path)
        #expect(EventLog.recover(path: path, toSeq: 2, offset: two.count + 5) == two.count)
        #expect(try FileIO.readAll(path: path) == two)
    }

    @Test("recover refuses a log with fewer events than the checkpoint promises, and leaves it alone")
    func shortLog() throws {
        let path = try Self.temporaryLogPath()
        let torn = Self.line(1, .start) + Array(Self.line(2).prefix(10))
        Self.write(torn, to: path)
        #expect(EventLog.recover(path: path, toSeq: 2, offset: 200) == nil)
        #expect(try FileIO.readAll(path: path) == torn)
    }

    @Test("recover to seq 0 empties the log")
    func recoverToZero() throws {
        let path = try Self.temporaryLogPath()
        Self.write(Self.line(1, .start), to: path)
        #expect(EventLog.recover(path: path, toSeq: 0, offset: 0) == 0)
        #expect(try FileIO.readAll(path: path).isEmpty)
    }

    // MARK: Reading from the file and the index

    @Test("reads from the file start at every index boundary and just past it")
    func indexBoundaries() throws {
        let path = try Self.temporaryLogPath()
        let lines = (1...40).map { Self.line($0) }
        Self.write(lines.flatMap { $0 }, to: path)
        let total = lines.reduce(0) { $0 + $1.count }
        let log = EventLog(path: path, publishedSeq: 40, publishedOffset: total, ended: false,
                           indexSpacing: 8, fileReadBytes: 3 * lines[0].count)
        // A first reader walks the whole file in small reads, filling the index as it goes.
        #expect(try Self.readAll(log, from: 1) == lines.flatMap { $0 })
        #expect(log.indexCount == 6)   // seq 1, 9, 17, 25, 33, and 41 (the end, known from the start)
        for seq in [1, 2, 8, 9, 10, 16, 17, 33, 39, 40] {
            let indexed = log.indexedPosition(atOrBefore: seq)
            #expect(indexed.seq <= seq && seq - indexed.seq < 8)
            #expect(indexed.offset == lines[0..<(indexed.seq - 1)].reduce(0) { $0 + $1.count })
            // A new reader from `seq` gets exactly the lines from seq on, whatever its budget.
            for budget in [1, 100, 1 << 20] {
                #expect(try Self.readAll(log, from: seq, budget: budget) == lines[(seq - 1)...].flatMap { $0 })
            }
        }
    }

    @Test("a line longer than one file read is read whole")
    func longLine() throws {
        let path = try Self.temporaryLogPath()
        let long = Array(#"{"type":"start","job":"t","seq":1,"pad":""#.utf8) + Array(repeating: UInt8(ascii: "x"), count: 5000) + Array("\"}\n".utf8)
        let all = long + Self.line(2)
        Self.write(all, to: path)
        let log = EventLog(path: path, publishedSeq: 2, publishedOffset: all.count, ended: false, fileReadBytes: 64)
        #expect(try Self.readAll(log, from: 1) == all)
    }

    @Test("a log shorter than published is a read error, not a crash")
    func shortFile() throws {
        let path = try Self.temporaryLogPath()
        Self.write(Self.line(1), to: path)
        let log = EventLog(path: path, publishedSeq: 3, publishedOffset: 3 * Self.line(1).count, ended: false)
        var cursor = LogCursor(seq: 1)
        guard case .failure = log.read(&cursor, budget: 1 << 20, filter: .all) else {
            Issue.record("expected a read error")
            return
        }
    }

    // MARK: The tail

    /// A new log whose tail keeps about 400 bytes, with an index entry every 4 events and 150-byte file reads.
    static func smallTailLog() throws -> (path: String, log: EventLog, appender: EventLog.Appender) {
        let path = try temporaryLogPath()
        let log = EventLog(path: path, publishedSeq: 0, publishedOffset: 0, ended: false, tailLimitBytes: 400,
                           indexSpacing: 4, fileReadBytes: 150)
        return (path, log, try EventLog.openAppender(path: path).get())
    }

    @Test("a reader the tail has rolled past reads the file, then memory, and gets every byte once")
    func tailRolledPastReader() throws {
        let (path, log, appender) = try Self.smallTailLog()
        defer { appender.close() }
        var seq = 0
        for batch in 0..<20 {
            let count = 1 + batch % 3
            Self.append(Self.steps((seq + 1)...(seq + count)), to: log, appender: appender)
            seq += count
        }
        #expect(log.publishedSeq == seq)
        let first = try #require(log.firstSeqInMemory)
        #expect(first > 1, "the tail should have rolled past seq 1")
        let file = try FileIO.readAll(path: path)
        #expect(file.count == log.publishedOffset)
        for from in [1, 2, first - 1, first, first + 1, seq] {
            #expect(try Self.readAll(log, from: from) == (from...seq).flatMap { Self.line($0) })
        }
        // A reader in memory when the tail rolls past it continues from the file.
        var cursor = LogCursor(seq: first)
        var got = Self.bytes(try log.read(&cursor, budget: 1, filter: .all).get().slices)
        for _ in 0..<10 { Self.append(Self.steps((seq + 1)...(seq + 3)), to: log, appender: appender); seq += 3 }
        #expect(try #require(log.firstSeqInMemory) > cursor.seq)
        while cursor.seq <= log.publishedSeq { got += Self.bytes(try log.read(&cursor, budget: 1 << 20, filter: .all).get().slices) }
        #expect(got == (first...seq).flatMap { Self.line($0) })
    }

    @Test("the tail's limit counts each chunk's bookkeeping: one-event chunks are held by memory, not by event bytes")
    func tailLimitCountsChunkMemory() throws {
        let path = try Self.temporaryLogPath()
        let perChunk = Self.line(1).count + 17 + EventChunk.fixedMemoryBytes
        let log = EventLog(path: path, publishedSeq: 0, publishedOffset: 0, ended: false, tailLimitBytes: 10 * perChunk)
        let appender = try EventLog.openAppender(path: path).get()
        defer { appender.close() }
        for seq in 1...100 { Self.append(Self.steps(seq...seq), to: log, appender: appender) }
        // The newest chunks whose memory fits the limit: about ten (counting event bytes alone kept all 100).
        var kept = 0, total = 0
        for seq in (1...100).reversed() {
            let cost = Self.line(seq).count + 17 + EventChunk.fixedMemoryBytes
            if total + cost > 10 * perChunk { break }
            total += cost; kept += 1
        }
        #expect((9...10).contains(kept))
        #expect(log.firstSeqInMemory == 101 - kept)
        #expect(try Self.readAll(log, from: 1) == (1...100).flatMap { Self.line($0) })
    }

    @Test("a file read finished after more batches arrived (as in the threadpool) keeps every byte, once, in order")
    func fileReadFinishedLater() throws {
        let (path, log, appender) = try Self.smallTailLog()
        defer { appender.close() }
        var seq = 0
        for _ in 0..<10 { Self.append(Self.steps((seq + 1)...(seq + 2)), to: log, appender: appender); seq += 2 }
        for filter in [EventFilter.all, EventFilter(every: 3, types: nil)] {
            var cursor = LogCursor(seq: 1)
            var got: [UInt8] = []
            var fileReads = 0
            while cursor.seq <= log.publishedSeq {
                switch try log.next(&cursor, budget: 1 << 20, filter: filter).get() {
                case .served(let read):
                    got += Self.bytes(read.slices)
                case .fromFile(let request):
                    fileReads += 1
                    request.perform()
                    // While the first reads were away, the job published more and the tail rolled on.
                    if fileReads <= 6 {
                        Self.append(Self.steps((seq + 1)...(seq + 2)), to: log, appender: appender)
                        seq += 2
                    }
                    got += Self.bytes(try log.finish(request, cursor: &cursor).get().slices)
                }
                #expect(fileReads < 1000, "the reader makes no progress")
                if fileReads >= 1000 { break }
            }
            #expect(fileReads > 1)
            let wanted = (1...seq).filter { filter.wants(.step, iteration: $0) }
            #expect(got == wanted.flatMap { Self.line($0) })
        }
        // The index the reads noted points at real line starts.
        let file = try FileIO.readAll(path: path)
        for probe in [1, 5, 9, 13, 17, 21] {
            let position = log.indexedPosition(atOrBefore: probe)
            #expect(position.offset == (1..<position.seq).reduce(0) { $0 + Self.line($1).count })
            #expect(position.offset == 0 || file[position.offset - 1] == 0x0A)
        }
    }

    @Test("publish refuses a batch that does not follow the last one")
    func publishOutOfOrder() throws {
        let path = try Self.temporaryLogPath()
        let log = EventLog(path: path, publishedSeq: 0, publishedOffset: 0, ended: false)
        var builder = EventBatchBuilder(capacity: 64)
        builder.append(Self.line(2), kind: .step, iteration: 2)
        let chunk = builder.take(firstSeq: 2, fileOffset: 0)
        builder.release()
        #expect(!log.publish(chunk))
        #expect(log.publishedSeq == 0)
    }

    @Test("end marks the log ended; releasing the tail leaves every event readable from the file")
    func endAndRelease() throws {
        let path = try Self.temporaryLogPath()
        let log = EventLog(path: path, publishedSeq: 0, publishedOffset: 0, ended: false)
        let appender = try EventLog.openAppender(path: path).get()
        defer { appender.close() }
        Self.append([(Self.line(1, .start), .start, 0)] + Self.steps(2...5) + [(Self.line(6, .end), .end, 0)], to: log, appender: appender)
        #expect(log.ended)
        log.releaseTail()
        #expect(log.firstSeqInMemory == nil)
        #expect(try Self.readAll(log, from: 1) == (try FileIO.readAll(path: path)))
    }

    @Test("final events the file could not take (a full disk) stay in memory: releasing the tail keeps them readable")
    func unwrittenEndIsKept() throws {
        let path = try Self.temporaryLogPath()
        let log = EventLog(path: path, publishedSeq: 0, publishedOffset: 0, ended: false)
        let appender = try EventLog.openAppender(path: path).get()
        defer { appender.close() }
        Self.append([(Self.line(1, .start), .start, 0)] + Self.steps(2...5), to: log, appender: appender)
        let written = try FileIO.readAll(path: path)
        var builder = EventBatchBuilder(capacity: 256)
        builder.append(Self.line(6, .state), kind: .state, iteration: 0)
        builder.append(Self.line(7, .end), kind: .end, iteration: 0)
        let final = builder.take(firstSeq: 6, fileOffset: log.publishedOffset)
        builder.release()
        #expect(log.publish(final.notInFile()))
        log.releaseTail()
        #expect(log.ended && log.firstSeqInMemory != nil)
        #expect(try Self.readAll(log, from: 1) == written + Self.line(6, .state) + Self.line(7, .end))
    }

    // MARK: Filters

    @Test("a filter with every and types keeps the same events from memory and from the file")
    func filterEvery() throws {
        let path = try Self.temporaryLogPath()
        let log = EventLog(path: path, publishedSeq: 0, publishedOffset: 0, ended: false, tailLimitBytes: 300, fileReadBytes: 200)
        let appender = try EventLog.openAppender(path: path).get()
        defer { appender.close() }
        // seq 1 start, 2 state, then steps with iteration = seq - 2, an epoch after every 5 steps, and an end.
        var entries: [(line: [UInt8], kind: EventKind, iteration: Int)] = [(Self.line(1, .start), .start, 0), (Self.line(2, .state), .state, 0)]
        var seq = 2
        for iteration in 1...20 {
            seq += 1
            entries.append((Self.line(seq, iteration: iteration), .step, iteration))
            if iteration % 5 == 0 { seq += 1; entries.append((Self.line(seq, .epoch), .epoch, 0)) }
        }
        seq += 1
        entries.append((Self.line(seq, .end), .end, 0))
        for start in stride(from: 0, to: entries.count, by: 4) {
            Self.append(Array(entries[start..<min(start + 4, entries.count)]), to: log, appender: appender)
        }
        let filter = EventFilter(every: 3, types: [.step])
        let expected = entries.filter { ($0.kind == .step && $0.iteration % 3 == 0) || $0.kind == .end }.flatMap { $0.line }
        let live = try Self.readAll(log, from: 1, budget: 50, filter: filter)
        #expect(live == expected)
        log.releaseTail()
        #expect(try Self.readAll(log, from: 1, budget: 50, filter: filter) == expected)
        // `every` alone keeps every non-step event.
        let everyFour = EventFilter(every: 4, types: nil)
        #expect(try Self.readAll(log, from: 1, filter: everyFour)
                == entries.filter { $0.kind != .step || $0.iteration % 4 == 0 }.flatMap { $0.line })
    }
}
