/// Trains y = w·x + b exactly as Keras 3 `model.fit` trains `Sequential([Dense(1)])` with MSE loss and an RMSE metric,
/// handing out one event at a time: `.step` per optimizer step, `.epoch` after each epoch's last step, then exactly one
/// `.finished` or `.diverged`, then nil.
public struct Trainer: Sendable {
    // Exactly one is non-nil. Optional chaining mutates the run in place, so a step copies no arrays.
    var float32: Run<Float>?
    var float64: Run<Double>?
    public let start: StartRecord

    /// Validates the spec (throws the first `SpecError`) and prepares the run.
    public init(spec: JobSpec) throws(SpecError) {
        try spec.validate()
        let initial = try resolveInitialWeights(spec.initialization)
        let fingerprint = SpecFingerprint(spec).value
        switch spec.precision {
        case .float32:
            let run = Run<Float>(spec: spec, kernel: initial.kernel, bias: initial.bias, fingerprint: fingerprint)
            start = run.startRecord(origin: initial.origin)
            float32 = run
        case .float64:
            let run = Run<Double>(spec: spec, kernel: initial.kernel, bias: initial.bias, fingerprint: fingerprint)
            start = run.startRecord(origin: initial.origin)
            float64 = run
        }
    }

    /// Continues a run from a checkpoint of a Trainer with the same spec; the events that follow are bit-identical
    /// to those the original trainer would have handed out. Throws a `SpecError` on field `checkpoint` when the
    /// checkpoint belongs to another spec or is inconsistent.
    public init(spec: JobSpec, resuming checkpoint: TrainerCheckpoint) throws(SpecError) {
        try self.init(spec: spec)
        try float32?.restore(checkpoint, spec: spec)
        try float64?.restore(checkpoint, spec: spec)
    }

    /// The whole state; see `TrainerCheckpoint`.
    public var checkpoint: TrainerCheckpoint {
        if let run = float32 { return run.checkpoint }
        if let run = float64 { return run.checkpoint }
        return TrainerCheckpoint(specFingerprint: 0, precision: .float32, epoch: 0, stepInEpoch: 0, iteration: 0,
                                 phase: .done, weights: [], kernelSlots: [], biasSlots: [], metrics: [],
                                 lastValidation: [], divergenceMessage: nil)
    }

    /// True once `.finished` or `.diverged` has been handed out.
    public var isFinished: Bool {
        (float32?.phase ?? float64?.phase ?? .done) == .done
    }

    /// The next event, or nil after the final one.
    public mutating func next() -> TrainerEvent? {
        if float32 != nil { return float32?.next() ?? nil }
        return float64?.next() ?? nil
    }
}

/// A training row in the epoch's feed order, with its dataset row.
struct FedRow<S: EngineScalar>: Sendable {
    var x: S, y: S
    var index: Int
}

/// The run in one precision. `S` = Float is Keras-exact float32; `S` = Double is the float64 study mode.
struct Run<S: EngineScalar>: Sendable {
    typealias Phase = TrainerCheckpoint.Phase

    // The job, fixed for the run.
    let x: [S], y: [S]
    let validationX: [S], validationY: [S]
    /// Sufficient statistics of the validation set, for `.fast` only.
    let statistics: ValidationStatistics?
    let optimum: Optimum?
    let rule: OptimizerRule<S>
    let shuffle: Shuffle
    let keras: KerasVersion?
    /// Training batch size, at most N.
    let batchSize: Int
    /// The batch size as given: `evaluate` splits the validation set with it (it may exceed the training N).
    let requestedBatchSize: Int
    let stepsPerEpoch: Int
    let epochs: Int
    let stopOnDivergence: Bool
    let fingerprint: UInt64
    let maxAbsX: Double
    /// Full batches in dataset order, validated on the training data with the same batch size: then `evaluate` at
    /// the weights after step k is exactly the forward pass of step k+1 (same rows, order and lanes), so one pass
    /// serves both and exact validation costs nothing extra.
    let validationIsNextForwardPass: Bool
    let initialKernel: S, initialBias: S
    /// `evaluate`'s batch size (the requested one, at most the validation set's size) and its running count after the
    /// last batch: Σ f32(batch sizes) in float32, the same every step, so computed once.
    let validationBatch: Int
    let validationCount: S

