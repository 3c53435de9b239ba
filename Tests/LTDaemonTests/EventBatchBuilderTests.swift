import Testing
@testable import LTDaemon
@testable import LTEngine
import LTProtocol

/// The job thread's way of encoding (each event written straight into the batch buffer, measured, then committed or
/// carried into the next batch) gives exactly the bytes of the array-returning encoders.
@Suite struct EventBatchBuilderTests {
    /// Numbers with the longest spellings, both ends of both precisions, values float32 rounds to infinity or zero,
    /// signed zeros, NaN and the infinities.
    static let extremes: [Double] = [
        0, -0.0, 1, -1, 0.1, -1.0 / 3, .pi, 1e-7, 2.5e7, 123_456_789.123_456_789, .leastNonzeroMagnitude, 2.2250738585072014e-308,
        1e300, -1e-300, .greatestFiniteMagnitude, -.greatestFiniteMagnitude, Double(Float.greatestFiniteMagnitude),
        3.4028235677973366e38, Double(Float.leastNonzeroMagnitude), 1e-46, Double(Float.leastNormalMagnitude),
        9_007_199_254_740_991, .nan, .infinity, -.infinity,
    ]
    static let integers = [0, 1, -1, 9, 10, 999_999, Int.max, Int.min, 1 << 53]

    enum Event {
        case step(StepRecord), epoch(EpochRecord), state(JobState, String?), end(JobState, String?)
    }

    static func spec(_ precision: Precision) -> JobSpec {
        let n = 5000
        let x = (0..<n).map { extremes[$0 % extremes.count] }
        let y = (0..<n).map { extremes[($0 * 7 + 3) % extremes.count] }
        return JobSpec(data: Dataset(x: x, y: y), optimizer: OptimizerSpec(name: .adam), batchSize: 4, precision: precision)
    }

    /// Steps whose every number and integer runs through the extremes, over every batch layout (values, indices,
    /// `range`, a shuffled order, indices outside the dataset) and slot-name set; epochs, states and ends between them.
    static func events() -> [Event] {
        let e = extremes, n = extremes.count
        // Indices outside the dataset take the general path (no values carried beyond 64 rows).
        var outsideOrder = Array(0..<100); outsideOrder[7] = 9_999_999_999; outsideOrder[50] = -4
        let batches: [BatchRows] = [
            BatchRows(order: nil, range: 0..<1), BatchRows(order: nil, range: 0..<4), BatchRows(order: nil, range: 0..<0),
            BatchRows(order: nil, range: 3..<67), BatchRows(order: nil, range: 100..<1125),
            BatchRows(order: Array((0..<5000).reversed()), range: 10..<74),
            BatchRows(order: outsideOrder, range: 0..<100),
        ]
        let slotNames: [[String]] = [["velocity"], ["momentum", "velocity", "velocity_hat"], [], ["accumulator"]]
        var events: [Event] = [.state(.running, nil)]
        for i in 0..<(3 * n) {
            let v = { (k: Int) in e[(i &* 5 &+ k) % n] }
            let int = { (k: Int) in integers[(i &+ k) % integers.count] }
            events.append(.step(StepRecord(
                epoch: int(0), step: int(1), iteration: int(2), batch: batches[i % batches.count],
                wBefore: v(0), bBefore: v(1), gradW: v(2), gradB: v(3), wAfter: v(4), bAfter: v(5),
                batchLoss: v(6), batchRmse: v(7), loss: v(8), rmse: v(9), valLoss: v(10), valRmse: v(11),
                slots: OptimizerSlots(names: slotNames[i % slotNames.count], kernel: (v(12), v(13), v(14)),
                                      bias: (v(15), v(16), v(17)))
            )))
            if i % 4 == 3 {
                events.append(.epoch(EpochRecord(epoch: int(3), iteration: int(4), loss: v(18), rmse: v(19),
                                                 valLoss: v(20), valRmse: v(21), w: v(22), b: v(23))))
            }
            if i % 11 == 5 { events.append(.state(i % 2 == 0 ? .paused : .running, i % 3 == 0 ? "a \"note\"\n\u{1} 名前" : nil)) }
        }
        events.append(.state(.diverged, "loss is NaN"))
        events.append(.end(.diverged, "loss is NaN"))
        return events
    }

