import LTEngine

/// Two jobs set side by side step by step, field by field, as the bit patterns the jobs computed (float32, or float64
/// when both jobs are float64): `ltctl diff A B`. Used to prove that ltd's replica of a real Keras run (a job fed by
/// the Keras bridge) is exact, and to say where and why it is not.
public struct JobDiff: Sendable, Equatable {
    /// One field that differs.
    public struct Divergence: Sendable, Equatable {
        /// 0 for the initial weights (the start events), else the optimizer step.
        public var iteration: Int
        public var epoch: Int
        public var step: Int
        public var field: String
        /// The values as the jobs hold them (exact in their precision); text for non-numbers (batch rows).
        public var a: JSONValue
        public var b: JSONValue
        /// The distance in units in the last place of the compared precision; nil when not both are finite numbers.
        public var ulps: UInt64?
        /// What the divergence most likely means.
        public var meaning: String
    }

    public var precision: Precision
    public var stepsA: Int
    public var stepsB: Int
    /// Steps present in both jobs.
    public var stepsCompared: Int
    /// Steps whose every compared field is bit-identical.
    public var identicalSteps: Int
    /// Fields compared in at least one step (present in both jobs).
    public var fieldsCompared: [String]
    /// Fields that only one of the jobs carries (an external job records what Keras exposes: no gradients).
    public var fieldsNotCompared: [String]
    public var firstDivergence: Divergence?
    /// Every field of the first divergent step that differs (the first divergence is the first of them).
    public var divergentFields: [String]
    /// Why the platforms may differ, from the jobs' `platform` records (the Keras bridge records one).
    public var platformNote: String?

    /// True when both jobs have the same number of steps, and each is bit-identical, initial weights included.
    public var identical: Bool { firstDivergence == nil && stepsA == stepsB }

    /// The per-step fields compared, in the order a step computes them.
    public static let stepFields = ["w_before", "b_before", "grad_w", "grad_b", "w_after", "b_after", "batch_loss",
                                    "batch_rmse", "loss", "rmse", "val_loss", "val_rmse"]

    /// Compares the start events' initial weights, then each step pair. `start` may be nil (no start event read).
    public init(startA: Event?, stepsA: [Event], startB: Event?, stepsB: [Event]) {
        let float64 = startA?.string("precision") == "float64" && startB?.string("precision") == "float64"
        precision = float64 ? .float64 : .float32
        self.stepsA = stepsA.count
        self.stepsB = stepsB.count
        stepsCompared = min(stepsA.count, stepsB.count)
        identicalSteps = 0
        fieldsCompared = []
        fieldsNotCompared = []
        firstDivergence = nil
        divergentFields = []
        platformNote = JobDiff.platformNote(startA?.value("platform"), startB?.value("platform"))

        var compared: [String] = []
        var notCompared: [String] = []
        func note(_ field: String, into list: inout [String]) { if !list.contains(field) { list.append(field) } }

        // Iteration 0: the initial weights.
        if let startA, let startB {
            var differing: [Divergence] = []
            for (field, key) in [("w_initial", "w"), ("b_initial", "b")] {
                guard let va = startA.value(key), let vb = startB.value(key) else { continue }
                note(field, into: &compared)
                if let d = compare(field: field, va, vb, iteration: 0, epoch: 0, step: 0) { differing.append(d) }
            }
            if let first = differing.first {
                firstDivergence = first
                divergentFields = differing.map(\.field)
            }
        }

        for i in 0..<stepsCompared {
            let ea = stepsA[i], eb = stepsB[i]
            let iteration = ea.int("iteration") ?? i + 1
            let epoch = ea.int("epoch") ?? 0, step = ea.int("step") ?? 0
            var differing: [Divergence] = []
            // Which rows fed the step: when they differ, nothing after can be expected to agree.
            let rowsA = Self.rows(ea), rowsB = Self.rows(eb)
            if let rowsA, let rowsB {
                note("rows", into: &compared)
                if rowsA != rowsB {
                    differing.append(Divergence(iteration: iteration, epoch: epoch, step: step, field: "rows",
                                                a: .array(rowsA.map { .number(String($0)) }),
                                                b: .array(rowsB.map { .number(String($0)) }), ulps: nil, meaning: ""))
                }
            } else if (rowsA == nil) != (rowsB == nil) {
                note("rows", into: &notCompared)
            }
            var fields = Self.stepFields
            for variable in ["kernel", "bias"] {
                let names = (ea.value("slots.\(variable)")?.objectMembers ?? []).map(\.key)
                    + (eb.value("slots.\(variable)")?.objectMembers ?? []).map(\.key)
                for name in names where !fields.contains("slots.\(variable).\(name)") { fields.append("slots.\(variable).\(name)") }
            }
            for field in fields {
                let va = ea.value(field).flatMap { $0.isNull ? nil : $0 }
                let vb = eb.value(field).flatMap { $0.isNull ? nil : $0 }
                guard let va, let vb else {
                    if (va == nil) != (vb == nil) { note(field, into: &notCompared) }
                    continue
                }
                note(field, into: &compared)
                if let d = compare(field: field, va, vb, iteration: iteration, epoch: epoch, step: step) { differing.append(d) }
            }
            if differing.isEmpty {
                identicalSteps += 1
            } else if firstDivergence == nil, var first = differing.first {
                first.meaning = Self.meaning(of: first, others: differing.map(\.field), platformNote: platformNote)
                firstDivergence = first
                divergentFields = differing.map(\.field)
            }
        }
        if var first = firstDivergence, first.iteration == 0 {
            first.meaning = Self.meaning(of: first, others: divergentFields, platformNote: platformNote)
            firstDivergence = first
        }
        fieldsCompared = compared
        fieldsNotCompared = notCompared.filter { !compared.contains($0) }
    }

