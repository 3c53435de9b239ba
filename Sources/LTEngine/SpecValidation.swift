/// Limits that keep a job's memory and time bounded; a spec beyond them is refused, never truncated.
public enum SpecLimits {
    public static let maxEpochs = 1_000_000
    public static let maxPoints = 10_000_000
    public static let maxPaceMs = 60_000
}

extension JobSpec {
    /// Checks every field and throws the first problem, naming the field by its JSON path
    /// (`data.x[3]`, `optimizer.rho`, `batch_size`, `shuffle.order[1]`).
    public func validate() throws(SpecError) {
        try Self.check(data, path: "data", precision: precision)
        if let validation, !(validation.x.isEmpty && validation.y.isEmpty) {
            try Self.check(validation, path: "validation", precision: precision)
        }
        if case let .constant(kernel, bias) = initialization {
            try Self.checkScalar(kernel, "init.kernel", precision: precision)
            try Self.checkScalar(bias, "init.bias", precision: precision)
        }
        _ = try resolveInitialWeights(initialization)
        try Self.check(optimizer, precision: precision)
        if epochs < 1 || epochs > SpecLimits.maxEpochs {
            throw SpecError(field: "epochs", value: "\(epochs)", allowed: "an integer from 1 to \(SpecLimits.maxEpochs)")
        }
        if batchSize < 1 {
            throw SpecError(field: "batch_size", value: "\(batchSize)",
                            allowed: "an integer ≥ 1 (larger than the data means one batch of all points)")
        }
        if case let .order(orders) = shuffle { try Self.check(orders, count: data.x.count) }
        if case let .seeded(seed) = shuffle, keras != nil, !KerasShuffle.seeds.contains(seed) {
            throw SpecError(field: "shuffle.seed", value: "\(seed)",
                            allowed: "an integer from 0 to \(KerasShuffle.seeds.upperBound): Keras's set_random_seed takes no other (numpy's np.random.seed refuses them)")
        }
        if paceMs < 0 || paceMs > SpecLimits.maxPaceMs {
            throw SpecError(field: "pace_ms", value: "\(paceMs)", allowed: "0 to \(SpecLimits.maxPaceMs) milliseconds")
        }
    }

    static func check(_ set: Dataset, path: String, precision: Precision) throws(SpecError) {
        if set.x.isEmpty {
            throw SpecError(field: "\(path).x", value: "[]", allowed: "at least one point")
        }
        if set.x.count > SpecLimits.maxPoints {
            throw SpecError(field: "\(path).x", value: "\(set.x.count) points",
                            allowed: "at most \(SpecLimits.maxPoints) points")
        }
        if set.y.count != set.x.count {
            throw SpecError(field: "\(path).y", value: "\(set.y.count) values",
                            allowed: "as many values as \(path).x (\(set.x.count))")
        }
        // Name the field only for the offending value: building 10M field names would dominate a large job's setup.
        if let i = set.x.firstIndex(where: { !Float($0).isFinite }) {
            try checkScalar(set.x[i], "\(path).x[\(i)]", precision: precision)
        }
        if let i = set.y.firstIndex(where: { !Float($0).isFinite }) {
            try checkScalar(set.y[i], "\(path).y[\(i)]", precision: precision)
        }
    }

    /// Finite as float32: Keras (and so both precisions) holds every input as float32.
    static func checkScalar(_ v: Double, _ field: String, precision: Precision) throws(SpecError) {
        if !v.isFinite {
            throw SpecError(field: field, value: "\(v)", allowed: "a finite number")
        }
        if !Float(v).isFinite {
            throw SpecError(field: field, value: "\(v)",
                            allowed: "a number within float32 range (magnitude ≤ \(Float.greatestFiniteMagnitude))")
        }
    }

    static func check(_ o: OptimizerSpec, precision: Precision) throws(SpecError) {
        let accepted = KerasDefaults.parameters(o.name)
        let given: [(String, Bool)] = [
            ("learning_rate", o.learningRate != nil), ("momentum", o.momentum != nil), ("nesterov", o.nesterov != nil),
            ("rho", o.rho != nil), ("epsilon", o.epsilon != nil), ("centered", o.centered != nil),
            ("beta_1", o.beta1 != nil), ("beta_2", o.beta2 != nil), ("amsgrad", o.amsgrad != nil),
            ("weight_decay", o.weightDecay != nil), ("initial_accumulator_value", o.initialAccumulatorValue != nil),
        ]
        for (field, isGiven) in given where isGiven && !accepted.contains(field) {
            throw SpecError(field: "optimizer.\(field)", value: "given for \(o.name.rawValue)",
                            allowed: "\(o.name.rawValue) takes \(accepted.joined(separator: ", "))")
        }
        if let lr = o.learningRate {
            let rounded = Double(Float(lr))
            if !(lr.isFinite && lr > 0 && rounded > 0 && rounded.isFinite) {
                throw SpecError(field: "optimizer.learning_rate", value: "\(lr)",
                                allowed: "a finite number > 0 (and > 0 once rounded to float32)")
            }
        }
        try unitInterval(o.momentum, "optimizer.momentum")
        try unitInterval(o.rho, "optimizer.rho")
        try unitInterval(o.beta1, "optimizer.beta_1")
        try unitInterval(o.beta2, "optimizer.beta_2")
        try nonNegative(o.epsilon, "optimizer.epsilon")
        try nonNegative(o.weightDecay, "optimizer.weight_decay")
        try nonNegative(o.initialAccumulatorValue, "optimizer.initial_accumulator_value")
    }

    static func unitInterval(_ v: Double?, _ field: String) throws(SpecError) {
        guard let v else { return }
        if !(v >= 0 && v < 1) { throw SpecError(field: field, value: "\(v)", allowed: "a number in [0, 1)") }
    }

    static func nonNegative(_ v: Double?, _ field: String) throws(SpecError) {
        guard let v else { return }
        if !(v >= 0 && v.isFinite) { throw SpecError(field: field, value: "\(v)", allowed: "a finite number ≥ 0") }
    }

    /// Every order must be a permutation of 0..<n.
    static func check(_ orders: [[Int]], count n: Int) throws(SpecError) {
        if orders.isEmpty {
            throw SpecError(field: "shuffle.order", value: "[]", allowed: "at least one permutation of 0..<\(n)")
        }
        var seen = [Bool](repeating: false, count: n)
        for (e, order) in orders.enumerated() {
            let field = "shuffle.order[\(e)]"
            if order.count != n {
                throw SpecError(field: field, value: "\(order.count) indices", allowed: "a permutation of 0..<\(n)")
            }
            for i in seen.indices { seen[i] = false }
            for (k, index) in order.enumerated() {
                if index < 0 || index >= n {
                    throw SpecError(field: "\(field)[\(k)]", value: "\(index)", allowed: "an index in 0..<\(n)")
                }
                if seen[index] {
                    throw SpecError(field: "\(field)[\(k)]", value: "\(index) (repeated)",
                                    allowed: "each index of 0..<\(n) exactly once")
                }
                seen[index] = true
            }
        }
    }
}