    // The state.
    var order: [Int]?
    var w: S, b: S
    var kernelSlots: (S, S, S), biasSlots: (S, S, S)
    var epoch = 1
    var stepInEpoch = 0
    var iteration = 0
    var lossTotal: S = 0, lossCount: S = 0, squaresTotal: S = 0, squaresCount: S = 0
    var lastValLoss: S = 0, lastValRmse: S = 0
    var phase: Phase = .running
    var divergenceMessage: String?
    /// The next step's batch sums at the current weights, when `validationIsNextForwardPass` computed them already.
    /// Not part of the checkpoint: a restored run recomputes them, bit for bit.
    var lookahead: BatchSums<S>?
    /// The epoch's rows in feed order when shuffled (`arrange`). Derived from the order, not part of the checkpoint.
    var fed: [FedRow<S>] = []
    /// Where y sits in a `FedRow` (bytes; -1 if the layout were not known) and a row's size in scalars.
    let fedYOffset = MemoryLayout<FedRow<S>>.offset(of: \FedRow<S>.y) ?? -1
    let fedStride = MemoryLayout<FedRow<S>>.stride / MemoryLayout<S>.stride

    /// `spec` must be valid.
    init(spec: JobSpec, kernel: Double, bias: Double, fingerprint: UInt64) {
        x = spec.data.x.map { S.keras($0) }
        y = spec.data.y.map { S.keras($0) }
        let trainingStatistics = ValidationStatistics(x: x, y: y)
        optimum = trainingStatistics.optimum
        if let v = spec.validation, !v.x.isEmpty {
            validationX = v.x.map { S.keras($0) }
            validationY = v.y.map { S.keras($0) }
            statistics = spec.validationMode == .fast ? ValidationStatistics(x: validationX, y: validationY) : nil
        } else {
            validationX = x                 // shares storage: no copy
            validationY = y
            statistics = spec.validationMode == .fast ? trainingStatistics : nil
        }
        rule = OptimizerRule<S>(spec.optimizer)
        shuffle = spec.shuffle
        keras = spec.keras
        let n = x.count
        batchSize = min(spec.batchSize, n)
        requestedBatchSize = spec.batchSize
        stepsPerEpoch = n / batchSize + (n % batchSize == 0 ? 0 : 1)
        epochs = spec.epochs
        stopOnDivergence = spec.onDivergence == .stop
        self.fingerprint = fingerprint
        maxAbsX = x.reduce(0) { max($0, abs(Double($1))) }
        initialKernel = S.keras(kernel); initialBias = S.keras(bias)
        w = initialKernel; b = initialBias
        kernelSlots = rule.initialSlots; biasSlots = rule.initialSlots
        validationBatch = max(1, min(spec.batchSize, validationX.count))
        var count: S = 0
        var first = 0
        while first < validationX.count {
            let size = min(validationBatch, validationX.count - first)
            count = count + S(size)
            first += size
        }
        validationCount = count
        let sharesTrainingData = spec.validation.map { $0.x.isEmpty } ?? true
        validationIsNextForwardPass = sharesTrainingData && statistics == nil && spec.batchSize >= n
            && { if case .none = spec.shuffle { true } else { false } }()
        arrange(epoch: 1)
    }

    func startRecord(origin: InitialWeightsOrigin) -> StartRecord {
        let total = epochs.multipliedReportingOverflow(by: stepsPerEpoch)
        return StartRecord(w: Double(initialKernel), b: Double(initialBias), stepsPerEpoch: stepsPerEpoch,
                           totalSteps: total.overflow ? Int.max : total.partialValue,
                           optimum: optimum, origin: origin,
                           slots: OptimizerSlots(names: rule.slotNames, kernel: rule.pack(rule.initialSlots),
                                                 bias: rule.pack(rule.initialSlots)))
    }

