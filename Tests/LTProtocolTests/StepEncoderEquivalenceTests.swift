import Testing
@testable import LTProtocol
@testable import LTEngine

/// The reference: the straightforward encoders through `JSONWriter` (`EventEncoder.generalStep`, also the fast path's
/// fallback, and `EventEncoder.epoch`), whose output the other protocol tests parse field by field. The fast
/// `EventEncoder.JobEncoder` must produce exactly their bytes.
enum ReferenceStepEncoder {
    static func step(job: String, seq: Int, record r: StepRecord, spec: JobSpec) -> [UInt8] {
        EventEncoder.generalStep(job: job, seq: seq, record: r, spec: spec)
    }
}

enum ReferenceEpochEncoder {
    static func epoch(job: String, seq: Int, record r: EpochRecord, precision: Precision) -> [UInt8] {
        EventEncoder.epoch(job: job, seq: seq, record: r, precision: precision)
    }
}

/// The fast step (and epoch) encoder against the reference, byte for byte, over every step of real Trainer runs.
@Suite struct StepEncoderEquivalenceTests {
    static let optimizers: [OptimizerSpec] = [
        OptimizerSpec(name: .sgd, learningRate: 0.01),
        OptimizerSpec(name: .sgd, learningRate: 0.01, momentum: 0.9, nesterov: true),
        OptimizerSpec(name: .rmsprop, learningRate: 0.05),
        OptimizerSpec(name: .rmsprop, learningRate: 0.05, momentum: 0.5, centered: true),
        OptimizerSpec(name: .adam, learningRate: 0.1),
        OptimizerSpec(name: .adam, learningRate: 0.1, amsgrad: true),
        OptimizerSpec(name: .adamw, learningRate: 0.1),
        OptimizerSpec(name: .adagrad, learningRate: 0.5),
    ]

    static func data(_ n: Int) -> Dataset {
        // Values with long shortest spellings, negatives, integers, tiny and large magnitudes.
        var x: [Double] = [], y: [Double] = []
        for i in 0..<n {
            let tiny: Double = i % 13 == 0 ? 1e-7 : 0
            let large: Double = i % 17 == 0 ? 2.5e7 : 0
            x.append(Double(i % 97) * 0.37 - 3 + tiny)
            y.append(Double(i % 89) * 1.3 + 0.5 - large)
        }
        return Dataset(x: x, y: y)
    }

