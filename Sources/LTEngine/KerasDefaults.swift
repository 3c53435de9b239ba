/// Keras 3's constructor defaults for each optimizer (KERAS.md §2), so a client can show the values a job runs with.
public enum KerasDefaults {
    /// `model.compile`'s default optimizer.
    public static let optimizer = OptimizerName.rmsprop
    /// `model.fit`'s default batch size.
    public static let batchSize = 32
    public static func learningRate(_ name: OptimizerName) -> Double { name == .sgd ? 0.01 : 0.001 }
    public static let momentum = 0.0
    public static let nesterov = false
    public static let rho = 0.9
    public static let epsilon = 1e-7
    public static let centered = false
    public static let beta1 = 0.9
    public static let beta2 = 0.999
    public static let amsgrad = false
    /// Only AdamW has a default weight decay; for the others nil means "no decay".
    public static func weightDecay(_ name: OptimizerName) -> Double? { name == .adamw ? 0.004 : nil }
    public static let initialAccumulatorValue = 0.1

    /// The parameters each optimizer accepts, as JSON names (besides `name`).
    public static func parameters(_ name: OptimizerName) -> [String] {
        switch name {
        case .sgd: ["learning_rate", "momentum", "nesterov", "weight_decay"]
        case .rmsprop: ["learning_rate", "rho", "momentum", "epsilon", "centered", "weight_decay"]
        case .adam, .adamw: ["learning_rate", "beta_1", "beta_2", "epsilon", "amsgrad", "weight_decay"]
        case .adagrad: ["learning_rate", "initial_accumulator_value", "epsilon", "weight_decay"]
        }
    }

    /// `spec` with every parameter its optimizer accepts filled in with Keras's default where absent.
    /// Parameters the optimizer does not take stay nil; `weightDecay` stays nil for "no decay".
    public static func resolved(_ spec: OptimizerSpec) -> OptimizerSpec {
        var r = OptimizerSpec(name: spec.name)
        r.learningRate = spec.learningRate ?? learningRate(spec.name)
        r.weightDecay = spec.weightDecay ?? weightDecay(spec.name)
        switch spec.name {
        case .sgd:
            r.momentum = spec.momentum ?? momentum
            r.nesterov = spec.nesterov ?? nesterov
        case .rmsprop:
            r.rho = spec.rho ?? rho
            r.momentum = spec.momentum ?? momentum
            r.epsilon = spec.epsilon ?? epsilon
            r.centered = spec.centered ?? centered
        case .adam, .adamw:
            r.beta1 = spec.beta1 ?? beta1
            r.beta2 = spec.beta2 ?? beta2
            r.epsilon = spec.epsilon ?? epsilon
            r.amsgrad = spec.amsgrad ?? amsgrad
        case .adagrad:
            r.initialAccumulatorValue = spec.initialAccumulatorValue ?? initialAccumulatorValue
            r.epsilon = spec.epsilon ?? epsilon
        }
        return r
    }
}
