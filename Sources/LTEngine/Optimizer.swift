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

    /// Slots before the first step (zeros; Adagrad's accumulator starts at initial_accumulator_value).
    var initialSlots: (S, S, S) { name == .adagrad ? (initialAccumulator, 0, 0) : (0, 0, 0) }

    /// Adam's bias-corrected step size for the step after `iterations` steps (the same for kernel and bias).
    @inline(__always)
    func adamAlpha(iterations: Int) -> S {
        let t = S(iterations &+ 1)
        let b1p = S.kerasPow(beta1, t), b2p = S.kerasPow(beta2, t)
        return (learningRate * (1 - b2p).squareRoot()) / (1 - b1p)
    }

    /// One variable's update: weight decay first (base_optimizer.py applies it to every variable, bias included),
    /// then the optimizer's `update_step`.
    @inline(__always)
    func update(_ v: inout S, gradient g: S, slots s: inout (S, S, S), adamAlpha alpha: S) {
        let lr = learningRate
        if let wd = weightDecay { v = v - (v * wd) * lr }
        switch name {
        case .sgd:
            if usesMomentum {
                s.0 = s.0 * momentum - g * lr
                if nesterov { v = v + (s.0 * momentum - g * lr) } else { v = v + s.0 }
            } else {
                v = v - g * lr
            }
        case .rmsprop:
            s.0 = rho * s.0 + oneMinusRho * (g * g)
            let den: S
            if centered {
                s.2 = rho * s.2 + oneMinusRho * g
                den = s.0 - (s.2 * s.2 - epsilon)        // Grappler's re-association of (v - a²) + eps
            } else {
                den = s.0 + epsilon
            }
            let inc = (lr * g) * (1 / den.squareRoot())  // Grappler's rsqrt form of (lr·g)/sqrt(den)
            if usesMomentum {
                s.1 = momentum * s.1 + inc
                v = v - s.1
            } else {
                v = v - inc
            }
        case .adam, .adamw:
            s.0 = s.0 + (g - s.0) * oneMinusBeta1
            s.1 = s.1 + (g * g - s.1) * oneMinusBeta2
            var vUsed = s.1
            if amsgrad {
                s.2 = s.2 < s.1 ? s.1 : s.2
                vUsed = s.2
            }
            v = v - (s.0 * alpha) / (vUsed.squareRoot() + epsilon)
        case .adagrad:
            s.0 = s.0 + g * g
            v = v - (lr * g) * (1 / (s.0 + epsilon).squareRoot())
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