    /// nil when the two values are bit-identical in the compared precision.
    private func compare(field: String, _ va: JSONValue, _ vb: JSONValue, iteration: Int, epoch: Int, step: Int) -> Divergence? {
        guard let da = va.doubleValue, let db = vb.doubleValue else {
            return va == vb ? nil : Divergence(iteration: iteration, epoch: epoch, step: step, field: field, a: va, b: vb,
                                               ulps: nil, meaning: "")
        }
        switch precision {
        case .float32:
            let fa = Float(da), fb = Float(db)
            if fa.bitPattern == fb.bitPattern { return nil }
            return Divergence(iteration: iteration, epoch: epoch, step: step, field: field,
                              a: Self.number(Double(fa), fa.description), b: Self.number(Double(fb), fb.description),
                              ulps: Self.ulpDistance(fa, fb), meaning: "")
        case .float64:
            if da.bitPattern == db.bitPattern { return nil }
            return Divergence(iteration: iteration, epoch: epoch, step: step, field: field,
                              a: Self.number(da, da.description), b: Self.number(db, db.description),
                              ulps: Self.ulpDistance(da, db), meaning: "")
        }
    }

    /// A value as the protocol writes it: shortest text, or the non-finite spellings.
    private static func number(_ value: Double, _ text: String) -> JSONValue {
        guard value.isFinite else { return .string(value.isNaN ? "NaN" : (value > 0 ? "Infinity" : "-Infinity")) }
        return .number(text)
    }

    /// The rows a step used (`indices`, or `range` for a long contiguous batch); nil when the event names none
    /// (a shuffled external run does not know them).
    static func rows(_ e: Event) -> [Int]? {
        if let indices = e.ints("batch.indices") { return indices }
        if let range = e.ints("batch.range"), range.count == 2, range[0] <= range[1] { return Array(range[0]..<range[1]) }
        return nil
    }

    /// The number of representable float32 values between a and b (0 for +0 and -0); nil when either is NaN.
    public static func ulpDistance(_ a: Float, _ b: Float) -> UInt64? {
        guard !a.isNaN, !b.isNaN else { return nil }
        return distance(magnitudeA: UInt64(a.bitPattern & 0x7FFF_FFFF), negativeA: a.sign == .minus,
                        magnitudeB: UInt64(b.bitPattern & 0x7FFF_FFFF), negativeB: b.sign == .minus)
    }

    /// The number of representable float64 values between a and b; nil when either is NaN.
    public static func ulpDistance(_ a: Double, _ b: Double) -> UInt64? {
        guard !a.isNaN, !b.isNaN else { return nil }
        return distance(magnitudeA: a.bitPattern & 0x7FFF_FFFF_FFFF_FFFF, negativeA: a.sign == .minus,
                        magnitudeB: b.bitPattern & 0x7FFF_FFFF_FFFF_FFFF, negativeB: b.sign == .minus)
    }

    /// Bit patterns of finite-or-infinite floats order like sign-magnitude integers; each magnitude is below 2^63,
    /// so the sum of two never overflows.
    private static func distance(magnitudeA: UInt64, negativeA: Bool, magnitudeB: UInt64, negativeB: Bool) -> UInt64 {
        if negativeA == negativeB { return magnitudeA > magnitudeB ? magnitudeA - magnitudeB : magnitudeB - magnitudeA }
        return magnitudeA + magnitudeB
    }

