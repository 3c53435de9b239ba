import LTEngine

// JobSpec <-> JSON (docs/PROTOCOL.md, "The spec"). Decoding is strict: unknown keys, wrong types, non-finite numbers
// and out-of-range integers are SpecErrors naming the JSON path, so a typo never silently does nothing.

extension JobSpec {
    /// The initialization used when a spec has no `init`: what Keras does with no seed — its default initializers —
    /// from a seed drawn here and recorded in the resolved spec, so the run can be repeated exactly.
    public static var defaultInitialization: Initialization { .kerasDefault(seed: drawSeed()) }

    /// Keys a spec object may have, in the order `json` writes them.
    public static let jsonKeys = ["data", "validation", "init", "optimizer", "epochs", "batch_size", "shuffle",
                                  "precision", "pace_ms", "paused", "on_divergence", "validation_mode", "keras"]

    /// Largest `batch_size` accepted (a batch larger than the data is one batch of all of it, as in Keras).
    public static let maxBatchSize = 1_000_000_000

    /// Decodes and validates a spec; unknown keys, wrong types, non-finite numbers and every engine validation error
    /// become SpecError with the JSON path as `field` (e.g. "optimizer.rho", "data.x[3]", "shuffle.order[1]").
    /// A spec with no `keras` emulates `KerasVersion.current`.
    public init(json: JSONValue) throws(SpecError) {
        try self.init(decoding: json)
        // The engine's own checks: ranges of hyper-parameters, point limits, float32 range, initializers.
        try validate()
    }

    /// A resolved spec the daemon stored earlier (a job's `spec.json`). One without `keras` was stored before ltd
    /// recorded it: it keeps the behaviour it started with (`JobSpec.keras` nil), so the job restores bit for bit.
    /// It may hold more `shuffle.order` permutations than epochs (stored before that was refused).
    public init(storedJSON json: JSONValue) throws(SpecError) {
        try self.init(decoding: json, kerasWhenAbsent: nil, ordersBeyondEpochs: true)
        try validate()
    }

    /// Decoding alone: types, shapes, keys and finiteness, without the engine's checks.
    init(decoding json: JSONValue, kerasWhenAbsent: KerasVersion? = .current, ordersBeyondEpochs: Bool = false) throws(SpecError) {
        let top = try SpecReader.object(json, at: "", allowed: JobSpec.jsonKeys)
        // Precision first: float32 jobs refuse numbers float32 cannot hold.
        let precision: Precision = try SpecReader.enumeration(top["precision"], at: "precision", [Precision.float32, .float64]) ?? .float32
        let reader = SpecReader(precision: precision)

        guard let dataValue = top["data"], !dataValue.isNull else {
            throw SpecError(field: "data", value: "missing", allowed: "a spec needs data: {\"x\": [...], \"y\": [...]}")
        }
        let data = try reader.dataset(dataValue, at: "data")
        // Empty validation arrays mean "validate on the training data", like no validation at all.
        let validation = try top["validation"].nonNull.map { v throws(SpecError) in
            try reader.dataset(v, at: "validation", allowEmpty: true)
        }.flatMap { $0.x.isEmpty ? nil : $0 }
        let initialization = try top["init"].nonNull.map { v throws(SpecError) in try reader.initialization(v, at: "init") }
            ?? JobSpec.defaultInitialization
        guard let optimizerValue = top["optimizer"], !optimizerValue.isNull else {
            throw SpecError(field: "optimizer", value: "missing",
                            allowed: "a spec needs an optimizer, e.g. {\"name\": \"rmsprop\", \"learning_rate\": 0.05}")
        }
        let optimizer = try reader.optimizer(optimizerValue, at: "optimizer")
        let epochs = try SpecReader.integer(top["epochs"], at: "epochs", in: 1...SpecLimits.maxEpochs) ?? 1
        let batchSize = try SpecReader.integer(top["batch_size"], at: "batch_size", in: 1...JobSpec.maxBatchSize) ?? KerasDefaults.batchSize
        let shuffle = try top["shuffle"].nonNull.map { v throws(SpecError) in
            try SpecReader.shuffle(v, at: "shuffle", rows: data.x.count, epochs: ordersBeyondEpochs ? Int.max : epochs)
        } ?? .none
        let paceMs = try SpecReader.integer(top["pace_ms"], at: "pace_ms", in: 0...SpecLimits.maxPaceMs) ?? 0
        let paused = try SpecReader.bool(top["paused"], at: "paused") ?? false
        let onDivergence: DivergencePolicy = try SpecReader.enumeration(top["on_divergence"], at: "on_divergence", [DivergencePolicy.stop, .continue]) ?? .stop
        let validationMode: ValidationMode = try SpecReader.enumeration(top["validation_mode"], at: "validation_mode", [ValidationMode.exact, .fast]) ?? .exact
        let keras: KerasVersion? = try SpecReader.enumeration(top["keras"], at: "keras", KerasVersion.allCases) ?? kerasWhenAbsent

        self.init(data: data, validation: validation, initialization: initialization, optimizer: optimizer,
                  epochs: epochs, batchSize: batchSize, shuffle: shuffle, precision: precision, paceMs: paceMs,
                  paused: paused, onDivergence: onDivergence, validationMode: validationMode, keras: keras)
    }

