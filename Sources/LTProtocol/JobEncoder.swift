import LTEngine

extension EventEncoder {
    /// One job's step and epoch events, fast: everything that is the same in every such event of the job (the header up to
    /// `"seq":` with the escaped job name, the slot keys) is spelled once here, and each event is written through a
    /// pointer into room bounded in advance — constant key runs (separator, key, colon) as single copies, integers
    /// and numbers digit by digit in place, no intermediate String. The room is an `EventLineSink`: the job thread's
    /// batch buffer (no array per event, no copy) or, in the array-returning forms, one exactly-bounded array.
    /// The bytes are those of `JSONWriter`-based encoding (tests compare both over real runs).
    public struct JobEncoder: Sendable {
        public let spec: JobSpec
        public let job: String
        /// `{"type":"step","job":"NAME","seq":`
        private let head: [UInt8]
        /// `{"type":"epoch","job":"NAME","seq":`
        private let epochHead: [UInt8]
        /// Each slot name's key run: `"name":` (with a leading comma after the first), back to back.
        private let slotKeys: [UInt8]
        /// Where each slot's key run ends in `slotKeys`; as many entries as there are slots (at most 3 are written).
        private let slotKeyEnds: [Int]
        private let slotNames: [String]
        /// Dataset rows, for the bound on an index's digits.
        private let rowCount: Int
        private let indexDigits: Int

        /// Which digits writer spells the numbers; `LTBench codec` compares the two (docs/BENCHMARKS.md).
        package var numberSpelling = NumberSpelling.ryu

        public init(job: String, spec: JobSpec) {
            self.spec = spec
            self.job = job
            var w = JSONWriter(precision: spec.precision, capacity: 64 + job.utf8.count)
            w.beginObject()
            w.key("type"); w.rawString("step")
            w.field("job", job)
            w.key("seq")
            head = w.bytes
            var e = JSONWriter(precision: spec.precision, capacity: 64 + job.utf8.count)
            e.beginObject()
            e.key("type"); e.rawString("epoch")
            e.field("job", job)
            e.key("seq")
            epochHead = e.bytes
            rowCount = spec.data.x.count
            indexDigits = JobEncoder.decimalDigits(UInt64(max(rowCount, 1)))
            slotNames = []
            slotKeys = []
            slotKeyEnds = []
        }

        private init(copying other: JobEncoder, slotNames names: [String]) {
            spec = other.spec; job = other.job; head = other.head; epochHead = other.epochHead; rowCount = other.rowCount; indexDigits = other.indexDigits
            slotNames = names
            var keys: [UInt8] = []
            var ends: [Int] = []
            for (i, name) in names.prefix(3).enumerated() {
                var w = JSONWriter(capacity: 16 + name.utf8.count)
                w.beginObject()
                w.key(name)
                if i > 0 { keys.append(UInt8(ascii: ",")) }
                keys.append(contentsOf: w.bytes.dropFirst())  // without the `{`
                ends.append(keys.count)
            }
            slotKeys = keys
            slotKeyEnds = ends
        }

        static func decimalDigits(_ v: UInt64) -> Int {
            var digits = 1
            var rest = v
            while rest >= 10 { rest /= 10; digits &+= 1 }
            return digits
        }

        /// The step event's line. `mutating` only to remember the optimizer's slot names (one array per job).
        public mutating func step(seq: Int, record r: StepRecord) -> [UInt8] {
            var line = LineArray()
            step(seq: seq, record: r, into: &line)
            return line.bytes
        }

        /// The step event's line, written into `sink`.
        public mutating func step<Sink: EventLineSink>(seq: Int, record r: StepRecord, into sink: inout Sink) {
            if r.slots.names != slotNames { self = JobEncoder(copying: self, slotNames: r.slots.names) }
            writeStep(seq: seq, record: r, into: &sink)
        }

        /// The line, computed without touching `self` (for callers that cannot hold the encoder mutably).
        public func stepLine(seq: Int, record r: StepRecord) -> [UInt8] {
            guard r.slots.names == slotNames else {
                return JobEncoder(copying: self, slotNames: r.slots.names).stepLine(seq: seq, record: r)
            }
            var line = LineArray()
            writeStep(seq: seq, record: r, into: &line)
            return line.bytes
        }