    mutating func next() -> TrainerEvent? {
        switch phase {
        case .running:
            return .step(step())
        case .epochPending:
            let record = EpochRecord(epoch: epoch, iteration: iteration, loss: Double(lossTotal / lossCount),
                                     rmse: Double((squaresTotal / squaresCount).squareRoot()),
                                     valLoss: Double(lastValLoss), valRmse: Double(lastValRmse),
                                     w: Double(w), b: Double(b))
            if epoch >= epochs {
                phase = .finishing
            } else {
                beginEpoch(epoch + 1)
            }
            return .epoch(record)
        case .finishing:
            phase = .done
            return .finished(w: Double(w), b: Double(b))
        case .diverging:
            phase = .done
            return .diverged(iteration: iteration, message: divergenceMessage ?? "the running loss is not finite")
        case .done:
            return nil
        }
    }

    /// Keras resets its metrics at every epoch start; a new shuffle order is drawn only when it changes.
    mutating func beginEpoch(_ e: Int) {
        let previous = epoch
        epoch = e
        stepInEpoch = 0
        lossTotal = 0; lossCount = 0; squaresTotal = 0; squaresCount = 0
        phase = .running
        switch shuffle {
        case .none, .seeded: break
        case .everyEpoch: arrange(epoch: e)
        case let .order(orders): if min(previous, orders.count) != min(e, orders.count) { arrange(epoch: e) }
        }
    }

    /// Sets epoch `e`'s `order` and lays its rows out in that order (`fed`), so a batch is read in sequence.
    /// ltd's own every-epoch shuffle moves the rows themselves, each carrying its index: one random read per row
    /// (the swap) instead of two (the swap, then fetching the row); the order is read off the rows as they settle
    /// (`Permutation.swapFromTop`). Storage is reused when no record still holds it.
    mutating func arrange(epoch e: Int) {
        let n = x.count
        guard case let .everyEpoch(seed) = shuffle else {
            order = Permutation.order(for: shuffle, keras: keras, count: n, epoch: e)
            fed = order.map { o in o.map { FedRow(x: x[$0], y: y[$0], index: $0) } } ?? []
            return
        }
        var rows = fed, indices = order ?? []
        fed = []; order = nil
        if rows.count != n { rows = [FedRow](repeating: FedRow(x: 0, y: 0, index: 0), count: n) }
        if indices.count != n { indices = [Int](repeating: 0, count: n) }
        rows.withUnsafeMutableBufferPointer { r in
            indices.withUnsafeMutableBufferPointer { o in
                x.withUnsafeBufferPointer { xs in
                    y.withUnsafeBufferPointer { ys in
                        Permutation.drawsFromTop(count: n, seed: Permutation.epochSeed(seed, epoch: e)) { i, draw in
                            r[i] = FedRow(x: xs[i], y: ys[i], index: i)
                            o[i] = draw
                        }
                    }
                }
                Permutation.swapFromTop(r, draws: o, index: { $0.index })
            }
        }
        fed = rows; order = indices
    }