    /// The resolved spec as JSON (for the start event and the job's spec file); decoding it gives back an equal spec.
    /// Numbers are written as the shortest decimal of the exact Double the spec holds.
    public var json: JSONValue {
        var members: [(key: String, value: JSONValue)] = [("data", data.json)]
        if let validation { members.append(("validation", validation.json)) }
        members.append(("init", initialization.json))
        members.append(("optimizer", optimizer.json))
        members.append(("epochs", JSONValue(epochs)))
        members.append(("batch_size", JSONValue(batchSize)))
        members.append(("shuffle", shuffle.json))
        members.append(("precision", .string(precision.rawValue)))
        members.append(("pace_ms", JSONValue(paceMs)))
        members.append(("paused", .bool(paused)))
        members.append(("on_divergence", .string(onDivergence.rawValue)))
        members.append(("validation_mode", .string(validationMode.rawValue)))
        if let keras { members.append(("keras", .string(keras.rawValue))) }
        return .object(members)
    }

    /// A seed for `shuffle: true` and unseeded initializers. Drawn below 2^31 so the same seed also works in Python
    /// (`np.random.seed` refuses seeds of 2^32 and more), letting a user replay a job in real Keras with
    /// `keras.utils.set_random_seed(seed)`.
    public static func drawSeed() -> UInt64 {
        var generator = SystemRandomNumberGenerator()
        return UInt64.random(in: 0..<(1 << 31), using: &generator)
    }
}

extension Dataset {
    public var json: JSONValue {
        .object([("x", .array(x.map { JSONValue($0) })), ("y", .array(y.map { JSONValue($0) }))])
    }
}

extension Initialization {
    public var json: JSONValue {
        switch self {
        case let .constant(kernel, bias): return .object([("kernel", JSONValue(kernel)), ("bias", JSONValue(bias))])
        case let .glorotUniform(seed):
            return .object([("initializer", .string("glorot_uniform")), ("seed", .number(String(seed)))])
        case let .kerasDefault(seed):
            return .object([("initializer", .string("keras")), ("seed", .number(String(seed)))])
        }
    }
}

extension Shuffle {
    /// `false`, `{"seed": N}` (also what `true` resolves to), `{"seed": N, "every_epoch": true}`, or `{"order": [...]}`.
    public var json: JSONValue {
        switch self {
        case .none: return .bool(false)
        case let .everyEpoch(seed): return .object([("seed", .number(String(seed))), ("every_epoch", .bool(true))])
        case let .seeded(seed): return .object([("seed", .number(String(seed)))])
        case let .order(order): return .object([("order", .array(order.map { .array($0.map { JSONValue($0) }) }))])
        }
    }
}

extension OptimizerSpec {
    /// Keys each optimizer accepts (besides `name`), in the order `json` writes them. Every optimizer takes
    /// `learning_rate` and `weight_decay`, as in Keras.
    public static func jsonKeys(for name: OptimizerName) -> [String] { KerasDefaults.parameters(name) }

    /// The parameters that are set (nil ones are left out: they mean Keras's default).
    public var json: JSONValue {
        var members: [(key: String, value: JSONValue)] = [("name", .string(name.rawValue))]
        for key in OptimizerSpec.jsonKeys(for: name) {
            switch parameter(key) {
            case .number(let v)?: members.append((key, JSONValue(v)))
            case .flag(let b)?: members.append((key, .bool(b)))
            case nil: break
            }
        }
        return .object(members)
    }

    enum Parameter: Equatable { case number(Double), flag(Bool) }

