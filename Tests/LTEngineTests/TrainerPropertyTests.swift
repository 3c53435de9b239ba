import Foundation
import Testing
@testable import LTEngine

@Suite struct CheckpointTests {
    /// Restoring the checkpoint taken before any event yields exactly the remaining events of an uninterrupted run.
    @Test(arguments: Fixtures.variety + [Fixtures.diverging(.stop), Fixtures.diverging(.continue)])
    func restoreAtEveryPositionEqualsUninterruptedRun(spec: JobSpec) throws {
        var trainer = try Trainer(spec: spec)
        var checkpoints: [TrainerCheckpoint] = [trainer.checkpoint]
        var texts: [String] = []
        while let e = trainer.next() {
            texts.append(e.text)
            checkpoints.append(trainer.checkpoint)
        }
        #expect(trainer.isFinished)
        let encoder = JSONEncoder(), decoder = JSONDecoder()
        for (position, checkpoint) in checkpoints.enumerated() {
            let decoded = try decoder.decode(TrainerCheckpoint.self, from: encoder.encode(checkpoint))
            #expect(decoded == checkpoint)
            var resumed = try Trainer(spec: spec, resuming: decoded)
            var rest: [String] = []
            while let e = resumed.next() { rest.append(e.text) }
            #expect(rest == Array(texts[position...]), "resumed at event \(position)")
        }
    }

    @Test func checkpointOfAnotherSpecIsRefused() throws {
        let spec = Fixtures.variety[0]
        var trainer = try Trainer(spec: spec)
        _ = trainer.next()
        var other = spec
        other.optimizer.learningRate = 0.04
        #expect(throws: SpecError.self) { try Trainer(spec: other, resuming: trainer.checkpoint) }
        var broken = trainer.checkpoint
        broken.iteration += 1
        do {
            _ = try Trainer(spec: spec, resuming: broken)
            Issue.record("an inconsistent checkpoint was accepted")
        } catch {
            #expect(error.field == "checkpoint")
        }
    }
}

@Suite struct BatchingTests {
    static let shapes: [(n: Int, batch: Int, shuffle: Shuffle)] = [
        (12, 4, .none), (12, 5, .none), (12, 12, .none), (12, 100, .none), (1, 1, .none), (45, 7, .seeded(3)),
        (45, 7, .everyEpoch(seed: 3)), (33, 32, .everyEpoch(seed: 9)), (10, 3, .order([[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]])),
        (200, 64, .seeded(0)),
    ]

    @Test(arguments: 0..<shapes.count)
    func batchesPartitionEachEpoch(shape: Int) throws {
        let (n, batch, shuffle) = Self.shapes[shape]
        let spec = JobSpec(data: Fixtures.line(count: n, seed: 5), optimizer: OptimizerSpec(name: .sgd), epochs: 3,
                           batchSize: batch, shuffle: shuffle)
        var trainer = try Trainer(spec: spec)
        let stepsPerEpoch = (n + batch - 1) / batch
        #expect(trainer.start.stepsPerEpoch == stepsPerEpoch)
        #expect(trainer.start.totalSteps == 3 * stepsPerEpoch)
        var epochRows: [[Int]] = [[], [], []]
        var sizes: [[Int]] = [[], [], []]
        while let e = trainer.next() {
            guard case let .step(s) = e else { continue }
            epochRows[s.epoch - 1] += s.batch.indices
            sizes[s.epoch - 1].append(s.batch.count)
            #expect(s.iteration == (s.epoch - 1) * stepsPerEpoch + s.step)
        }
        let expectedSizes = (0..<stepsPerEpoch).map { min(batch, n - $0 * batch) }
        for e in 0..<3 {
            #expect(epochRows[e].sorted() == Array(0..<n), "epoch \(e + 1) is not a partition")
            #expect(sizes[e] == expectedSizes)
        }
        switch shuffle {
        case .none: #expect(epochRows[0] == Array(0..<n))
        case .seeded, .order: #expect(epochRows[0] == epochRows[1] && epochRows[1] == epochRows[2])
        case .everyEpoch: #expect(n < 3 || epochRows[0] != epochRows[1])
        }
    }