    mutating func step() -> StepRecord {
        let n = x.count
        let first = stepInEpoch * batchSize
        let count = min(batchSize, n - first)
        let wBefore = w, bBefore = b
        let sums = lookahead ?? trainingPass(first: first, count: count)
        lookahead = nil
        let size = S(count)
        let batchLoss = sums.squaredErrors / size
        // Keras's Mean trackers, weighted by batch size (KERAS.md §5).
        lossTotal = lossTotal + batchLoss * size
        lossCount = lossCount + size
        squaresTotal = squaresTotal + sums.squaredErrors
        squaresCount = squaresCount + size
        let loss = lossTotal / lossCount
        let rmse = (squaresTotal / squaresCount).squareRoot()

        var silent = SilentRecorder<S>()
        let alpha: S = rule.usesAdamAlpha ? rule.adamAlpha(iterations: iteration, record: &silent) : 0
        rule.update(&w, gradient: sums.gradW, slots: &kernelSlots, adamAlpha: alpha, variable: "w",
                    slotPrefix: "kernel.", record: &silent)
        rule.update(&b, gradient: sums.gradB, slots: &biasSlots, adamAlpha: alpha, variable: "b",
                    slotPrefix: "bias.", record: &silent)
        iteration += 1
        stepInEpoch += 1
        (lastValLoss, lastValRmse) = validate()

        let record = StepRecord(
            epoch: epoch, step: stepInEpoch, iteration: iteration,
            batch: BatchRows(order: order, range: first..<(first + count)),
            wBefore: Double(wBefore), bBefore: Double(bBefore), gradW: Double(sums.gradW), gradB: Double(sums.gradB),
            wAfter: Double(w), bAfter: Double(b), batchLoss: Double(batchLoss),
            batchRmse: Double(batchLoss.squareRoot()), loss: Double(loss), rmse: Double(rmse),
            valLoss: Double(lastValLoss), valRmse: Double(lastValRmse),
            slots: OptimizerSlots(names: rule.slotNames, kernel: rule.pack(kernelSlots), bias: rule.pack(biasSlots)))

        if stopOnDivergence && !loss.isFinite {
            phase = .diverging
            divergenceMessage = divergenceText(loss: Double(loss))
        } else if stepInEpoch == stepsPerEpoch {
            phase = .epochPending
        }
        return record
    }

    /// The batch sums of the training path. A shuffled batch is read in sequence from the rows already laid out in
    /// feed order (`arrange`): the same values in the same order as through the order (`forwardPass`, which
    /// `explain` uses), so the sums are the same bits, without a random read.
    func trainingPass(first: Int, count: Int) -> BatchSums<S> {
        guard order != nil, fed.count == x.count, fedYOffset >= 0 else { return forwardPass(first: first, count: count) }
        let (w, b, yOffset, stride) = (self.w, self.b, fedYOffset, fedStride)
        return fed.withUnsafeBufferPointer { rows in
            guard let base = rows.baseAddress else { return BatchSums(squaredErrors: 0, gradW: 0, gradB: 0) }
            let raw = UnsafeRawPointer(base)
            return batchSums(x: raw.assumingMemoryBound(to: S.self),
                             y: (raw + yOffset).assumingMemoryBound(to: S.self),
                             rows: StridedRows(start: first, stride: stride), count: count, w: w, b: b)
        }
    }

    /// The batch sums of positions first..<first+count of this epoch's order, at the current weights.
    func forwardPass(first: Int, count: Int) -> BatchSums<S> {
        var ignore = IgnoreRows<S>()
        return forwardPass(first: first, count: count, observer: &ignore)
    }

