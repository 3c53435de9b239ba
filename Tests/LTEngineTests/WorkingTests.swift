import Testing
@testable import LTEngine

/// `explain`'s working is the truth: at every step, its final w and b (and slots, gradients, loss) are the trainer's
/// update bit for bit, and each line's formula, recomputed by the small calculator below, gives the line's value.
@Suite struct WorkingTests {
    /// Every golden Keras run: the working's w and b after each step are ltd's and Keras's.
    @Test(arguments: GoldenCase.names)
    func goldenWorkingsAreTheUpdate(name: String) throws {
        let golden = try GoldenCase.load(name)
        let steps = try checkEveryStep(golden.spec)
        try #require(steps.count == golden.steps.count)
        for (working, g) in zip(steps, golden.steps) {
            #expect(sameFloat32(working.kernel.after, g.wAfter) && sameFloat32(working.bias.after, g.bAfter),
                    "\(name) step \(g.globalStep): working w \(working.kernel.after), b \(working.bias.after) vs Keras \(g.wAfter), \(g.bAfter)")
        }
    }

    /// The options the golden runs lack (and the ones they have, with weight decay), in both precisions.
    static let options: [(String, OptimizerSpec)] = [
        ("sgd", OptimizerSpec(name: .sgd, learningRate: 0.01)),
        ("sgd momentum", OptimizerSpec(name: .sgd, learningRate: 0.01, momentum: 0.9)),
        ("sgd nesterov", OptimizerSpec(name: .sgd, learningRate: 0.01, momentum: 0.9, nesterov: true)),
        ("rmsprop", OptimizerSpec(name: .rmsprop, learningRate: 0.05)),
        ("rmsprop centered", OptimizerSpec(name: .rmsprop, learningRate: 0.05, centered: true)),
        ("rmsprop momentum", OptimizerSpec(name: .rmsprop, learningRate: 0.05, momentum: 0.8)),
        ("rmsprop centered momentum", OptimizerSpec(name: .rmsprop, learningRate: 0.05, momentum: 0.8, centered: true)),
        ("adam", OptimizerSpec(name: .adam, learningRate: 0.1)),
        ("adam amsgrad", OptimizerSpec(name: .adam, learningRate: 0.1, amsgrad: true)),
        ("adamw", OptimizerSpec(name: .adamw, learningRate: 0.1)),
        ("adamw amsgrad", OptimizerSpec(name: .adamw, learningRate: 0.1, amsgrad: true)),
        ("adagrad", OptimizerSpec(name: .adagrad, learningRate: 0.5)),
    ]

    static var optionSpecs: [(String, JobSpec)] {
        var specs: [(String, JobSpec)] = []
        for (label, optimizer) in options {
            for decay in [nil, 0.05] {
                var o = optimizer
                if let decay { o.weightDecay = decay }
                for precision in [Precision.float32, .float64] {
                    // Batch 5 of 12 rows: a partial last batch every epoch; shuffled so rows differ between epochs.
                    let spec = JobSpec(data: Fixtures.classic, initialization: .constant(kernel: 0.5, bias: 0),
                                       optimizer: o, epochs: 4, batchSize: 5, shuffle: .everyEpoch(seed: 3),
                                       precision: precision)
                    specs.append(("\(label)\(decay.map { " weight_decay \($0)" } ?? "") \(precision.rawValue)", spec))
                }
            }
        }
        return specs
    }

    @Test(arguments: optionSpecs.map(\.0))
    func everyOptionsWorkingIsTheUpdate(label: String) throws {
        let spec = try #require(Self.optionSpecs.first { $0.0 == label }?.1)
        let steps = try checkEveryStep(spec)
        #expect(steps.count == 12)
        if spec.optimizer.weightDecay != nil || spec.optimizer.name == .adamw {
            #expect(steps.allSatisfy { $0.kernel.lines.first?.formula == "w - w * weight_decay * learning_rate" })
        }
    }

    /// `Trainer.working(spec:iteration:)` replays the run: the same working as the trainer's own at that step.
    @Test func replayGivesTheStepsWorking() throws {
        let spec = try #require(Self.optionSpecs.first { $0.0 == "adam float32" }?.1)
        var trainer = try Trainer(spec: spec)
        var byIteration: [Int: StepWorking] = [:]
        while true {
            if let w = trainer.nextStepWorking() { byIteration[w.iteration] = w }
            guard trainer.next() != nil else { break }
        }
        for iteration in [1, 3, 6, 12] {
            #expect(try Trainer.working(spec: spec, iteration: iteration) == .step(try #require(byIteration[iteration])))
        }
        #expect(try Trainer.working(spec: spec, iteration: 13) == nil)
        guard case .initial(let initial) = try Trainer.working(spec: spec, iteration: 0) else {
            Issue.record("iteration 0 is not the initial working"); return
        }
        #expect(initial.w == 0.5 && initial.b == 0 && initial.lines.isEmpty)
    }

    /// Adam's working uses the slots as they are before the step (the bug of issue 13: it started from zero).
    @Test func adamStartsFromTheSlotsBefore() throws {
        let spec = try #require(Self.optionSpecs.first { $0.0 == "adam float32" }?.1)
        guard case .step(let third) = try Trainer.working(spec: spec, iteration: 3),
              case .step(let second) = try Trainer.working(spec: spec, iteration: 2) else {
            Issue.record("no working"); return
        }
        #expect(third.kernel.slotsBefore.map(\.value) == second.kernel.slotsAfter.map(\.value))
        #expect(third.kernel.slotsBefore.map(\.name) == ["momentum", "velocity"])
        #expect(third.kernel.slotsBefore.allSatisfy { $0.value != 0 })
        #expect(third.shared.map(\.name) == ["beta_1_power", "beta_2_power", "alpha"])
        #expect(third.hyperParameters.first { $0.name == "t" }?.value == 3)
    }

    /// Keras's seeded draw: the initial working's formula gives the start's w.
    @Test func glorotInitialWorking() throws {
        let spec = JobSpec(data: Fixtures.classic, initialization: .glorotUniform(seed: 7),
                           optimizer: OptimizerSpec(name: .sgd))
        guard case .initial(let initial) = try Trainer.working(spec: spec, iteration: 0) else {
            Issue.record("no initial working"); return
        }
        let line = try #require(initial.lines.last)
        #expect(line.name == "w" && line.value == initial.w)
        #expect(line.formula == "unit_uniform * (maxval - minval) + minval")
        var env: [String: Float] = [:]
        env["unit_uniform"] = Float(try #require(initial.origin.unitUniform))
        env["minval"] = -Float(try #require(initial.origin.limit))
        env["maxval"] = Float(try #require(initial.origin.limit))
        #expect(Double(try Calculator<Float>.evaluate(line.formula, env)) == initial.w)
    }

    /// Runs `spec` to the end; before each step takes the working, then checks the step against it. Returns them.
    private func checkEveryStep(_ spec: JobSpec) throws -> [StepWorking] {
        var trainer = try Trainer(spec: spec)
        var workings: [StepWorking] = []
        var pending: StepWorking?
        while true {
            if pending == nil { pending = trainer.nextStepWorking() }
            guard let event = trainer.next() else { break }
            guard case .step(let s) = event else {
                #expect(pending == nil, "a working was offered before a non-step event")
                continue
            }
            let w = try #require(pending, "no working before step \(s.iteration)")
            pending = nil
            workings.append(w)
            let where_ = "iteration \(s.iteration)"
            #expect(w.iteration == s.iteration && w.epoch == s.epoch && w.step == s.step, "\(where_): position")
            #expect(w.rows.map(\.row) == s.batch.indices, "\(where_): rows")
            let bits: [(String, Double, Double)] = [
                ("w before", w.kernel.before, s.wBefore), ("b before", w.bias.before, s.bBefore),
                ("grad_w", w.gradW, s.gradW), ("grad_b", w.gradB, s.gradB), ("batch loss", w.batchLoss, s.batchLoss),
                ("w after", w.kernel.after, s.wAfter), ("b after", w.bias.after, s.bAfter),
                ("last row's grad_w", w.rows.last?.gradWSoFar ?? .nan, s.gradW),
            ]
            for (what, mine, truth) in bits where mine.bitPattern != truth.bitPattern {
                Issue.record("\(where_): working \(what) \(mine) vs ltd \(truth)")
            }
            let packed = { (v: (Double, Double, Double)) in [v.0, v.1, v.2].prefix(s.slots.names.count).map(\.bitPattern) }
            #expect(w.kernel.slotsAfter.map(\.value.bitPattern) == packed(s.slots.kernel), "\(where_): kernel slots")
            #expect(w.bias.slotsAfter.map(\.value.bitPattern) == packed(s.slots.bias), "\(where_): bias slots")
            #expect(w.kernel.slotsAfter.map(\.name) == s.slots.names)
            // The formulas are true: recomputed line by line, in the job's precision, they give each value.
            switch spec.precision {
            case .float32: try recompute(w, Float.self)
            case .float64: try recompute(w, Double.self)
            }
        }
        return workings
    }

    private func recompute<T: CalculatorScalar>(_ working: StepWorking, _: T.Type) throws {
        var shared: [String: T] = [:]
        for h in working.hyperParameters { shared[h.name] = T(h.value) }
        for line in working.shared { try check(line, &shared) }
        for v in [working.kernel, working.bias] {
            var env = shared
            env[v.symbol] = T(v.before)
            env[v.gradientName] = T(v.gradient)
            for slot in v.slotsBefore { env[v.variable + "." + slot.name] = T(slot.value) }
            for line in v.lines { try check(line, &env) }
            let last = env[v.symbol].map { Double($0) }
            #expect(v.lines.last?.name == v.symbol && last == v.after)
        }
    }

    private func check<T: CalculatorScalar>(_ line: WorkingLine, _ env: inout [String: T]) throws {
        let value = Double(try Calculator<T>.evaluate(line.formula, env))
        let same = value.bitPattern == line.value.bitPattern
        #expect(same, "\(line.name) = \(line.formula): \(value) vs \(line.value)")
        env[line.name] = T(line.value)
        // Each listed operation, redone: its operands give its result, and the last result is the line's value.
        for o in line.operations {
            let a = T(o.operands.first ?? .nan), b = T(o.operands.count > 1 ? o.operands[1] : .nan)
            let redone: T
            switch o.operator {
            case "+": redone = a + b
            case "-": redone = a - b
            case "*": redone = a * b
            case "/": redone = a / b
            case "sqrt": redone = a.squareRoot()
            case "pow": redone = T.pow(a, b)
            case "max": redone = a < b ? b : a
            default: Issue.record("unknown operator \(o.operator)"); continue
            }
            let same = Double(redone).bitPattern == o.value.bitPattern
            #expect(same, "\(line.name): \(o.operator) \(o.operands) = \(o.value), redone \(Double(redone))")
        }
        let lastIsValue = line.operations.last.map { $0.value.bitPattern == line.value.bitPattern } ?? true
        #expect(lastIsValue, "\(line.name): the last operation is not the line's value")
    }
}

protocol CalculatorScalar: BinaryFloatingPoint { static func pow(_ a: Self, _ b: Self) -> Self }
extension Float: CalculatorScalar { static func pow(_ a: Float, _ b: Float) -> Float { kerasPow(a, b) } }
extension Double: CalculatorScalar { static func pow(_ a: Double, _ b: Double) -> Double { kerasPow(a, b) } }

/// A calculator for working formulas, written apart from `Traced`: numbers, names, + - * / left to right with the
/// usual precedence, parentheses, sqrt, pow, max. Every operation rounds to T.
struct Calculator<T: CalculatorScalar> {
    struct Failure: Error, CustomStringConvertible { var description: String }
    private let tokens: [String]
    private let env: [String: T]
    private var at = 0

    private init(_ formula: String, _ env: [String: T]) {
        var tokens: [String] = [], current = ""
        for c in formula {
            if c.isLetter || c.isNumber || c == "_" || c == "." {
                current.append(c)
            } else {
                if !current.isEmpty { tokens.append(current); current = "" }
                if c != " " { tokens.append(String(c)) }
            }
        }
        if !current.isEmpty { tokens.append(current) }
        self.tokens = tokens; self.env = env
    }

    static func evaluate(_ formula: String, _ env: [String: T]) throws -> T {
        var calculator = Calculator(formula, env)
        return try calculator.value()
    }

    private mutating func value() throws -> T {
        let v = try sum()
        guard at == tokens.count else { throw Failure(description: "trailing \(tokens[at...])") }
        return v
    }

    private mutating func next() -> String? { at < tokens.count ? tokens[at] : nil }

    private mutating func sum() throws -> T {
        var v = try product()
        while let op = next(), op == "+" || op == "-" {
            at += 1
            let r = try product()
            v = op == "+" ? v + r : v - r
        }
        return v
    }

    private mutating func product() throws -> T {
        var v = try atom()
        while let op = next(), op == "*" || op == "/" {
            at += 1
            let r = try atom()
            v = op == "*" ? v * r : v / r
        }
        return v
    }

    private mutating func expect(_ token: String) throws {
        guard next() == token else { throw Failure(description: "expected \(token) at \(at) in \(tokens)") }
        at += 1
    }

    private mutating func atom() throws -> T {
        guard let token = next() else { throw Failure(description: "unexpected end of \(tokens)") }
        at += 1
        if token == "(" {
            let v = try sum()
            try expect(")")
            return v
        }
        if ["sqrt", "pow", "max"].contains(token) {
            try expect("(")
            let a = try sum()
            var b: T = 0
            if token != "sqrt" { try expect(","); b = try sum() }
            try expect(")")
            switch token {
            case "sqrt": return a.squareRoot()
            case "pow": return T.pow(a, b)
            default: return a < b ? b : a
            }
        }
        if let d = Double(token) { return T(d) }
        guard let v = env[token] else { throw Failure(description: "unknown name \(token)") }
        return v
    }
}