    @Test func shuffleOrdersAreReproducibleAndLastOrderRepeats() throws {
        func rows(_ shuffle: Shuffle) throws -> [[Int]] {
            var t = try Trainer(spec: JobSpec(data: Fixtures.line(count: 20, seed: 1), optimizer: OptimizerSpec(name: .sgd),
                                              epochs: 3, batchSize: 20, shuffle: shuffle))
            var out: [[Int]] = []
            while let e = t.next() { if case let .step(s) = e { out.append(s.batch.indices) } }
            return out
        }
        #expect(try rows(.everyEpoch(seed: 4)) == rows(.everyEpoch(seed: 4)))
        #expect(try rows(.everyEpoch(seed: 4)) != rows(.everyEpoch(seed: 5)))
        #expect(try rows(.seeded(4)) == rows(.seeded(4)))
        let a = Array(0..<20), b = Array((0..<20).reversed())
        #expect(try rows(.order([a, b])) == [a, b, b])
    }

    /// A step record shares the epoch's order array instead of copying it.
    @Test func recordsShareTheEpochOrder() throws {
        var t = try Trainer(spec: JobSpec(data: Fixtures.line(count: 20, seed: 1), optimizer: OptimizerSpec(name: .sgd),
                                          epochs: 1, batchSize: 5, shuffle: .seeded(1)))
        var addresses: Set<Int> = []
        var names: Set<Int> = []
        while let e = t.next() {
            guard case let .step(s) = e, let order = s.batch.order else { continue }
            _ = order.withUnsafeBufferPointer { addresses.insert(Int(bitPattern: $0.baseAddress)) }
            _ = s.slots.names.withUnsafeBufferPointer { names.insert(Int(bitPattern: $0.baseAddress)) }
        }
        #expect(addresses.count == 1)
        #expect(names.count <= 1)
    }
}

@Suite struct SpecValidationTests {
    static func base() -> JobSpec {
        JobSpec(data: Fixtures.classic, optimizer: OptimizerSpec(name: .rmsprop, learningRate: 0.05), epochs: 2,
                batchSize: 4)
    }

    static var invalid: [(String, (inout JobSpec) -> Void)] { [
        ("data.x", { $0.data = Dataset(x: [], y: []) }),
        ("data.y", { $0.data.y.removeLast() }),
        ("data.x[3]", { $0.data.x[3] = .nan }),
        ("data.y[2]", { $0.data.y[2] = .infinity }),
        ("data.x[0]", { $0.data.x[0] = 1e39 }),
        ("validation.y", { $0.validation = Dataset(x: [1, 2], y: [1]) }),
        ("validation.x[1]", { $0.validation = Dataset(x: [1, -.infinity], y: [1, 2]) }),
        ("init.kernel", { $0.initialization = .constant(kernel: .nan, bias: 0) }),
        ("init.seed", { $0.initialization = .glorotUniform(seed: 1 << 63) }),
        ("init.seed", { $0.initialization = .kerasDefault(seed: 1 << 32) }),
        ("optimizer.learning_rate", { $0.optimizer.learningRate = 0 }),
        ("optimizer.learning_rate", { $0.optimizer.learningRate = -0.1 }),
        ("optimizer.learning_rate", { $0.optimizer.learningRate = .infinity }),
        ("optimizer.learning_rate", { $0.optimizer.learningRate = 1e-60 }),
        ("optimizer.rho", { $0.optimizer.rho = 1 }),
        ("optimizer.rho", { $0.optimizer.rho = -0.1 }),
        ("optimizer.momentum", { $0.optimizer.momentum = 1.5 }),
        ("optimizer.epsilon", { $0.optimizer.epsilon = -1e-7 }),
        ("optimizer.epsilon", { $0.optimizer.epsilon = .nan }),
        ("optimizer.weight_decay", { $0.optimizer.weightDecay = -1 }),
        ("optimizer.nesterov", { $0.optimizer.nesterov = true }),
        ("optimizer.beta_1", { $0.optimizer.beta1 = 0.9 }),
        ("optimizer.beta_2", { $0.optimizer = OptimizerSpec(name: .adam, beta2: 1) }),
        ("optimizer.beta_1", { $0.optimizer = OptimizerSpec(name: .adamw, beta1: -0.5) }),
        ("optimizer.initial_accumulator_value", { $0.optimizer = OptimizerSpec(name: .adagrad, initialAccumulatorValue: -1) }),
        ("optimizer.rho", { $0.optimizer = OptimizerSpec(name: .adagrad, rho: 0.9) }),
        ("optimizer.momentum", { $0.optimizer = OptimizerSpec(name: .adam, momentum: 0.9) }),
        ("epochs", { $0.epochs = 0 }),
        ("epochs", { $0.epochs = 1_000_001 }),
        ("batch_size", { $0.batchSize = 0 }),
        ("batch_size", { $0.batchSize = -3 }),
        ("shuffle.order", { $0.shuffle = .order([]) }),
        ("shuffle.order[0]", { $0.shuffle = .order([[0, 1, 2]]) }),
        ("shuffle.order[1][11]", { $0.shuffle = .order([Array(0..<12), Array(0..<11) + [12]]) }),
        ("shuffle.order[0][11]", { $0.shuffle = .order([Array(0..<11) + [3]]) }),
        ("pace_ms", { $0.paceMs = -1 }),
        ("pace_ms", { $0.paceMs = 60_001 }),
    ] }