    /// A parameter by its JSON key.
    func parameter(_ key: String) -> Parameter? {
        switch key {
        case "learning_rate": return learningRate.map(Parameter.number)
        case "momentum": return momentum.map(Parameter.number)
        case "nesterov": return nesterov.map(Parameter.flag)
        case "rho": return rho.map(Parameter.number)
        case "epsilon": return epsilon.map(Parameter.number)
        case "centered": return centered.map(Parameter.flag)
        case "beta_1": return beta1.map(Parameter.number)
        case "beta_2": return beta2.map(Parameter.number)
        case "amsgrad": return amsgrad.map(Parameter.flag)
        case "weight_decay": return weightDecay.map(Parameter.number)
        case "initial_accumulator_value": return initialAccumulatorValue.map(Parameter.number)
        default: return nil
        }
    }

    static let flagKeys: Set<String> = ["nesterov", "centered", "amsgrad"]

    mutating func set(_ key: String, _ value: Parameter) {
        switch (key, value) {
        case ("learning_rate", .number(let v)): learningRate = v
        case ("momentum", .number(let v)): momentum = v
        case ("nesterov", .flag(let b)): nesterov = b
        case ("rho", .number(let v)): rho = v
        case ("epsilon", .number(let v)): epsilon = v
        case ("centered", .flag(let b)): centered = b
        case ("beta_1", .number(let v)): beta1 = v
        case ("beta_2", .number(let v)): beta2 = v
        case ("amsgrad", .flag(let b)): amsgrad = b
        case ("weight_decay", .number(let v)): weightDecay = v
        case ("initial_accumulator_value", .number(let v)): initialAccumulatorValue = v
        default: break
        }
    }

}

extension Optional where Wrapped == JSONValue {
    /// JSON null counts as absent for optional spec keys (Python clients send None).
    var nonNull: JSONValue? {
        if case .some(let v) = self, !v.isNull { return v }
        return nil
    }
}

/// Typed reads with precise SpecErrors. `path` is the JSON path of the value being read.
struct SpecReader {
    var precision: Precision

