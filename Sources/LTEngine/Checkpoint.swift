/// A trainer's whole state as one value: restore it with `Trainer(spec:resuming:)` and the run continues bit for bit.
///
/// Scalars are stored as the bit patterns of the job's precision (a float32 value zero-extended to 64 bits), so the
/// value is exact, encodes as plain integers (JSON has no NaN), and compares NaN equal to the same NaN.
/// The shuffle order is not stored: it is rebuilt from the spec and `epoch` (see `Permutation`).
public struct TrainerCheckpoint: Sendable, Equatable, Codable {
    public enum Phase: String, Sendable, Equatable, Codable {
        /// The next event is a step of `epoch`.
        case running
        /// The last step of `epoch` was recorded; the next event is its epoch record.
        case epochPending = "epoch_pending"
        /// The next event is `.finished`.
        case finishing
        /// The next event is `.diverged`.
        case diverging
        /// Every event has been handed out.
        case done
    }

    /// Identifies the spec the checkpoint belongs to (everything but pace_ms and paused).
    public var specFingerprint: UInt64
    public var precision: Precision
    /// 1-based epoch in progress (or just completed, in `epochPending`).
    public var epoch: Int
    /// Steps done in `epoch`.
    public var stepInEpoch: Int
    /// Optimizer steps done over the run (Keras's `optimizer.iterations`).
    public var iteration: Int
    public var phase: Phase
    /// [w, b]
    public var weights: [UInt64]
    /// Internal slot layout, 3 per variable (see `OptimizerRule`).
    public var kernelSlots: [UInt64]
    public var biasSlots: [UInt64]
    /// Running metric accumulators of the epoch: [L_tot, L_cnt, R_tot, R_cnt].
    public var metrics: [UInt64]
    /// [val_loss, val_rmse] after the last step (the epoch record repeats them).
    public var lastValidation: [UInt64]
    public var divergenceMessage: String?
}

/// A 64-bit hash of a spec's training-relevant fields, to refuse a checkpoint from another spec: FNV-1a taken a
/// whole word at a time (one xor-multiply per value, so 10M points hash in milliseconds), then a final avalanche.
struct SpecFingerprint {
    private var state: UInt64 = 0xCBF2_9CE4_8422_2325
    var value: UInt64 {
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func add(_ v: UInt64) {
        state = (state ^ v) &* 0x0000_0100_0000_01B3
    }
    mutating func add(_ v: Int) { add(UInt64(bitPattern: Int64(v))) }
    mutating func add(_ v: Double) { add(v.bitPattern) }
    mutating func add(_ v: Double?) { if let v { add(1 as UInt64); add(v) } else { add(0 as UInt64) } }
    mutating func add(_ v: Bool?) { add(UInt64(v.map { $0 ? 2 : 1 } ?? 0)) }
    mutating func add(_ s: String) { for byte in s.utf8 { add(UInt64(byte)) }; add(0xFF as UInt64) }
    mutating func add(_ values: [Double]) { add(values.count); for v in values { add(v) } }

    init(_ spec: JobSpec) {
        add(spec.data.x); add(spec.data.y)
        if let v = spec.validation { add(1); add(v.x); add(v.y) } else { add(0) }
        switch spec.initialization {
        case let .constant(k, b): add("constant"); add(k); add(b)
        case let .glorotUniform(seed): add("glorot_uniform"); add(seed)
        case let .kerasDefault(seed): add("keras_default"); add(seed)
        }
        let o = spec.optimizer
        add(o.name.rawValue); add(o.learningRate); add(o.momentum); add(o.nesterov); add(o.rho); add(o.epsilon)
        add(o.centered); add(o.beta1); add(o.beta2); add(o.amsgrad); add(o.weightDecay); add(o.initialAccumulatorValue)
        add(spec.epochs); add(spec.batchSize)
        switch spec.shuffle {
        case .none: add("none")
        case let .everyEpoch(seed): add("every_epoch"); add(seed)
        case let .seeded(seed): add("seeded"); add(seed)
        case let .order(orders): add("order"); add(orders.count); for o in orders { add(o.count); for i in o { add(i) } }
        }
        add(spec.precision.rawValue); add(spec.onDivergence.rawValue); add(spec.validationMode.rawValue)
        // Last and only when set, so a job stored before ltd recorded its Keras keeps its fingerprint and restores.
        if let keras = spec.keras { add("keras"); add(keras.rawValue) }
    }
}
