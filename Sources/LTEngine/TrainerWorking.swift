/// `explain`'s source: the working of the step a trainer takes next, from the code that takes it (see Working.swift).

extension Trainer {
    /// The working of the step `next()` would hand out next, with at most `rowLimit` rows listed; nil when the next
    /// event is not a step.
    public func nextStepWorking(rowLimit: Int = .max) -> StepWorking? {
        if let run = float32 { return run.nextStepWorking(rowLimit: rowLimit) }
        return float64?.nextStepWorking(rowLimit: rowLimit)
    }

    /// Iteration 0: the initial weights and where they came from.
    public var initialWorking: InitialWorking {
        if let run = float32 { return run.initialWorking(start) }
        if let run = float64 { return run.initialWorking(start) }
        return InitialWorking(w: start.w, b: start.b, origin: start.origin, given: [], lines: [], slots: start.slots,
                              optimum: start.optimum, precision: .float32)
    }

    /// The working of `iteration` (0: the initial weights) of a run of `spec`, by replaying the run up to it: the
    /// engine is deterministic, so the replay takes exactly the steps the job took. Costs `iteration` steps.
    /// nil when the run finishes or diverges before that iteration.
    public static func working(spec: JobSpec, iteration: Int, rowLimit: Int = .max) throws(SpecError) -> Working? {
        var trainer = try Trainer(spec: spec)
        if iteration <= 0 { return .initial(trainer.initialWorking) }
        guard iteration <= trainer.start.totalSteps else { return nil }
        while trainer.stepsTaken < iteration - 1 {
            guard trainer.next() != nil else { return nil }
        }
        // The step may follow an epoch record.
        while true {
            if let working = trainer.nextStepWorking(rowLimit: rowLimit) { return .step(working) }
            guard trainer.next() != nil else { return nil }
        }
    }
}

extension Trainer {
    /// Optimizer steps taken so far.
    var stepsTaken: Int { float32?.iteration ?? float64?.iteration ?? 0 }
}

/// Collects the rows of a batch as `batchSums` computes them.
struct RowCollector<S: EngineScalar>: RowObserver {
    let limit: Int
    var rows: [RowWorking] = []
    mutating func observe(_ k: Int, row: Int, x: S, y: S, prediction: S, error: S, squaredError: S,
                          gradientPart: S, gradWSoFar: S) {
        guard k < limit else { return }
        rows.append(RowWorking(row: row, x: Double(x), y: Double(y), prediction: Double(prediction),
                               error: Double(error), squaredError: Double(squaredError),
                               gradientPart: Double(gradientPart), gradWSoFar: Double(gradWSoFar)))
    }
}

extension Run {
    /// The working of the step `step()` takes next, at the current state; nil unless a step comes next.
    func nextStepWorking(rowLimit: Int) -> StepWorking? {
        guard phase == .running else { return nil }
        let first = stepInEpoch * batchSize
        let count = min(batchSize, x.count - first)
        var collector = RowCollector<S>(limit: rowLimit)
        let sums = forwardPass(first: first, count: count, observer: &collector)

        var shared = WorkingRecorder<S>()
        let alpha: Traced<S> = rule.usesAdamAlpha ? rule.adamAlpha(iterations: iteration, record: &shared) : 0
        var given = shared.given
        let kernel = variableWorking(value: w, gradient: sums.gradW, slots: kernelSlots, alpha: alpha,
                                     names: ("kernel", "w", "grad_w"), given: &given)
        let bias = variableWorking(value: b, gradient: sums.gradB, slots: biasSlots, alpha: alpha,
                                   names: ("bias", "b", "grad_b"), given: &given)
        return StepWorking(epoch: epoch, step: stepInEpoch + 1, iteration: iteration + 1, stepsPerEpoch: stepsPerEpoch,
                           precision: S.precision, optimizer: rule.name, batchSize: count, rows: collector.rows,
                           scale: Double(1 / S(count)), squaredErrorSum: Double(sums.squaredErrors),
                           batchLoss: Double(sums.squaredErrors / S(count)), gradW: Double(sums.gradW),
                           gradB: Double(sums.gradB), hyperParameters: given, shared: shared.lines,
                           kernel: kernel, bias: bias)
    }

    /// One variable's update through `OptimizerRule.update` with traced values. `given` collects the
    /// hyper-parameters across both variables, in order of first use.
    private func variableWorking(value: S, gradient: S, slots: (S, S, S), alpha: Traced<S>,
                                 names: (variable: String, symbol: String, gradient: String),
                                 given: inout [NamedValue]) -> VariableWorking {
        let prefix = names.variable + "."
        func traced(_ v: S, _ index: Int) -> Traced<S> {
            Traced(v, prefix + (rule.slotName(internal: index) ?? "unused_\(index)"))
        }
        var recorder = WorkingRecorder<S>()
        recorder.given = given
        var v = Traced(value, names.symbol)
        var s = (traced(slots.0, 0), traced(slots.1, 1), traced(slots.2, 2))
        rule.update(&v, gradient: Traced(gradient, names.gradient), slots: &s, adamAlpha: alpha,
                    variable: names.symbol, slotPrefix: prefix, record: &recorder)
        given = recorder.given
        let after = (s.0.value, s.1.value, s.2.value)
        return VariableWorking(variable: names.variable, symbol: names.symbol, gradientName: names.gradient,
                               before: Double(value), gradient: Double(gradient),
                               slotsBefore: namedSlots(slots), lines: recorder.lines,
                               slotsAfter: namedSlots(after), after: Double(v.value))
    }

    /// Slots in Keras's order with Keras's names.
    private func namedSlots(_ s: (S, S, S)) -> [NamedValue] {
        let packed = rule.pack(s)
        return zip(rule.slotNames, [packed.0, packed.1, packed.2]).map { NamedValue($0, $1) }
    }

    func initialWorking(_ start: StartRecord) -> InitialWorking {
        var lines: [WorkingLine] = [], given: [NamedValue] = []
        if let limit = start.origin.limit, let u = start.origin.unitUniform {
            var recorder = WorkingRecorder<Float>()
            let unit = recorder.given("unit_uniform", Float(u))
            let minval = recorder.given("minval", -Float(limit)), maxval = recorder.given("maxval", Float(limit))
            _ = recorder.define("w", TensorFlowStatelessRandom.scaled(unitUniform: unit, minval: minval, maxval: maxval))
            lines = recorder.lines
            given = recorder.given
        }
        return InitialWorking(w: start.w, b: start.b, origin: start.origin, given: given, lines: lines, slots: start.slots,
                              optimum: start.optimum, precision: S.precision)
    }
}