    /// The same, showing each row to `observer`. Always inlined: the training path keeps its one call level.
    @inline(__always)
    func forwardPass<O: RowObserver>(first: Int, count: Int, observer: inout O) -> BatchSums<S> where O.Scalar == S {
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeBufferPointer { yp in
                guard let xb = xp.baseAddress, let yb = yp.baseAddress else {
                    return BatchSums(squaredErrors: 0, gradW: 0, gradB: 0)
                }
                if let order {
                    return order.withUnsafeBufferPointer { op in
                        guard let ob = op.baseAddress else { return BatchSums(squaredErrors: 0, gradW: 0, gradB: 0) }
                        return batchSums(x: xb, y: yb, rows: PermutedRows(order: ob + first), count: count, w: w, b: b,
                                         observer: &observer)
                    }
                }
                return batchSums(x: xb, y: yb, rows: ContiguousRows(start: first), count: count, w: w, b: b,
                                 observer: &observer)
            }
        }
    }

    /// `evaluate(val_x, val_y, batch_size: B)` at the current weights (KERAS.md §6), or its O(1) estimate.
    mutating func validate() -> (S, S) {
        if validationIsNextForwardPass {
            let next = forwardPass(first: 0, count: x.count)
            lookahead = next
            let s = S(x.count)
            return (((next.squaredErrors / s) * s) / s, (next.squaredErrors / s).squareRoot())
        }
        if let statistics {
            let mse = statistics.meanSquaredError(w: Double(w), b: Double(b))
            return (S(mse), S(mse.squareRoot()))
        }
        let totals = validationX.withUnsafeBufferPointer { xp in
            validationY.withUnsafeBufferPointer { yp -> (loss: S, squares: S) in
                guard let xb = xp.baseAddress, let yb = yp.baseAddress else { return (0, 0) }
                return evaluateTotals(x: xb, y: yb, count: validationX.count, batch: validationBatch, w: w, b: b)
            }
        }
        return (totals.loss / validationCount, (totals.squares / validationCount).squareRoot())
    }

    func divergenceText(loss: Double) -> String {
        let lr = Double(rule.learningRate)
        return "diverged at iteration \(iteration) (epoch \(epoch), step \(stepInEpoch)): the running loss became "
            + "\(loss). Each step moves w by about learning_rate·x²·w, and |x| reaches \(maxAbsX) here, so a "
            + "learning rate of \(lr) overshoots further every step. Try a smaller learning_rate "
            + "(e.g. \(lr / 10)), or rescale x to a smaller range."
    }

    var checkpoint: TrainerCheckpoint {
        TrainerCheckpoint(specFingerprint: fingerprint, precision: S.precision, epoch: epoch, stepInEpoch: stepInEpoch,
                          iteration: iteration, phase: phase, weights: [w.bits64, b.bits64],
                          kernelSlots: [kernelSlots.0.bits64, kernelSlots.1.bits64, kernelSlots.2.bits64],
                          biasSlots: [biasSlots.0.bits64, biasSlots.1.bits64, biasSlots.2.bits64],
                          metrics: [lossTotal.bits64, lossCount.bits64, squaresTotal.bits64, squaresCount.bits64],
                          lastValidation: [lastValLoss.bits64, lastValRmse.bits64],
                          divergenceMessage: divergenceMessage)
    }

    mutating func restore(_ c: TrainerCheckpoint, spec: JobSpec) throws(SpecError) {
        func refuse(_ why: String) -> SpecError {
            SpecError(field: "checkpoint", value: why, allowed: "a checkpoint taken from a trainer of this same spec")
        }
        guard c.specFingerprint == fingerprint else { throw refuse("it belongs to another spec") }
        guard c.precision == S.precision else { throw refuse("precision \(c.precision.rawValue)") }
        guard c.epoch >= 1, c.epoch <= epochs, c.stepInEpoch >= 0, c.stepInEpoch <= stepsPerEpoch,
              c.iteration == (c.epoch - 1) * stepsPerEpoch + c.stepInEpoch else {
            throw refuse("position epoch \(c.epoch), step \(c.stepInEpoch), iteration \(c.iteration)")
        }
        guard c.weights.count == 2, c.kernelSlots.count == 3, c.biasSlots.count == 3, c.metrics.count == 4,
              c.lastValidation.count == 2 else { throw refuse("missing values") }
        if c.epoch != 1 { arrange(epoch: c.epoch) }
        epoch = c.epoch; stepInEpoch = c.stepInEpoch; iteration = c.iteration; phase = c.phase
        w = S(bits64: c.weights[0]); b = S(bits64: c.weights[1])
        kernelSlots = (S(bits64: c.kernelSlots[0]), S(bits64: c.kernelSlots[1]), S(bits64: c.kernelSlots[2]))
        biasSlots = (S(bits64: c.biasSlots[0]), S(bits64: c.biasSlots[1]), S(bits64: c.biasSlots[2]))
        lossTotal = S(bits64: c.metrics[0]); lossCount = S(bits64: c.metrics[1])
        squaresTotal = S(bits64: c.metrics[2]); squaresCount = S(bits64: c.metrics[3])
        lastValLoss = S(bits64: c.lastValidation[0]); lastValRmse = S(bits64: c.lastValidation[1])
        divergenceMessage = c.divergenceMessage
    }
}