        /// Needs `slotNames` to be the record's.
        private func writeStep<Sink: EventLineSink>(seq: Int, record r: StepRecord, into sink: inout Sink) {
            let rows = r.batch.count
            let withValues = rows <= maxRowsWithValues
            let range = rows > maxIndicesForContiguous ? contiguousStart(r.batch) : nil
            // Every index of a real batch is a dataset row; anything else takes the general writer.
            if range == nil, !indicesInRange(r.batch) {
                sink.write(EventEncoder.generalStep(job: job, seq: seq, record: r, spec: spec))
                return
            }
            // Bound: fixed keys < 320 bytes; 5 integers ≤ 21 each; 17 numbers ≤ 1 + ShortestDecimal.maxLength each.
            let number = 1 &+ ShortestDecimal.maxLength
            var bound = head.count &+ slotKeys.count &* 2 &+ 320 &+ 5 &* 21 &+ 17 &* number
            bound &+= range != nil ? 2 &* 21 : rows &* (indexDigits &+ 1)
            if withValues { bound &+= 3 &* rows &* number }
            let precision = spec.precision
            let x = spec.data.x, y = spec.data.y
            sink.writeLine(room: bound) { base in
                var o = RawOut(base, numberSpelling)
                o.copy(head)
                o.integer(seq)
                o.run(",\"epoch\":"); o.integer(r.epoch)
                o.run(",\"step\":"); o.integer(r.step)
                o.run(",\"iteration\":"); o.integer(r.iteration)
                o.run(",\"batch\":{\"size\":"); o.integer(rows)
                if let first = range {
                    o.run(",\"range\":["); o.integer(first); o.byte(UInt8(ascii: ",")); o.integer(first &+ rows)
                    o.byte(UInt8(ascii: "]"))
                } else {
                    o.run(",\"indices\":[")
                    if let order = r.batch.order {
                        order.withUnsafeBufferPointer { order in
                            var k = r.batch.range.lowerBound
                            let end = r.batch.range.upperBound
                            if k < end { o.index(order[k]); k &+= 1 }
                            while k < end { o.byte(UInt8(ascii: ",")); o.index(order[k]); k &+= 1 }
                        }
                    } else {
                        var k = r.batch.range.lowerBound
                        let end = r.batch.range.upperBound
                        if k < end { o.index(k); k &+= 1 }
                        while k < end { o.byte(UInt8(ascii: ",")); o.index(k); k &+= 1 }
                    }
                    o.byte(UInt8(ascii: "]"))
                }
                if withValues {
                    o.run(",\"x\":[")
                    for k in 0..<rows { if k > 0 { o.byte(UInt8(ascii: ",")) }; o.number(x[r.batch[k]], precision) }
                    o.run("],\"y\":[")
                    for k in 0..<rows { if k > 0 { o.byte(UInt8(ascii: ",")) }; o.number(y[r.batch[k]], precision) }
                    o.run("],\"pred\":[")
                    for k in 0..<rows {
                        if k > 0 { o.byte(UInt8(ascii: ",")) }
                        o.number(prediction(x[r.batch[k]], w: r.wBefore, b: r.bBefore, precision: precision), precision)
                    }
                    o.byte(UInt8(ascii: "]"))
                }
                o.run("},\"w_before\":"); o.number(r.wBefore, precision)
                o.run(",\"b_before\":"); o.number(r.bBefore, precision)
                o.run(",\"grad_w\":"); o.number(r.gradW, precision)
                o.run(",\"grad_b\":"); o.number(r.gradB, precision)
                o.run(",\"w_after\":"); o.number(r.wAfter, precision)
                o.run(",\"b_after\":"); o.number(r.bAfter, precision)
                o.run(",\"batch_loss\":"); o.number(r.batchLoss, precision)
                o.run(",\"batch_rmse\":"); o.number(r.batchRmse, precision)
                o.run(",\"loss\":"); o.number(r.loss, precision)
                o.run(",\"rmse\":"); o.number(r.rmse, precision)
                o.run(",\"val_loss\":"); o.number(r.valLoss, precision)
                o.run(",\"val_rmse\":"); o.number(r.valRmse, precision)
                o.run(",\"slots\":{\"kernel\":{")
                slotValues(&o, r.slots.kernel, precision)
                o.run("},\"bias\":{")
                slotValues(&o, r.slots.bias, precision)
                o.run("}}}\n")
                return o.count
            }
        }

        /// The epoch event's line (the bytes of `EventEncoder.epoch`).
        public func epoch(seq: Int, record r: EpochRecord) -> [UInt8] {
            var line = LineArray()
            epoch(seq: seq, record: r, into: &line)
            return line.bytes
        }

        /// The epoch event's line, written into `sink`.
        public func epoch<Sink: EventLineSink>(seq: Int, record r: EpochRecord, into sink: inout Sink) {
            let precision = spec.precision
            // Keys < 96 bytes, 3 integers, 6 numbers.
            let bound = epochHead.count &+ 96 &+ 3 &* 21 &+ 6 &* (1 &+ ShortestDecimal.maxLength)
            sink.writeLine(room: bound) { base in
                var o = RawOut(base, numberSpelling)
                o.copy(epochHead)
                o.integer(seq)
                o.run(",\"epoch\":"); o.integer(r.epoch)
                o.run(",\"iteration\":"); o.integer(r.iteration)
                o.run(",\"loss\":"); o.number(r.loss, precision)
                o.run(",\"rmse\":"); o.number(r.rmse, precision)
                o.run(",\"val_loss\":"); o.number(r.valLoss, precision)
                o.run(",\"val_rmse\":"); o.number(r.valRmse, precision)
                o.run(",\"w\":"); o.number(r.w, precision)
                o.run(",\"b\":"); o.number(r.b, precision)
                o.run("}\n")
                return o.count
            }
        }

        private func indicesInRange(_ batch: BatchRows) -> Bool {
            guard let order = batch.order else { return batch.range.upperBound <= rowCount && batch.range.lowerBound >= 0 }
            for i in batch.range where order[i] < 0 || order[i] >= rowCount { return false }
            return true
        }