    /// Encodes every step of the run both ways (at most `limit` steps) and returns how many steps compared equal.
    @discardableResult
    static func compare(_ spec: JobSpec, job: String = "job1", limit: Int = 400,
                        sourceLocation: SourceLocation = #_sourceLocation) throws -> Int {
        var trainer = try Trainer(spec: spec)
        var encoder = EventEncoder.JobEncoder(job: job, spec: spec)
        var seq = 1, steps = 0
        while steps < limit, let event = trainer.next() {
            seq += 1
            if case .epoch(let r) = event {
                let reference = ReferenceEpochEncoder.epoch(job: job, seq: seq, record: r, precision: spec.precision)
                #expect(encoder.epoch(seq: seq, record: r) == reference, sourceLocation: sourceLocation)
                #expect(EventEncoder.epoch(job: job, seq: seq, record: r, precision: spec.precision) == reference,
                        sourceLocation: sourceLocation)
            }
            guard case .step(let r) = event else { continue }
            steps += 1
            let reference = ReferenceStepEncoder.step(job: job, seq: seq, record: r, spec: spec)
            let fast = encoder.step(seq: seq, record: r)
            let oneShot = EventEncoder.step(job: job, seq: seq, record: r, spec: spec)
            guard fast == reference, oneShot == reference else {
                Issue.record("step \(r.iteration) differs:\nreference \(String(decoding: reference, as: UTF8.self))\nfast      \(String(decoding: fast, as: UTF8.self))",
                             sourceLocation: sourceLocation)
                return steps
            }
        }
        #expect(steps > 0, sourceLocation: sourceLocation)
        return steps
    }

    @Test(arguments: [Precision.float32, .float64])
    func everyOptimizerAndBatchSize(_ precision: Precision) throws {
        for optimizer in Self.optimizers {
            let runs: [(Int, Int, Shuffle)] = [(300, 1, .none), (30, 4, .none), (12, 4, .seeded(3)), (640, 64, .everyEpoch(seed: 5)),
                                               (650, 65, .none), (3000, 1025, .none), (2100, 1025, .seeded(9)), (7, 3, .none)]
            for (n, batch, shuffle) in runs {
                let spec = JobSpec(data: Self.data(n), validation: Self.data(n / 3 + 1),
                                   initialization: .constant(kernel: 0.5, bias: -0.25), optimizer: optimizer,
                                   epochs: 3, batchSize: batch, shuffle: shuffle, precision: precision)
                try Self.compare(spec, limit: 200)
            }
        }
    }

    /// A run that diverges and goes on: infinities and NaN in every field that can hold them.
    @Test(arguments: [Precision.float32, .float64])
    func divergingRunThatContinues(_ precision: Precision) throws {
        // Plain SGD and momentum with a huge step diverge; RMSprop and Adam with 1e30 reach huge (float64) or
        // infinite (float32) weights.
        for optimizer in [OptimizerSpec(name: .sgd, learningRate: 10), OptimizerSpec(name: .sgd, learningRate: 10, momentum: 0.9),
                          OptimizerSpec(name: .rmsprop, learningRate: 1e30), OptimizerSpec(name: .adam, learningRate: 1e30)] {
            let spec = JobSpec(data: Self.data(40), initialization: .constant(kernel: 3, bias: 1), optimizer: optimizer,
                               epochs: 60, batchSize: 4, precision: precision, onDivergence: .continue)
            var trainer = try Trainer(spec: spec)
            var sawNonFinite = false
            while let event = trainer.next() {
                if case .step(let r) = event, !r.loss.isFinite || !r.wAfter.isFinite { sawNonFinite = true; break }
            }
            if optimizer.name == .sgd { #expect(sawNonFinite, "the run should diverge") }
            try Self.compare(spec, limit: 600)
        }
    }

    /// Job names that need escaping, and the classic exercise's own spec.
    @Test func jobNamesAndClassicSpec() throws {
        let spec = try JobSpec(json: try JSONParser.parse(classicSpec()))
        for job in ["job1", "", "a \"quoted\" \\ name\n\t\u{1}", "naïve 名前 🚀"] {
            try Self.compare(spec, job: job)
        }
    }

    /// One encoder that sees records with other slot names than the job's (it re-spells its slot keys).
    @Test func slotNamesChangeUnderOneEncoder() throws {
        let spec = JobSpec(data: Self.data(12), optimizer: OptimizerSpec(name: .adam), batchSize: 4)
        var encoder = EventEncoder.JobEncoder(job: "j", spec: spec)
        for names in [["velocity"], ["momentum", "velocity", "velocity_hat"], [], ["a", "b"], ["velocity"]] {
            let r = makeStep(order: nil, range: 0..<4, slotNames: names)
            #expect(encoder.step(seq: 7, record: r) == ReferenceStepEncoder.step(job: "j", seq: 7, record: r, spec: spec))
            #expect(encoder.stepLine(seq: 7, record: r) == ReferenceStepEncoder.step(job: "j", seq: 7, record: r, spec: spec))
        }
    }

    /// Hand-made records at the edges: empty batch, boundaries of 64 and 1024 rows, negative and huge integers,
    /// and indices outside the dataset (the general path).
    @Test func edgeRecords() throws {
        let spec = JobSpec(data: Self.data(5000), optimizer: OptimizerSpec(name: .rmsprop), batchSize: 4)
        var records: [StepRecord] = []
        for range in [0..<0, 3..<67, 3..<68, 100..<1124, 100..<1125, 4998..<5000] {
            records.append(makeStep(order: nil, range: range))
        }
        let reversed = Array((0..<5000).reversed())
        records.append(makeStep(order: reversed, range: 0..<1500))
        var shifted = Array(0..<5000); shifted.swapAt(10, 11)
        records.append(makeStep(order: shifted, range: 0..<2000))
        var huge = makeStep(order: nil, range: 0..<2)
        huge.epoch = Int.max; huge.step = -1; huge.iteration = Int.min
        records.append(huge)
        records.append(makeStep(order: Array(0..<5000), range: 1..<3001))  // contiguous through an order: `range`
        // Indices outside the dataset (no values carried beyond 64 rows): the general path, same bytes.
        var outsideOrder = Array(0..<100); outsideOrder[7] = 9_999_999_999; outsideOrder[50] = -4
        var outside = makeStep(order: outsideOrder, range: 0..<100)
        outside.wAfter = -.infinity
        records.append(outside)
        var encoder = EventEncoder.JobEncoder(job: "edge", spec: spec)
        for (i, r) in records.enumerated() {
            #expect(encoder.step(seq: i, record: r) == ReferenceStepEncoder.step(job: "edge", seq: i, record: r, spec: spec), "record \(i)")
        }
    }
}

/// The benchmark's alternative spelling (the standard library's `description` copied in) writes the same bytes as
/// `ShortestDecimal`, so `LTBench codec` compares like with like.
@Suite struct NumberSpellingTests {
    @Test(arguments: [Precision.float32, .float64])
    func standardLibrarySpellingWritesTheSameBytes(_ precision: Precision) throws {
        let spec = JobSpec(data: StepEncoderEquivalenceTests.data(200), validation: StepEncoderEquivalenceTests.data(70),
                           initialization: .constant(kernel: 0.5, bias: -0.25),
                           optimizer: OptimizerSpec(name: .adam, learningRate: 0.1), epochs: 2, batchSize: 3,
                           precision: precision)
        var trainer = try Trainer(spec: spec)
        var ryu = EventEncoder.JobEncoder(job: "j", spec: spec)
        var stdlib = EventEncoder.JobEncoder(job: "j", spec: spec)
        stdlib.numberSpelling = .standardLibrary
        var compared = 0
        while let event = trainer.next() {
            switch event {
            case .step(let r): #expect(ryu.step(seq: 9, record: r) == stdlib.step(seq: 9, record: r)); compared += 1
            case .epoch(let r): #expect(ryu.epoch(seq: 9, record: r) == stdlib.epoch(seq: 9, record: r)); compared += 1
            default: break
            }
        }
        #expect(compared > 100)
    }
}