    @Test func baseSpecIsValid() throws {
        try Self.base().validate()
    }

    @Test(arguments: 0..<37)
    func invalidSpecNamesTheFieldAndNeverStarts(index: Int) {
        let (field, mutate) = Self.invalid[index]
        var spec = Self.base()
        mutate(&spec)
        do {
            try spec.validate()
            Issue.record("\(field): validate() accepted the spec")
        } catch {
            #expect(error.field == field, "\(error)")
            #expect(!error.allowed.isEmpty)
        }
        do {
            _ = try Trainer(spec: spec)
            Issue.record("\(field): a Trainer was created")
        } catch {
            #expect(error.field == field)
        }
    }

    @Test func edgeValuesAreAccepted() throws {
        var spec = Self.base()
        spec.batchSize = 1000                    // larger than N: one batch of 12
        spec.optimizer.rho = 0
        spec.optimizer.epsilon = 0
        spec.paceMs = 60_000
        spec.validation = Dataset(x: [], y: [])  // empty validation: validate on the training data
        var t = try Trainer(spec: spec)
        #expect(t.start.stepsPerEpoch == 1)
        if case let .step(s) = t.next() { #expect(s.batch.count == 12) } else { Issue.record("no step") }
    }

    @Test func defaultsAreKeras() {
        let sgd = KerasDefaults.resolved(OptimizerSpec(name: .sgd))
        #expect(sgd.learningRate == 0.01 && sgd.momentum == 0 && sgd.nesterov == false && sgd.weightDecay == nil)
        let adamw = KerasDefaults.resolved(OptimizerSpec(name: .adamw))
        #expect(adamw.learningRate == 0.001 && adamw.weightDecay == 0.004 && adamw.beta1 == 0.9 && adamw.beta2 == 0.999)
        let adagrad = KerasDefaults.resolved(OptimizerSpec(name: .adagrad))
        #expect(adagrad.initialAccumulatorValue == 0.1 && adagrad.epsilon == 1e-7 && adagrad.rho == nil)
        let rms = KerasDefaults.resolved(OptimizerSpec(name: .rmsprop, rho: 0.5))
        #expect(rms.rho == 0.5 && rms.momentum == 0 && rms.centered == false && rms.epsilon == 1e-7)
    }
}

@Suite struct DivergenceTests {
    @Test func stopRecordsTheNonFiniteStepThenEnds() throws {
        var t = try Trainer(spec: Fixtures.diverging(.stop))
        let all = events(of: &t)
        guard case let .diverged(iteration, message)? = all.last else {
            Issue.record("did not end as diverged"); return
        }
        let steps = all.compactMap { if case let .step(s) = $0 { s } else { nil } }
        let last = try #require(steps.last)
        #expect(!last.loss.isFinite)
        #expect(steps.dropLast().allSatisfy { $0.loss.isFinite })
        #expect(last.iteration == iteration)
        #expect(message.contains("iteration \(iteration)") && message.contains("learning_rate")
                && message.contains("12"))
        #expect(t.next() == nil && t.isFinished)
        #expect(all.filter { if case .diverged = $0 { true } else { false } }.count == 1)
    }