        private func slotValues(_ o: inout RawOut, _ v: (Double, Double, Double), _ precision: Precision) {
            let n = slotKeyEnds.count
            slotKeys.withUnsafeBufferPointer { keys in
                guard let keys = keys.baseAddress else { return }
                if n > 0 { o.copy(keys, count: slotKeyEnds[0]); o.number(v.0, precision) }
                if n > 1 { o.copy(keys + slotKeyEnds[0], count: slotKeyEnds[1] &- slotKeyEnds[0]); o.number(v.1, precision) }
                if n > 2 { o.copy(keys + slotKeyEnds[1], count: slotKeyEnds[2] &- slotKeyEnds[1]); o.number(v.2, precision) }
            }
        }
    }
}

/// Where an encoder writes one event line: room at the end of a buffer it does not own.
public protocol EventLineSink {
    /// Calls `write` once with a pointer to `room` writable bytes; `write` returns how many it wrote (at most `room`),
    /// which make the line.
    mutating func writeLine(room: Int, _ write: (UnsafeMutablePointer<UInt8>) -> Int)
}

extension EventLineSink {
    /// A line already encoded elsewhere, copied in.
    public mutating func write(_ line: [UInt8]) {
        writeLine(room: line.count) { base in
            line.withUnsafeBufferPointer { source in
                guard let from = source.baseAddress else { return 0 }
                base.initialize(from: from, count: source.count)
                return source.count
            }
        }
    }
}

/// The array-returning forms' sink: one line in an array allocated with exactly its room.
struct LineArray: EventLineSink {
    var bytes: [UInt8] = []

    mutating func writeLine(room: Int, _ write: (UnsafeMutablePointer<UInt8>) -> Int) {
        bytes = [UInt8](unsafeUninitializedCapacity: room) { buffer, count in
            guard let base = buffer.baseAddress else { count = 0; return }
            count = write(base)
        }
    }
}

/// How an encoder spells numbers: with the hand-written Ryū (`ShortestDecimal`, the default), or with the standard
/// library's `description` copied in (the same bytes; kept for the benchmark that justifies `ShortestDecimal`).
package enum NumberSpelling: Sendable { case ryu, standardLibrary }

/// Writes through a pointer into room the caller has bounded; every token is a copy or a digit loop.
struct RawOut {
    let base: UnsafeMutablePointer<UInt8>
    var count = 0
    let spelling: NumberSpelling
    init(_ base: UnsafeMutablePointer<UInt8>, _ spelling: NumberSpelling = .ryu) { self.base = base; self.spelling = spelling }

    @inline(__always) mutating func byte(_ b: UInt8) { base[count] = b; count &+= 1 }

    @inline(__always) mutating func run(_ text: StaticString) {
        let n = text.utf8CodeUnitCount
        (base + count).initialize(from: text.utf8Start, count: n)
        count &+= n
    }

    @inline(__always) mutating func copy(_ source: UnsafePointer<UInt8>, count n: Int) {
        (base + count).initialize(from: source, count: n)
        count &+= n
    }

    @inline(__always) mutating func copy(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { b in
            guard let source = b.baseAddress else { return }
            copy(source, count: b.count)
        }
    }

    /// A non-negative integer known to be small (a dataset row).
    @inline(__always) mutating func index(_ v: Int) { digits(UInt64(truncatingIfNeeded: v)) }

    @inline(__always) mutating func integer(_ v: Int) {
        if v < 0 { byte(UInt8(ascii: "-")) }
        digits(UInt64(truncatingIfNeeded: v.magnitude))
    }

    @inline(__always) mutating func digits(_ v: UInt64) {
        var n = 1
        var rest = v
        while rest >= 10 { rest /= 10; n &+= 1 }
        var k = count &+ n
        var value = v
        repeat {
            k &-= 1
            base[k] = 0x30 &+ UInt8(truncatingIfNeeded: value % 10)
            value /= 10
        } while value > 0
        count &+= n
    }

    /// As `JSONWriter.number`: the shortest spelling in `precision`, non-finite values as JSON strings.
    @inline(__always) mutating func number(_ value: Double, _ precision: Precision) {
        switch precision {
        case .float32:
            let f = Float(value)
            guard f.isFinite else { return nonFinite(f.isNaN, f > 0) }
            if spelling == .ryu { count &+= ShortestDecimal.write(f, to: base + count) } else { copy(description: f.description) }
        case .float64:
            guard value.isFinite else { return nonFinite(value.isNaN, value > 0) }
            if spelling == .ryu { count &+= ShortestDecimal.write(value, to: base + count) } else { copy(description: value.description) }
        }
    }

    private mutating func copy(description: String) {
        var text = description
        text.withUTF8 { utf8 in
            if let source = utf8.baseAddress { copy(source, count: min(utf8.count, ShortestDecimal.maxLength)) }
        }
    }

    private mutating func nonFinite(_ isNaN: Bool, _ positive: Bool) {
        run(isNaN ? "\"NaN\"" : (positive ? "\"Infinity\"" : "\"-Infinity\""))
    }
}
