/// What the trainer hands out. Values are the exact numbers of the job's precision, widened to Double
/// (a float32 job's values are exactly representable), so the wire can print the shortest float32 decimal.

/// The rows of one batch, without copying them: positions `range` of the epoch's row order.
public struct BatchRows: Sendable, Equatable {
    /// The epoch's row order; nil means dataset order (no shuffle).
    public let order: [Int]?
    public let range: Range<Int>
    public init(order: [Int]?, range: Range<Int>) { self.order = order; self.range = range }
    public var count: Int { range.count }
    /// Dataset index of the k-th row of this batch.
    public subscript(k: Int) -> Int { order.map { $0[range.lowerBound + k] } ?? (range.lowerBound + k) }
    public var indices: [Int] { (0..<count).map { self[$0] } }
}

/// Up to three optimizer slots, inline so a step record allocates nothing.
/// Names are Keras 3's variable names (`momentum`, `velocity`, `average_gradient`, `velocity_hat`, `accumulator`).
public struct OptimizerSlots: Sendable, Equatable {
    public var names: [String]          // shared, one array per optimizer; never reallocated per step
    public var kernel: (Double, Double, Double)
    public var bias: (Double, Double, Double)
    public init(names: [String], kernel: (Double, Double, Double) = (0, 0, 0), bias: (Double, Double, Double) = (0, 0, 0)) {
        self.names = names; self.kernel = kernel; self.bias = bias
    }
    public static func == (a: Self, b: Self) -> Bool {
        a.names == b.names && a.kernel == b.kernel && a.bias == b.bias
    }
}

public struct StepRecord: Sendable, Equatable {
    public var epoch: Int          // 1-based
    public var step: Int           // 1-based within the epoch
    public var iteration: Int      // 1-based over the run (Keras's optimizer.iterations after the step)
    public var batch: BatchRows
    public var wBefore: Double, bBefore: Double
    public var gradW: Double, gradB: Double
    public var wAfter: Double, bAfter: Double
    /// This batch alone, before the update (Keras's per-batch loss value).
    public var batchLoss: Double
    /// √batch_loss in the job's precision: this batch's own RMSE, before the update (what `compare` sets against
    /// Keras's running RMSE).
    public var batchRmse: Double
    /// Keras's running logs for the epoch so far, measured before each update.
    public var loss: Double, rmse: Double
    /// `evaluate(val_x, val_y, batch_size: B)` at the weights after the update.
    public var valLoss: Double, valRmse: Double
    /// Optimizer state after the step.
    public var slots: OptimizerSlots
}

/// Keras's history row.
public struct EpochRecord: Sendable, Equatable {
    public var epoch: Int
    public var iteration: Int
    public var loss: Double, rmse: Double, valLoss: Double, valRmse: Double
    public var w: Double, b: Double
}

/// Where a run starts, and the best it could reach.
public struct StartRecord: Sendable, Equatable {
    public var w: Double, b: Double
    public var stepsPerEpoch: Int
    public var totalSteps: Int
    /// Closed-form least squares on the training data (normal equations, float64). nil when x has no spread.
    public var optimum: Optimum?
    /// How the initial weights were chosen, in Keras's terms (issue 8 fills the seeded cases).
    public var origin: InitialWeightsOrigin
    public var slots: OptimizerSlots   // initial optimizer state (zeros, or Adagrad's initial accumulator)
}

public struct Optimum: Sendable, Equatable { public var w: Double, b: Double, mse: Double }

public struct InitialWeightsOrigin: Sendable, Equatable {
    public var initializer: String          // "constant", "glorot_uniform", "keras_default"
    public var seed: UInt64?                // the seed given by the user or picked by the daemon
    public var initializerSeed: UInt64?     // the int seed GlorotUniform got (Keras default: Python's randint)
    public var limit: Double?               // ±limit of the uniform draw (√3 for a (1,1) kernel)
    public var unitUniform: Double?         // the raw U[0,1) float32 before scaling
    public init(initializer: String, seed: UInt64? = nil, initializerSeed: UInt64? = nil, limit: Double? = nil, unitUniform: Double? = nil) {
        self.initializer = initializer; self.seed = seed; self.initializerSeed = initializerSeed
        self.limit = limit; self.unitUniform = unitUniform
    }
}

public enum TrainerEvent: Sendable, Equatable {
    case step(StepRecord)
    case epoch(EpochRecord)
    /// The step just recorded had a non-finite running loss and the policy is `.stop`. No more events follow.
    case diverged(iteration: Int, message: String)
    /// All epochs done. No more events follow.
    case finished(w: Double, b: Double)
}