    @Test(arguments: [Precision.float32, .float64])
    func bufferFormWritesTheArrayFormsBytes(_ precision: Precision) throws {
        let spec = Self.spec(precision)
        let job = "a \"job\" 名"
        var arrays = EventEncoder.JobEncoder(job: job, spec: spec)
        var direct = EventEncoder.JobEncoder(job: job, spec: spec)
        // A small first buffer, so lines also land in grown ones.
        var builder = EventBatchBuilder(capacity: 64)
        defer { builder.release() }
        var expected: [UInt8] = [], expectedEnds: [Int] = [], expectedKinds: [EventKind] = []
        var got: [UInt8] = [], gotEnds: [Int] = [], gotKinds: [EventKind] = []
        func collect(_ chunk: EventChunk) {
            got += Array(UnsafeRawBufferPointer(start: chunk.bytes.base, count: chunk.bytes.count))
            gotEnds += chunk.lineEnds.map { $0 + chunk.fileOffset }
            gotKinds += chunk.kinds
        }
        for (i, event) in Self.events().enumerated() {
            let seq = i + 1
            let line: [UInt8], kind: EventKind
            switch event {
            case .step(let r):
                line = arrays.step(seq: seq, record: r); kind = .step
                // A line written and dropped (the job thread's storage failure) leaves nothing behind.
                if i % 7 == 2 { direct.step(seq: seq + 1000, record: r, into: &builder); builder.dropLine() }
                direct.step(seq: seq, record: r, into: &builder)
            case .epoch(let r):
                line = arrays.epoch(seq: seq, record: r); kind = .epoch
                direct.epoch(seq: seq, record: r, into: &builder)
            case .state(let state, let message):
                line = EventEncoder.state(job: job, seq: seq, state: state, message: message); kind = .state
                builder.write(line)
            case .end(let state, let message):
                line = EventEncoder.end(job: job, seq: seq, state: state, iteration: 3, epoch: 2, w: .nan, b: -.infinity,
                                        message: message, precision: precision)
                kind = .end
                builder.write(line)
            }
            #expect(builder.pendingCount == line.count, "event \(i)")
            // The batch flushed to make room for a written line (`JobRunner.makeRoom`): the line goes to the next one.
            if i % 5 == 4, !builder.isEmpty { collect(builder.take(firstSeq: 0, fileOffset: got.count)) }
            builder.commitLine(kind: kind, iteration: 0)
            expected += line
            expectedEnds.append(expected.count)
            expectedKinds.append(kind)
        }
        collect(builder.take(firstSeq: 0, fileOffset: got.count))
        #expect(got.count == expected.count)
        if let first = (0..<min(got.count, expected.count)).first(where: { got[$0] != expected[$0] }) {
            Issue.record("bytes differ at \(first): \(String(decoding: got[max(0, first - 80)..<min(got.count, first + 80)], as: UTF8.self))")
        }
        #expect(gotEnds == expectedEnds)
        #expect(gotKinds == expectedKinds)
    }

    @Test("a one-event chunk after a large batch holds one event's bookkeeping, not the large batch's capacity")
    func chunkArraysAreExactSize() {
        var builder = EventBatchBuilder(capacity: 1024)
        defer { builder.release() }
        let line = Array(#"{"type":"step","seq":1}"#.utf8) + [0x0A]
        for i in 0..<2000 { builder.append(line, kind: .step, iteration: i) }
        let large = builder.take(firstSeq: 1, fileOffset: 0)
        #expect(large.count == 2000)
        builder.append(line, kind: .step, iteration: 2000)
        let small = builder.take(firstSeq: 2001, fileOffset: large.endOffset)
        #expect(small.count == 1)
        #expect(small.lineEnds.capacity < 8 && small.kinds.capacity < 64 && small.iterations.capacity < 8,
                "capacities \(small.lineEnds.capacity), \(small.kinds.capacity), \(small.iterations.capacity)")
        #expect(small.bytes.count == line.count)
        #expect(small.memoryBytes == line.count + 17 + EventChunk.fixedMemoryBytes)
    }
}
