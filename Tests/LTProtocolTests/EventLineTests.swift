import Testing
@testable import LTProtocol
@testable import LTEngine

/// EventLine's cheap looks against the encoders' real output, with the longest job name allowed.
@Suite struct EventLineTests {
    static func look<T>(_ line: [UInt8], _ body: (UnsafeRawBufferPointer) -> T) -> T {
        line.withUnsafeBytes(body)
    }

    @Test(arguments: ["j", String(repeating: "n", count: 64)])
    func readsTypeSeqAndIterationOfEveryEvent(_ job: String) throws {
        let spec = JobSpec(data: Dataset(x: [1, 2, 3, 4, 5], y: [2, 4, 6, 8, 10]),
                           initialization: .constant(kernel: 0.5, bias: -0.25),
                           optimizer: OptimizerSpec(name: .sgd, learningRate: 0.01), epochs: 2, batchSize: 2)
        var trainer = try Trainer(spec: spec)
        var encoder = EventEncoder.JobEncoder(job: job, spec: spec)
        let seqBase = 987_654_321_000
        var lines: [([UInt8], EventKind, Int?)] = [
            (EventEncoder.start(job: job, seq: seqBase, spec: spec, record: trainer.start), .start, nil),
            (EventEncoder.state(job: job, seq: seqBase, state: .running, message: "a \"quoted\" type"), .state, nil),
            (EventEncoder.end(job: job, seq: seqBase, state: .finished, iteration: 6, epoch: 2, w: 1, b: 0, message: nil,
                              precision: .float32), .end, nil),
        ]
        while let event = trainer.next() {
            switch event {
            case .step(let r): lines.append((encoder.step(seq: seqBase, record: r), .step, r.iteration))
            case .epoch(let r): lines.append((encoder.epoch(seq: seqBase, record: r), .epoch, nil))
            default: break
            }
        }
        #expect(lines.count > 5)
        for (line, kind, iteration) in lines {
            #expect(Self.look(line) { EventLine.kind(of: $0) } == kind)
            #expect(Self.look(line) { EventLine.seq(of: $0) } == seqBase)
            #expect(Self.look(line) { EventLine.isEnd($0) } == (kind == .end))
            if let iteration { #expect(Self.look(line) { EventLine.iteration(of: $0) } == iteration) }
        }
    }

    @Test func foreignLinesAreNotGuessed() {
        for text in [#"{"seq":3,"type":"step"}"#, "", "{", #"{"type":"step"#, #"{"type":"mystery","seq":x}"#] {
            let line = Array(text.utf8)
            #expect(Self.look(line) { EventLine.kind(of: $0) } == nil)
        }
        #expect(Self.look(Array(#"{"type":"step","seq":12"#.utf8)) { EventLine.seq(of: $0) } == 12)
        #expect(Self.look(Array(#"{"type":"step","seq":"#.utf8)) { EventLine.seq(of: $0) } == nil)
    }
}