    static func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : path + "." + key }

    /// A short rendering of an offending value for messages.
    static func describe(_ v: JSONValue) -> String {
        switch v {
        case .number(let text): return text.count > 40 ? String(text.prefix(37)) + "..." : text
        case .string(let s): return "\"" + (s.count > 40 ? String(s.prefix(37)) + "..." : s) + "\""
        case .bool(let b): return b ? "true" : "false"
        default: return v.typeName
        }
    }

    static func typeError(_ v: JSONValue, at path: String, expected: String) -> SpecError {
        SpecError(field: path, value: describe(v) == v.typeName ? v.typeName : "\(v.typeName) (\(describe(v)))",
                  allowed: "\(path.isEmpty ? "the spec" : path) must be \(expected)")
    }

    /// The members of an object, refusing keys outside `allowed`.
    static func object(_ v: JSONValue, at path: String, allowed: [String]) throws(SpecError) -> [String: JSONValue] {
        guard case .object(let members) = v else { throw typeError(v, at: path, expected: "an object") }
        var result: [String: JSONValue] = [:]
        for m in members {
            guard allowed.contains(m.key) else {
                throw SpecError(field: join(path, m.key), value: "an unknown key",
                                allowed: "\(path.isEmpty ? "a spec" : path) takes only: \(allowed.joined(separator: ", "))")
            }
            if result[m.key] == nil { result[m.key] = m.value }
        }
        return result
    }

    static func bool(_ v: JSONValue?, at path: String) throws(SpecError) -> Bool? {
        guard let v = v.nonNull else { return nil }
        guard case .bool(let b) = v else { throw typeError(v, at: path, expected: "true or false") }
        return b
    }

    static func integer(_ v: JSONValue?, at path: String, in range: ClosedRange<Int>) throws(SpecError) -> Int? {
        guard let v = v.nonNull else { return nil }
        guard case .number = v else { throw typeError(v, at: path, expected: "an integer from \(range.lowerBound) to \(range.upperBound)") }
        guard let i = v.intValue, range.contains(i) else {
            throw SpecError(field: path, value: describe(v),
                            allowed: "\(path) must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return i
    }

    static func seed(_ v: JSONValue?, at path: String) throws(SpecError) -> UInt64? {
        guard let v = v.nonNull else { return nil }
        guard case .number = v, let s = v.uint64Value else {
            throw SpecError(field: path, value: describe(v),
                            allowed: "\(path) must be an integer from 0 to \(UInt64.max)")
        }
        return s
    }

    static func enumeration<E: RawRepresentable>(_ v: JSONValue?, at path: String, _ cases: [E]) throws(SpecError) -> E?
    where E.RawValue == String {
        guard let v = v.nonNull else { return nil }
        let names = cases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
        guard case .string(let s) = v else { throw typeError(v, at: path, expected: "one of \(names)") }
        guard let e = E(rawValue: s) else {
            throw SpecError(field: path, value: describe(v), allowed: "\(path) must be one of \(names)")
        }
        return e
    }

    /// A finite number that the job's precision can hold.
    func number(_ v: JSONValue, at path: String) throws(SpecError) -> Double {
        guard case .number(let text) = v, let d = Double(text) else {
            throw SpecReader.typeError(v, at: path, expected: "a finite number")
        }
        guard d.isFinite else {
            throw SpecError(field: path, value: SpecReader.describe(v),
                            allowed: "numbers must be finite (at most about 1.8e308 in magnitude)")
        }
        if precision == .float32, !Float(d).isFinite {
            throw SpecError(field: path, value: SpecReader.describe(v),
                            allowed: "a float32 job's numbers must be at most about 3.4e38 in magnitude; use \"precision\": \"float64\" for larger ones")
        }
        return d
    }

    func numbers(_ v: JSONValue, at path: String) throws(SpecError) -> [Double] {
        guard case .array(let elements) = v else { throw SpecReader.typeError(v, at: path, expected: "an array of numbers") }
        var result: [Double] = []
        result.reserveCapacity(elements.count)
        for (i, e) in elements.enumerated() { result.append(try number(e, at: "\(path)[\(i)]")) }
        return result
    }

    func dataset(_ v: JSONValue, at path: String, allowEmpty: Bool = false) throws(SpecError) -> Dataset {
        let m = try SpecReader.object(v, at: path, allowed: ["x", "y"])
        guard let xv = m["x"] else {
            throw SpecError(field: SpecReader.join(path, "x"), value: "missing", allowed: "\(path) needs x and y arrays of equal length")
        }
        guard let yv = m["y"] else {
            throw SpecError(field: SpecReader.join(path, "y"), value: "missing", allowed: "\(path) needs x and y arrays of equal length")
        }
        let x = try numbers(xv, at: SpecReader.join(path, "x"))
        let y = try numbers(yv, at: SpecReader.join(path, "y"))
        guard x.count == y.count else {
            throw SpecError(field: SpecReader.join(path, "y"), value: "\(y.count) values",
                            allowed: "\(path).x has \(x.count) values; x and y must have the same length")
        }
        guard !x.isEmpty || allowEmpty else {
            throw SpecError(field: SpecReader.join(path, "x"), value: "an empty array", allowed: "give at least one point")
        }
        return Dataset(x: x, y: y)
    }

    func initialization(_ v: JSONValue, at path: String) throws(SpecError) -> Initialization {
        guard case .object = v else {
            throw SpecReader.typeError(v, at: path, expected: "an object: {\"kernel\": K, \"bias\": B} or {\"initializer\": \"glorot_uniform\" or \"keras\", \"seed\": S}")
        }
        let kinds = ["constant", "glorot_uniform", "keras"]
        let kind: String
        switch v["initializer"].nonNull {
        case nil: kind = "constant"
        case .string(let s)? where kinds.contains(s): kind = s
        case let other?:
            throw SpecError(field: SpecReader.join(path, "initializer"), value: SpecReader.describe(other),
                            allowed: "initializer must be one of \"constant\", \"glorot_uniform\", \"keras\"")
        }
        if kind == "constant" {
            let m = try SpecReader.object(v, at: path, allowed: ["initializer", "kernel", "bias"])
            guard let k = m["kernel"].nonNull else {
                throw SpecError(field: SpecReader.join(path, "kernel"), value: "missing",
                                allowed: "a constant init needs a kernel: {\"kernel\": 0.5, \"bias\": 0}")
            }
            let kernel = try number(k, at: SpecReader.join(path, "kernel"))
            let bias = try m["bias"].nonNull.map { b throws(SpecError) in try number(b, at: SpecReader.join(path, "bias")) } ?? 0
            return .constant(kernel: kernel, bias: bias)
        }
        let m = try SpecReader.object(v, at: path, allowed: ["initializer", "seed"])
        // No seed: draw one, as for `shuffle: true`; the resolved spec records it.
        let seed = try SpecReader.seed(m["seed"], at: SpecReader.join(path, "seed")) ?? JobSpec.drawSeed()
        return kind == "keras" ? .kerasDefault(seed: seed) : .glorotUniform(seed: seed)
    }

    func optimizer(_ v: JSONValue, at path: String) throws(SpecError) -> OptimizerSpec {
        let namePath = SpecReader.join(path, "name")
        guard case .object = v else {
            throw SpecReader.typeError(v, at: path, expected: "an object such as {\"name\": \"rmsprop\", \"learning_rate\": 0.05}")
        }
        guard let name: OptimizerName = try SpecReader.enumeration(v["name"], at: namePath, OptimizerName.allCases) else {
            throw SpecError(field: namePath, value: "missing", allowed: "optimizer.name must be one of sgd, rmsprop, adam, adamw, adagrad")
        }
        let keys = OptimizerSpec.jsonKeys(for: name)
        guard case .object(let members) = v else { return OptimizerSpec(name: name) }
        var spec = OptimizerSpec(name: name)
        for m in members where m.key != "name" {
            let field = SpecReader.join(path, m.key)
            guard keys.contains(m.key) else {
                let known = ["learning_rate", "momentum", "nesterov", "rho", "epsilon", "centered", "beta_1", "beta_2",
                             "amsgrad", "weight_decay", "initial_accumulator_value"]
                throw SpecError(field: field, value: known.contains(m.key) ? "a parameter \(name.rawValue) does not have" : "an unknown key",
                                allowed: "\(name.rawValue) takes only: name, \(keys.joined(separator: ", "))")
            }
            if m.value.isNull { continue }
            if OptimizerSpec.flagKeys.contains(m.key) {
                guard let b = try SpecReader.bool(m.value, at: field) else { continue }
                spec.set(m.key, .flag(b))
            } else {
                spec.set(m.key, .number(try number(m.value, at: field)))
            }
        }
        return spec
    }

    static func shuffle(_ v: JSONValue, at path: String, rows: Int, epochs: Int) throws(SpecError) -> Shuffle {
        switch v {
        case .bool(false): return .none
        // As Keras with a seed the user did not choose: the seed is drawn here and the resolved spec records it.
        case .bool(true): return .seeded(JobSpec.drawSeed())
        case .object:
            let m = try object(v, at: path, allowed: ["seed", "every_epoch", "order"])
            if let order = m["order"].nonNull {
                if m["seed"].nonNull != nil || m["every_epoch"].nonNull != nil {
                    throw SpecError(field: join(path, "order"), value: "order with a seed",
                                    allowed: "give either {\"order\": [...]} or {\"seed\": N}, not both")
                }
                return .order(try permutations(order, at: join(path, "order"), rows: rows, epochs: epochs))
            }
            guard let seed = try self.seed(m["seed"], at: join(path, "seed")) else {
                throw SpecError(field: join(path, "seed"), value: "missing",
                                allowed: "shuffle is false, true, {\"seed\": N} or {\"order\": [[...], ...]}")
            }
            return try bool(m["every_epoch"], at: join(path, "every_epoch")) == true ? .everyEpoch(seed: seed) : .seeded(seed)
        default:
            throw typeError(v, at: path, expected: "false, true, {\"seed\": N} or {\"order\": [[...], ...]}")
        }
    }

    /// Each entry must be a permutation of 0..<rows, and there are at most `epochs` of them (one per epoch: more
    /// would be memory the job never uses).
    static func permutations(_ v: JSONValue, at path: String, rows: Int, epochs epochCount: Int) throws(SpecError) -> [[Int]] {
        guard case .array(let epochs) = v else { throw typeError(v, at: path, expected: "an array of permutations") }
        guard !epochs.isEmpty else {
            throw SpecError(field: path, value: "an empty array", allowed: "give at least one permutation of the rows 0..<\(rows)")
        }
        guard epochs.count <= epochCount else {
            throw SpecError(field: path, value: "\(epochs.count) permutations",
                            allowed: "at most one per epoch (epochs is \(epochCount)); the job would never use the rest")
        }
        var result: [[Int]] = []
        result.reserveCapacity(epochs.count)
        var seen = [Bool](repeating: false, count: rows)
        for (e, perm) in epochs.enumerated() {
            let epochPath = "\(path)[\(e)]"
            guard case .array(let elements) = perm else { throw typeError(perm, at: epochPath, expected: "an array of row indices") }
            guard elements.count == rows else {
                throw SpecError(field: epochPath, value: "\(elements.count) indices",
                                allowed: "each permutation lists every row index 0..<\(rows) exactly once")
            }
            for i in seen.indices { seen[i] = false }
            var indices: [Int] = []
            indices.reserveCapacity(rows)
            for (k, element) in elements.enumerated() {
                guard case .number = element, let i = element.intValue, i >= 0, i < rows, !seen[i] else {
                    throw SpecError(field: "\(epochPath)[\(k)]", value: describe(element),
                                    allowed: "each permutation lists every row index 0..<\(rows) exactly once")
                }
                seen[i] = true
                indices.append(i)
            }
            result.append(indices)
        }
        return result
    }
}