    /// What a first divergence most likely means, from where it appears and how far apart the values are.
    static func meaning(of d: Divergence, others: [String], platformNote: String?) -> String {
        let platform = platformNote.map { " " + $0 } ?? ""
        let tiny = (d.ulps ?? .max) <= 4
        switch d.field {
        case "w_initial", "b_initial":
            return "The runs start from different weights: a different initializer seed, or an unseeded run whose initial weights were not carried over. Replicate from the recorded initial kernel and bias."
        case "rows":
            return "The step fed different rows: the batches differ (another batch size, shuffle, or shuffle seed), so every number after this differs too."
        case "w_before", "b_before":
            return "The weights entering this step differ although the previous step agreed: one run changed the weights between steps (another callback, a reloaded model, or weights set by hand)."
        case "grad_w", "grad_b":
            return tiny
                ? "The gradient is rounded differently: the same maths summed in another order.\(platform)"
                : "The gradient differs: a different loss or different data in this batch."
        case "loss", "rmse":
            return tiny
                ? "Only the running metric Keras prints differs: its sums are accumulated in another order (another Keras version or device).\(platform)"
                : "The running metric differs: the metrics were reset during the epoch (for instance model.evaluate called from a callback) or are accumulated differently."
        case "batch_loss", "batch_rmse":
            return tiny
                ? "The batch loss is rounded differently: its mean is summed in another order.\(platform)"
                : "The batch loss differs although the weights agree: different data, or a different loss function."
        case "val_loss", "val_rmse":
            return tiny
                ? "Only validation differs, by rounding: evaluate summed its batches in another order or at another batch size.\(platform)"
                : "Only validation differs: a different validation set (validation_split or validation_data) or another evaluation batch size."
        default:
            if d.field.hasPrefix("slots.") || d.field == "w_after" || d.field == "b_after" {
                return tiny
                    ? "The update is rounded differently by \(d.ulps ?? 0) ULP with the same inputs: the optimizer's arithmetic is done in another order (another Keras version, such as Keras 2's RMSprop, a GPU, or oneDNN).\(platform)"
                    : "The update differs with the same inputs: a different optimizer, learning rate or other hyperparameter."
            }
            return "The field differs."
        }
    }

    /// A sentence when the two jobs' recorded platforms differ in what changes float rounding, else nil.
    static func platformNote(_ a: JSONValue?, _ b: JSONValue?) -> String? {
        var notes: [String] = []
        for side in [a, b] {
            guard let side else { continue }
            if let device = side["device"]?.stringValue, device.uppercased().contains("GPU") {
                notes.append("One run was on a GPU (\(device)), whose kernels reduce sums in another order than ltd's CPU arithmetic.")
            }
        }
        if let a, let b {
            for key in ["keras", "tensorflow", "numpy"] {
                if let va = a[key]?.stringValue, let vb = b[key]?.stringValue, va != vb {
                    notes.append("The runs used different \(key) versions (\(va) and \(vb)).")
                }
            }
            if let va = a["onednn"]?.boolValue, let vb = b["onednn"]?.boolValue, va != vb {
                notes.append("oneDNN was on in one run and off in the other.")
            }
        } else if let only = a ?? b, let keras = only["keras"]?.stringValue, keras != "3.15.1" {
            notes.append("The Keras run used Keras \(keras); ltd follows Keras 3.15.1.")
        }
        return notes.isEmpty ? nil : notes.joined(separator: " ")
    }

    /// `{"identical":…,"precision":…,"steps_a":…,…,"first_divergence":{…}|null}`.
    public func json(a: String, b: String) -> JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("a", .string(a)), ("b", .string(b)), ("identical", .bool(identical)),
            ("precision", .string(precision.rawValue)),
            ("steps_a", .number(String(stepsA))), ("steps_b", .number(String(stepsB))),
            ("steps_compared", .number(String(stepsCompared))), ("identical_steps", .number(String(identicalSteps))),
            ("fields_compared", .array(fieldsCompared.map { .string($0) })),
            ("fields_not_compared", .array(fieldsNotCompared.map { .string($0) })),
        ]
        if let d = firstDivergence {
            members.append(("first_divergence", .object([
                ("iteration", .number(String(d.iteration))), ("epoch", .number(String(d.epoch))),
                ("step", .number(String(d.step))), ("field", .string(d.field)), ("a", d.a), ("b", d.b),
                ("ulps", d.ulps.map { .number(String($0)) } ?? .null), ("meaning", .string(d.meaning)),
                ("fields", .array(divergentFields.map { .string($0) })),
            ])))
        } else {
            members.append(("first_divergence", .null))
        }
        members.append(("platform_note", platformNote.map { .string($0) } ?? .null))
        return .object(members)
    }
}
