/// One optimizer with its hyper-parameters in the job's precision, applying Keras 3's update rules (KERAS.md §2).
///
/// Hyper-parameters are rounded from the Python-double value *after* any Python arithmetic (`1 - rho` is computed in
/// Double, then rounded). Slots live in a fixed internal layout; `pack` maps it to Keras's variable order and names.
struct OptimizerRule<S: EngineScalar>: Sendable {
    let name: OptimizerName
    let learningRate: S
    let weightDecay: S?
    let momentum: S
    let usesMomentum: Bool
    let nesterov: Bool
    let rho: S, oneMinusRho: S
    let epsilon: S
    let centered: Bool
    let beta1: S, beta2: S, oneMinusBeta1: S, oneMinusBeta2: S
    let amsgrad: Bool
    let initialAccumulator: S
    /// Keras's slot names, in Keras's variable order; created once per trainer.
    let slotNames: [String]
    /// Internal slot index (0...2) of each named slot, -1 past the end.
    let layout: (Int, Int, Int)

    init(_ spec: OptimizerSpec) {
        let r = KerasDefaults.resolved(spec)
        name = r.name
        learningRate = S.keras(r.learningRate ?? 0)
        weightDecay = r.weightDecay.map { S.keras($0) }
        let mom = r.momentum ?? 0
        momentum = S.keras(mom)
        nesterov = r.nesterov ?? false
        let rhoD = r.rho ?? KerasDefaults.rho
        rho = S.keras(rhoD); oneMinusRho = S.keras(1 - rhoD)
        epsilon = S.keras(r.epsilon ?? KerasDefaults.epsilon)
        centered = r.centered ?? false
        let b1 = r.beta1 ?? KerasDefaults.beta1, b2 = r.beta2 ?? KerasDefaults.beta2
        beta1 = S.keras(b1); beta2 = S.keras(b2); oneMinusBeta1 = S.keras(1 - b1); oneMinusBeta2 = S.keras(1 - b2)
        amsgrad = r.amsgrad ?? false
        initialAccumulator = S.keras(r.initialAccumulatorValue ?? KerasDefaults.initialAccumulatorValue)
        // Internal layout — sgd: 0 momentum; rmsprop: 0 velocity, 1 momentum, 2 average_gradient;
        // adam(w): 0 momentum (m), 1 velocity (v), 2 velocity_hat; adagrad: 0 accumulator.
        var names: [String] = [], slots: [Int] = []
        switch r.name {
        case .sgd:
            usesMomentum = mom != 0              // sgd.py builds `momentum` slots when momentum != 0
            if usesMomentum { names.append("momentum"); slots.append(0) }
        case .rmsprop:
            usesMomentum = mom > 0               // rmsprop.py: momentum > 0
            names.append("velocity"); slots.append(0)
            if usesMomentum { names.append("momentum"); slots.append(1) }
            if centered { names.append("average_gradient"); slots.append(2) }
        case .adam, .adamw:
            usesMomentum = false
            names += ["momentum", "velocity"]; slots += [0, 1]
            if amsgrad { names.append("velocity_hat"); slots.append(2) }
        case .adagrad:
            usesMomentum = false
            names.append("accumulator"); slots.append(0)
        }
        slotNames = names
        slots += Array(repeating: -1, count: 3 - slots.count)
        layout = (slots[0], slots[1], slots[2])
    }

    /// Adam and AdamW compute one bias-corrected step size per step, for both variables.
    var usesAdamAlpha: Bool { name == .adam || name == .adamw }

    /// Keras's name of internal slot `index`, nil when this optimizer does not use it.
    func slotName(internal index: Int) -> String? {
        let order = [layout.0, layout.1, layout.2]
        return order.firstIndex(of: index).flatMap { $0 < slotNames.count ? slotNames[$0] : nil }
    }

    /// Slots before the first step (zeros; Adagrad's accumulator starts at initial_accumulator_value).
    var initialSlots: (S, S, S) { name == .adagrad ? (initialAccumulator, 0, 0) : (0, 0, 0) }

