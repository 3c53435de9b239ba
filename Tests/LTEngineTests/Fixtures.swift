import LTEngine

/// Small deterministic datasets and specs for the property tests.
enum Fixtures {
    /// The classic exercise: x = 1...12.
    static let classic = Dataset(x: (1...12).map(Double.init),
                                 y: [5.0, 8.8, 9.6, 14.2, 18.8, 19.5, 21.4, 26.8, 28.9, 32.0, 33.8, 38.2])

    /// y ≈ slope·x + intercept with deterministic noise, x spread over ±range.
    static func line(count n: Int, seed: UInt64, slope: Double = 3, intercept: Double = -2, range: Double = 2,
                     noise: Double = 0.5) -> Dataset {
        var state = seed
        func unit() -> Double {        // SplitMix64 → [0, 1)
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Double((z ^ (z >> 31)) >> 11) / Double(1 << 53)
        }
        var x: [Double] = [], y: [Double] = []
        for _ in 0..<n {
            let xi = (unit() * 2 - 1) * range
            x.append(xi)
            y.append(slope * xi + intercept + (unit() * 2 - 1) * noise)
        }
        return Dataset(x: x, y: y)
    }

    /// One spec per optimizer variant, with partial batches and shuffles, for properties that must hold for all.
    static var variety: [JobSpec] {
        let data = line(count: 45, seed: 1)
        let validation = line(count: 20, seed: 2)
        let optimizers: [OptimizerSpec] = [
            OptimizerSpec(name: .sgd, learningRate: 0.05),
            OptimizerSpec(name: .sgd, learningRate: 0.02, momentum: 0.9),
            OptimizerSpec(name: .sgd, learningRate: 0.02, momentum: 0.9, nesterov: true, weightDecay: 0.01),
            OptimizerSpec(name: .rmsprop, learningRate: 0.01),
            OptimizerSpec(name: .rmsprop, learningRate: 0.01, momentum: 0.5, epsilon: 1e-3, centered: true),
            OptimizerSpec(name: .adam, learningRate: 0.05),
            OptimizerSpec(name: .adam, learningRate: 0.05, amsgrad: true),
            OptimizerSpec(name: .adamw, learningRate: 0.05),
            OptimizerSpec(name: .adagrad, learningRate: 0.5),
        ]
        let shuffles: [Shuffle] = [.none, .seeded(7), .everyEpoch(seed: 11), .order([Array((0..<45).reversed())])]
        var specs: [JobSpec] = []
        for (i, o) in optimizers.enumerated() {
            specs.append(JobSpec(data: data, validation: i % 2 == 0 ? nil : validation,
                                 initialization: .constant(kernel: 0.5, bias: 0.1), optimizer: o, epochs: 3,
                                 batchSize: [7, 8, 45, 1, 32][i % 5], shuffle: shuffles[i % shuffles.count],
                                 precision: i == 4 ? .float64 : .float32,
                                 validationMode: i == 6 ? .fast : .exact))
        }
        // Full batch on the training data: validation reuses the next step's forward pass.
        specs.append(JobSpec(data: data, optimizer: OptimizerSpec(name: .rmsprop, learningRate: 0.1), epochs: 4,
                             batchSize: 64))
        return specs
    }

    /// Plain SGD far too fast for x up to 12: overflows to inf, then NaN (KERAS.md §7).
    static func diverging(_ policy: DivergencePolicy) -> JobSpec {
        JobSpec(data: classic, initialization: .constant(kernel: 0.5, bias: 0),
                optimizer: OptimizerSpec(name: .sgd, learningRate: 0.5), epochs: 20, batchSize: 4,
                onDivergence: policy)
    }
}

extension TrainerEvent {
    /// A canonical text with every number in shortest round-trip form: equal text ⇔ equal bits (NaN = NaN).
    var text: String { "\(self)" }
}
