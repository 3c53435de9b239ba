import Foundation

/// The arithmetic of one optimizer update for one variable, redone here in the job's precision so `explain` can show
/// every intermediate value. Follows KERAS.md §2 (operation order included), but it is illustrative: the daemon's
/// numbers are the truth and are always shown next to these.
protocol ExplainFloat: BinaryFloatingPoint, LosslessStringConvertible {
    init(_ value: Double)
    var double: Double { get }
    static func power(_ base: Self, _ exponent: Self) -> Self
}

extension Float: ExplainFloat {
    var double: Double { Double(self) }
    /// TF's float32 Pow: the double pow rounded to float32 (KERAS.md §2, Adam).
    static func power(_ base: Float, _ exponent: Float) -> Float { Float(pow(Double(base), Double(exponent))) }
}

extension Double: ExplainFloat {
    var double: Double { self }
    static func power(_ base: Double, _ exponent: Double) -> Double { pow(base, exponent) }
}

struct UpdateWorking {
    /// Lines like "velocity = rho·velocity + (1-rho)·g² = 0.9×0 + 0.1×2171.56 = 217.156".
    var lines: [String] = []
    var after: Double = 0
}

struct OptimizerMath<T: ExplainFloat> {
    /// The start event's optimizer object: name and every hyper-parameter (Keras's defaults filled in).
    let optimizer: [String: Double]
    let flags: [String: Bool]
    let name: String

    private func hp(_ key: String, _ fallback: Double) -> T { T(optimizer[key] ?? fallback) }
    /// `1 - p` computed in double, then rounded (KERAS.md §0).
    private func oneMinus(_ key: String, _ fallback: Double) -> T { T(1 - (optimizer[key] ?? fallback)) }

    /// An operand: negative values in parentheses, so "w − (−0.15)" reads right.
    private func s(_ v: T) -> String { v < 0 ? "(\(v.description))" : v.description }
    /// A result.
    private func r(_ v: T) -> String { v.description }

