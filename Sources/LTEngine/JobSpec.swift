/// What to train and how: the value the daemon receives (as JSON, decoded by LTProtocol) and the engine validates.
///
/// Every number is carried as a Double exactly as the user wrote it; the trainer rounds to the job's precision
/// (float32 rounds x, y and hyper-parameters from double, as Keras does).
public struct JobSpec: Sendable, Equatable, Codable {
    public var data: Dataset
    /// nil: validate on the training data, as the classic exercise does.
    public var validation: Dataset?
    public var initialization: Initialization
    public var optimizer: OptimizerSpec
    public var epochs: Int
    public var batchSize: Int
    public var shuffle: Shuffle
    public var precision: Precision
    /// Sleep between steps, so a person can watch. Honoured by the daemon, not the engine.
    public var paceMs: Int
    /// Start paused, to walk the job step by step. Honoured by the daemon.
    public var paused: Bool
    public var onDivergence: DivergencePolicy
    public var validationMode: ValidationMode
    /// The Keras whose behaviour the job reproduces where versions differ (today: the seeded shuffle).
    /// nil: a job stored before ltd recorded it; its seeded shuffle is ltd's own (`Shuffle.seeded`).
    public var keras: KerasVersion?

    public init(data: Dataset, validation: Dataset? = nil, initialization: Initialization = .constant(kernel: 0, bias: 0),
                optimizer: OptimizerSpec, epochs: Int = 1, batchSize: Int = 32, shuffle: Shuffle = .none,
                precision: Precision = .float32, paceMs: Int = 0, paused: Bool = false,
                onDivergence: DivergencePolicy = .stop, validationMode: ValidationMode = .exact,
                keras: KerasVersion? = .current) {
        self.data = data; self.validation = validation; self.initialization = initialization
        self.optimizer = optimizer; self.epochs = epochs; self.batchSize = batchSize; self.shuffle = shuffle
        self.precision = precision; self.paceMs = paceMs; self.paused = paused
        self.onDivergence = onDivergence; self.validationMode = validationMode; self.keras = keras
    }
}

public struct Dataset: Sendable, Equatable, Codable {
    public var x: [Double]
    public var y: [Double]
    public init(x: [Double], y: [Double]) { self.x = x; self.y = y }
}

/// Where the initial kernel and bias come from.
public enum Initialization: Sendable, Equatable, Codable {
    case constant(kernel: Double, bias: Double)
    /// `keras.initializers.GlorotUniform(seed:)` on the (1,1) kernel; bias 0.
    case glorotUniform(seed: UInt64)
    /// A fresh `Sequential([Dense(1)])` after `keras.utils.set_random_seed(seed)`.
    case kerasDefault(seed: UInt64)
}

public enum OptimizerName: String, Sendable, Equatable, Codable, CaseIterable {
    case sgd, rmsprop, adam, adamw, adagrad
}

/// An optimizer and its hyper-parameters. nil means "Keras's default for this optimizer".
public struct OptimizerSpec: Sendable, Equatable, Codable {
    public var name: OptimizerName
    public var learningRate: Double?
    public var momentum: Double?
    public var nesterov: Bool?
    public var rho: Double?
    public var epsilon: Double?
    public var centered: Bool?
    public var beta1: Double?
    public var beta2: Double?
    public var amsgrad: Bool?
    public var weightDecay: Double?
    public var initialAccumulatorValue: Double?

    public init(name: OptimizerName, learningRate: Double? = nil, momentum: Double? = nil, nesterov: Bool? = nil,
                rho: Double? = nil, epsilon: Double? = nil, centered: Bool? = nil, beta1: Double? = nil,
                beta2: Double? = nil, amsgrad: Bool? = nil, weightDecay: Double? = nil,
                initialAccumulatorValue: Double? = nil) {
        self.name = name; self.learningRate = learningRate; self.momentum = momentum; self.nesterov = nesterov
        self.rho = rho; self.epsilon = epsilon; self.centered = centered; self.beta1 = beta1; self.beta2 = beta2
        self.amsgrad = amsgrad; self.weightDecay = weightDecay; self.initialAccumulatorValue = initialAccumulatorValue
    }
}

/// Versions of Keras whose version-dependent behaviour ltd reproduces (docs/SHUFFLE.md, "Versions").
public enum KerasVersion: String, Sendable, Equatable, Codable, CaseIterable {
    /// Keras 3.15.1 on TensorFlow 2.21.0.
    case v3_15_1 = "3.15.1"
    /// What new jobs emulate.
    public static let current = KerasVersion.v3_15_1
}

public enum Shuffle: Sendable, Equatable, Codable {
    /// Keras `shuffle=False`: dataset order every epoch.
    case none
    /// Keras `shuffle=True` after `keras.utils.set_random_seed(seed)`: one permutation, repeated every epoch. With
    /// `JobSpec.keras` set it is Keras's own permutation (`KerasShuffle`); in a job stored without it, ltd's own
    /// SplitMix64 permutation, as such jobs started.
    case seeded(UInt64)
    /// ltd's own SplitMix64 permutation, a new one every epoch (not Keras's: unseeded Keras draws orders nobody can
    /// repeat). Jobs stored before `true` meant `seeded` carry it.
    case everyEpoch(seed: UInt64)
    /// Replay recorded permutations; the last one repeats when there are fewer than epochs.
    case order([[Int]])
}

public enum Precision: String, Sendable, Equatable, Codable { case float32, float64 }

public enum DivergencePolicy: String, Sendable, Equatable, Codable {
    /// Like Keras's `TerminateOnNaN`: record the step whose running loss is not finite, then end as diverged.
    case stop
    /// Like plain `fit`: run on through inf and NaN.
    case `continue`
}

public enum ValidationMode: String, Sendable, Equatable, Codable {
    /// What `model.evaluate(val_x, val_y, batch_size: B)` returns, bit for bit; O(validation size) per step.
    case exact
    /// Sufficient statistics of the validation set; O(1) per step, within a documented error of `exact`.
    case fast
}

/// A precise complaint about one field of a spec: `field` is its JSON path (`optimizer.rho`).
public struct SpecError: Error, Sendable, Equatable, CustomStringConvertible {
    public var field: String
    public var value: String
    public var allowed: String
    public init(field: String, value: String, allowed: String) {
        self.field = field; self.value = value; self.allowed = allowed
    }
    public var description: String { "\(field): \(value) is not allowed; \(allowed)" }
}