    /// Adam's bias-corrected step size for the step after `iterations` steps (the same for kernel and bias).
    @inline(__always)
    func adamAlpha<R: UpdateRecorder>(iterations: Int, record r: inout R) -> R.Value where R.Value.Scalar == S {
        let t = r.given("t", S(iterations &+ 1))
        let lr = r.given("learning_rate", learningRate)
        let b1p = r.define("beta_1_power", R.Value.power(r.given("beta_1", beta1), t))
        let b2p = r.define("beta_2_power", R.Value.power(r.given("beta_2", beta2), t))
        return r.define("alpha", (lr * (1 - b2p).squareRoot()) / (1 - b1p))
    }

    /// One variable's update: weight decay first (base_optimizer.py applies it to every variable, bias included),
    /// then the optimizer's `update_step`. Written once: training runs it with plain scalars and `SilentRecorder`,
    /// `explain` with `Traced` scalars and `WorkingRecorder`; the named values are the working's lines.
    /// `variable` names the weight ("w" or "b"), `slotPrefix` its slots ("kernel." or "bias."), `gradient` its gradient.
    @inline(__always)
    func update<R: UpdateRecorder>(_ v: inout R.Value, gradient g: R.Value, slots s: inout (R.Value, R.Value, R.Value),
                                   adamAlpha alpha: R.Value, variable: String, slotPrefix: String,
                                   record r: inout R) where R.Value.Scalar == S {
        let lr = r.given("learning_rate", learningRate)
        if let decay = weightDecay {
            let wd = r.given("weight_decay", decay)
            v = r.define(variable, v - (v * wd) * lr)
        }
        switch name {
        case .sgd:
            if usesMomentum {
                let mu = r.given("momentum", momentum)
                s.0 = r.define(slotPrefix + "momentum", s.0 * mu - g * lr)
                if nesterov {
                    v = r.define(variable, v + (s.0 * mu - g * lr))
                } else {
                    v = r.define(variable, v + s.0)
                }
            } else {
                v = r.define(variable, v - g * lr)
            }
        case .rmsprop:
            let rhoV = r.given("rho", rho), oneMinusRhoV = r.given("one_minus_rho", oneMinusRho)
            let eps = r.given("epsilon", epsilon)
            s.0 = r.define(slotPrefix + "velocity", rhoV * s.0 + oneMinusRhoV * (g * g))
            let den: R.Value
            if centered {
                s.2 = r.define(slotPrefix + "average_gradient", rhoV * s.2 + oneMinusRhoV * g)
                // Grappler's re-association of (velocity - average_gradient²) + epsilon.
                den = r.define("denominator", s.0 - (s.2 * s.2 - eps))
            } else {
                den = r.define("denominator", s.0 + eps)
            }
            // Grappler's rsqrt form of (lr·g) / sqrt(denominator).
            let inc = r.define("increment", (lr * g) * (1 / den.squareRoot()))
            if usesMomentum {
                let mu = r.given("momentum", momentum)
                s.1 = r.define(slotPrefix + "momentum", mu * s.1 + inc)
                v = r.define(variable, v - s.1)
            } else {
                v = r.define(variable, v - inc)
            }
        case .adam, .adamw:
            let eps = r.given("epsilon", epsilon)
            s.0 = r.define(slotPrefix + "momentum", s.0 + (g - s.0) * r.given("one_minus_beta_1", oneMinusBeta1))
            s.1 = r.define(slotPrefix + "velocity", s.1 + (g * g - s.1) * r.given("one_minus_beta_2", oneMinusBeta2))
            var vUsed = s.1
            if amsgrad {
                s.2 = r.define(slotPrefix + "velocity_hat", R.Value.larger(s.2, s.1))
                vUsed = s.2
            }
            v = r.define(variable, v - (s.0 * alpha) / (vUsed.squareRoot() + eps))
        case .adagrad:
            let eps = r.given("epsilon", epsilon)
            s.0 = r.define(slotPrefix + "accumulator", s.0 + g * g)
            v = r.define(variable, v - (lr * g) * (1 / (s.0 + eps).squareRoot()))
        }
    }

    /// Internal slots in Keras's order, widened to Double.
    @inline(__always)
    func pack(_ s: (S, S, S)) -> (Double, Double, Double) {
        @inline(__always) func at(_ i: Int) -> Double {
            switch i { case 0: Double(s.0); case 1: Double(s.1); case 2: Double(s.2); default: 0 }
        }
        return (at(layout.0), at(layout.1), at(layout.2))
    }
}