    /// Updates variable `label` (value `value`, gradient `grad`) at iteration `t` (steps already taken), with its slots before.
    func update(label: String, value: Double, grad: Double, t: Int, slots: [String: Double]) -> UpdateWorking {
        var out = UpdateWorking()
        var w = T(value)
        let g = T(grad)
        let lr = hp("learning_rate", 0.001)
        if let wd = optimizer["weight_decay"], wd != 0 {
            let decay = T(wd)
            let before = w
            w = w - (w * decay) * lr
            out.lines.append("weight decay: \(label) = \(label) − (\(label)·weight_decay)·lr = \(s(before)) − (\(s(before))×\(s(decay)))×\(s(lr)) = \(r(w))")
        }
        switch name {
        case "sgd":
            let mom = hp("momentum", 0)
            if mom == 0 {
                let nw = w - g * lr
                out.lines.append("\(label) = \(label) − g·lr = \(s(w)) − \(s(g))×\(s(lr)) = \(r(nw))")
                w = nw
            } else {
                let m0 = T(slots["momentum"] ?? 0)
                let m = m0 * mom - g * lr
                out.lines.append("momentum = momentum·μ − g·lr = \(s(m0))×\(s(mom)) − \(s(g))×\(s(lr)) = \(r(m))")
                if flags["nesterov"] == true {
                    let nw = w + (m * mom - g * lr)
                    out.lines.append("\(label) = \(label) + (momentum·μ − g·lr) = \(s(w)) + (\(s(m))×\(s(mom)) − \(s(g))×\(s(lr))) = \(s(nw))  (Nesterov)")
                    w = nw
                } else {
                    let nw = w + m
                    out.lines.append("\(label) = \(label) + momentum = \(s(w)) + \(s(m)) = \(r(nw))")
                    w = nw
                }
            }
        case "rmsprop":
            let rho = hp("rho", 0.9), oneMinusRho = oneMinus("rho", 0.9), eps = hp("epsilon", 1e-7)
            let v0 = T(slots["velocity"] ?? 0)
            let v = rho * v0 + oneMinusRho * (g * g)
            out.lines.append("velocity = ρ·velocity + (1−ρ)·g² = \(s(rho))×\(s(v0)) + \(s(oneMinusRho))×\(s(g))² = \(r(v))")
            var den = v + eps
            if flags["centered"] == true {
                let a0 = T(slots["average_gradient"] ?? 0)
                let a = rho * a0 + oneMinusRho * g
                out.lines.append("average_gradient = ρ·average_gradient + (1−ρ)·g = \(s(rho))×\(s(a0)) + \(s(oneMinusRho))×\(s(g)) = \(r(a))")
                den = v - (a * a - eps)
                out.lines.append("denominator = velocity − average_gradient² + ε = \(r(den))")
            } else {
                out.lines.append("denominator = velocity + ε = \(s(v)) + \(s(eps)) = \(r(den))")
            }
            let root = den.squareRoot()
            let inc = (lr * g) * (1 / root)
            out.lines.append("increment = lr·g / √denominator = \(s(lr))×\(s(g)) / \(s(root)) = \(r(inc))")
            let mom = hp("momentum", 0)
            if mom > 0 {
                let mo0 = T(slots["momentum"] ?? 0)
                let mo = mom * mo0 + inc
                out.lines.append("momentum = μ·momentum + increment = \(s(mom))×\(s(mo0)) + \(s(inc)) = \(r(mo))")
                let nw = w - mo
                out.lines.append("\(label) = \(label) − momentum = \(s(w)) − \(s(mo)) = \(r(nw))")
                w = nw
            } else {
                let nw = w - inc
                out.lines.append("\(label) = \(label) − increment = \(s(w)) − \(s(inc)) = \(r(nw))")
                w = nw
            }
        case "adam", "adamw":
            let b1 = hp("beta_1", 0.9), b2 = hp("beta_2", 0.999), eps = hp("epsilon", 1e-7)
            let step = T(Double(t + 1))
            let b1p = T.power(b1, step), b2p = T.power(b2, step)
            let alpha = (lr * (1 - b2p).squareRoot()) / (1 - b1p)
            out.lines.append("t = \(t + 1); α = lr·√(1−β₂ᵗ)/(1−β₁ᵗ) = \(s(lr))×√(1−\(s(b2p)))/(1−\(s(b1p))) = \(r(alpha))")
            let m0 = T(slots["m"] ?? 0), v0 = T(slots["v"] ?? 0)
            let m = m0 + (g - m0) * oneMinus("beta_1", 0.9)
            let v = v0 + (g * g - v0) * oneMinus("beta_2", 0.999)
            out.lines.append("m = m + (g − m)·(1−β₁) = \(s(m0)) + (\(s(g)) − \(s(m0)))×\(s(oneMinus("beta_1", 0.9))) = \(r(m))")
            out.lines.append("v = v + (g² − v)·(1−β₂) = \(s(v0)) + (\(s(g * g)) − \(s(v0)))×\(s(oneMinus("beta_2", 0.999))) = \(r(v))")
            var vUsed = v
            if flags["amsgrad"] == true {
                let vhat0 = T(slots["vhat"] ?? 0)
                vUsed = Swift.max(vhat0, v)
                out.lines.append("vhat = max(vhat, v) = max(\(s(vhat0)), \(s(v))) = \(r(vUsed))")
            }
            let nw = w - (m * alpha) / (vUsed.squareRoot() + eps)
            out.lines.append("\(label) = \(label) − m·α / (√v + ε) = \(s(w)) − \(s(m))×\(s(alpha)) / (\(s(vUsed.squareRoot())) + \(s(eps))) = \(r(nw))")
            w = nw
        case "adagrad":
            let eps = hp("epsilon", 1e-7)
            let acc0 = T(slots["accumulator"] ?? optimizer["initial_accumulator_value"] ?? 0.1)
            let acc = acc0 + g * g
            out.lines.append("accumulator = accumulator + g² = \(s(acc0)) + \(s(g))² = \(r(acc))")
            let root = (acc + eps).squareRoot()
            let nw = w - (lr * g) * (1 / root)
            out.lines.append("\(label) = \(label) − lr·g / √(accumulator + ε) = \(s(w)) − \(s(lr))×\(s(g)) / \(s(root)) = \(r(nw))")
            w = nw
        default:
            out.lines.append("(no worked formula for optimizer \(name))")
        }
        out.after = w.double
        return out
    }
}