    @Test func continueRunsThroughInfinityToNaNLikePlainFit() throws {
        var t = try Trainer(spec: Fixtures.diverging(.continue))
        let all = events(of: &t)
        let steps = all.compactMap { if case let .step(s) = $0 { s } else { nil } }
        #expect(steps.count == 20 * 3)
        #expect(steps.contains { $0.loss == .infinity })
        #expect(steps.contains { $0.wAfter.isInfinite })
        #expect(try #require(steps.last).wAfter.isNaN)
        let firstInf = try #require(steps.firstIndex { !$0.loss.isFinite })
        let firstNaN = try #require(steps.firstIndex { $0.loss.isNaN })
        #expect(firstInf < firstNaN)
        guard case .finished? = all.last else { Issue.record("did not finish"); return }
    }
}

@Suite struct StartRecordTests {
    @Test func optimumIsTheLeastSquaresLine() throws {
        let x = (0..<50).map { Double($0) / 10 }
        let t = try Trainer(spec: JobSpec(data: Dataset(x: x, y: x.map { 3 * $0 - 2 }),
                                          optimizer: OptimizerSpec(name: .sgd), epochs: 4, batchSize: 16))
        let optimum = try #require(t.start.optimum)
        #expect(abs(optimum.w - 3) < 1e-6 && abs(optimum.b + 2) < 1e-6 && optimum.mse < 1e-10)
        #expect(t.start.stepsPerEpoch == 4 && t.start.totalSteps == 16)
        #expect(t.start.w == 0 && t.start.b == 0 && t.start.origin.initializer == "constant")
    }

    @Test func noOptimumWithoutSpreadInX() throws {
        let t = try Trainer(spec: JobSpec(data: Dataset(x: [2, 2, 2], y: [1, 2, 3]), optimizer: OptimizerSpec(name: .sgd)))
        #expect(t.start.optimum == nil)
    }

    @Test func initialSlotsAreNamedAsKeras() throws {
        func slots(_ o: OptimizerSpec) throws -> OptimizerSlots {
            try Trainer(spec: JobSpec(data: Fixtures.classic, optimizer: o)).start.slots
        }
        #expect(try slots(OptimizerSpec(name: .sgd)).names == [])
        #expect(try slots(OptimizerSpec(name: .sgd, momentum: 0.9)).names == ["momentum"])
        #expect(try slots(OptimizerSpec(name: .rmsprop, momentum: 0.5, centered: true)).names
                == ["velocity", "momentum", "average_gradient"])
        #expect(try slots(OptimizerSpec(name: .rmsprop, centered: true)).names == ["velocity", "average_gradient"])
        #expect(try slots(OptimizerSpec(name: .adam, amsgrad: true)).names == ["momentum", "velocity", "velocity_hat"])
        let adagrad = try slots(OptimizerSpec(name: .adagrad))
        #expect(adagrad.names == ["accumulator"] && adagrad.kernel.0 == Double(Float(0.1)) && adagrad.bias.0 == Double(Float(0.1)))
    }
}

@Suite struct EveryEpochShuffleTests {
    /// The every-epoch shuffle moves the rows themselves (`Run.arrange`); it must train exactly as replaying the same
    /// permutations of indices (`Permutation.shuffled`, read through the order) does, in both precisions.
    @Test(arguments: [Precision.float32, .float64])
    func shuffledRowsTrainAsTheirOrder(precision: Precision) throws {
        let data = Fixtures.line(count: 300, seed: 21, range: 10, noise: 2)
        let seed: UInt64 = 77
        let orders = (1...3).map { Permutation.shuffled(count: 300, seed: Permutation.epochSeed(seed, epoch: $0)) }
        func events(_ shuffle: Shuffle) throws -> [TrainerEvent] {
            var t = try Trainer(spec: JobSpec(data: data, optimizer: OptimizerSpec(name: .adam, learningRate: 0.05),
                                              epochs: 3, batchSize: 7, shuffle: shuffle, precision: precision))
            var all: [TrainerEvent] = []
            while let e = t.next() { all.append(e) }
            return all
        }
        let moved = try events(.everyEpoch(seed: seed)), replayed = try events(.order(orders))
        #expect(moved.count == 3 * 43 + 3 + 1)
        #expect(moved.map(\.text) == replayed.map(\.text))
    }
}
