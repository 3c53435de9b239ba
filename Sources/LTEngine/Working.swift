/// The worked example of one optimizer step: every intermediate value, in Keras's order of operations, in the job's
/// precision. It comes from the very code that trains: `batchSums` reports each row as it goes, and
/// `OptimizerRule.update` is written once over `UpdateArithmetic`, run with plain scalars when training and with
/// `Traced` scalars (the same operations on the same values, plus their formula) when explaining. So the working's
/// result is ltd's update, bit for bit, by construction; `WorkingTests` checks it on every golden step anyway.

/// The arithmetic an optimizer update is written in: the job's scalar itself, or a `Traced` one.
protocol UpdateArithmetic: ExpressibleByIntegerLiteral {
    associatedtype Scalar: EngineScalar
    static func + (a: Self, b: Self) -> Self
    static func - (a: Self, b: Self) -> Self
    static func * (a: Self, b: Self) -> Self
    static func / (a: Self, b: Self) -> Self
    func squareRoot() -> Self
    /// TF's `Maximum` as AMSGrad uses it: `a < b ? b : a`.
    static func larger(_ a: Self, _ b: Self) -> Self
    /// `S.kerasPow`.
    static func power(_ base: Self, _ exponent: Self) -> Self
}

/// Names the values an update computes. Training uses `SilentRecorder` (every call compiles away); explaining uses
/// `WorkingRecorder`, which writes one `WorkingLine` per named value.
protocol UpdateRecorder {
    associatedtype Value: UpdateArithmetic
    /// A hyper-parameter or other given value, under its name.
    /// Names are autoclosures so the training path never builds them.
    mutating func given(_ name: @autoclosure () -> String, _ value: Value.Scalar) -> Value
    /// `value`, from here on known as `name`. Returns the same number.
    mutating func define(_ name: @autoclosure () -> String, _ value: Value) -> Value
}

extension EngineScalar {
    @inline(__always) static func larger(_ a: Self, _ b: Self) -> Self { a < b ? b : a }
    @inline(__always) static func power(_ base: Self, _ exponent: Self) -> Self { kerasPow(base, exponent) }
}

/// The training path: values pass through untouched.
struct SilentRecorder<S: EngineScalar>: UpdateRecorder {
    @inline(__always) mutating func given(_ name: @autoclosure () -> String, _ value: S) -> S { value }
    @inline(__always) mutating func define(_ name: @autoclosure () -> String, _ value: S) -> S { value }
}

/// A value with the formula that produced it. Each operation is the scalar's own operation on `value`, so a traced
/// computation yields exactly the numbers of the plain one.
struct Traced<S: EngineScalar>: UpdateArithmetic {
    typealias Scalar = S
    var value: S
    /// The formula in terms of named values, fully parenthesised where the evaluation order needs it.
    var formula: String
    /// 0: a sum or difference; 1: a product or quotient; 2: a name, a number or a function call.
    var precedence: Int
    /// Every operation that produced `value`, in evaluation order (empty for a name or a number).
    var operations: [WorkingOperation]

    init(_ value: S, _ formula: String, precedence: Int = 2, operations: [WorkingOperation] = []) {
        self.value = value; self.formula = formula; self.precedence = precedence; self.operations = operations
    }

    init(integerLiteral literal: Int) { self.init(S(literal), String(literal)) }

    /// Left operands keep their order without parentheses; right operands of the same precedence need them
    /// (floating-point `a − (b − c)` and `a + (b + c)` are not `a − b + c`).
    private static func binary(_ a: Self, _ op: String, _ b: Self, _ value: S, precedence p: Int) -> Self {
        let left = a.precedence < p ? "(\(a.formula))" : a.formula
        let right = b.precedence <= p ? "(\(b.formula))" : b.formula
        let operation = WorkingOperation(operator: op, operands: [Double(a.value), Double(b.value)], value: Double(value))
        return Traced(value, "\(left) \(op) \(right)", precedence: p, operations: a.operations + b.operations + [operation])
    }

    private static func function(_ name: String, _ arguments: [Self], _ value: S) -> Self {
        let operation = WorkingOperation(operator: name, operands: arguments.map { Double($0.value) }, value: Double(value))
        return Traced(value, "\(name)(\(arguments.map(\.formula).joined(separator: ", ")))",
                      operations: arguments.flatMap(\.operations) + [operation])
    }

    static func + (a: Self, b: Self) -> Self { binary(a, "+", b, a.value + b.value, precedence: 0) }
    static func - (a: Self, b: Self) -> Self { binary(a, "-", b, a.value - b.value, precedence: 0) }
    static func * (a: Self, b: Self) -> Self { binary(a, "*", b, a.value * b.value, precedence: 1) }
    static func / (a: Self, b: Self) -> Self { binary(a, "/", b, a.value / b.value, precedence: 1) }
    func squareRoot() -> Self { Self.function("sqrt", [self], value.squareRoot()) }
    static func larger(_ a: Self, _ b: Self) -> Self { function("max", [a, b], a.value < b.value ? b.value : a.value) }
    static func power(_ base: Self, _ exponent: Self) -> Self {
        function("pow", [base, exponent], S.kerasPow(base.value, exponent.value))
    }
}

/// One operation of a working line, with its operands' values and its result, in the job's precision.
public struct WorkingOperation: Sendable, Equatable {
    /// `+`, `-`, `*`, `/`, `sqrt`, `pow` or `max`.
    public var `operator`: String
    public var operands: [Double]
    public var value: Double
    public init(operator: String, operands: [Double], value: Double) {
        self.operator = `operator`; self.operands = operands; self.value = value
    }
}

/// A value and its name: a hyper-parameter, a slot, or a value a formula reads.
public struct NamedValue: Sendable, Equatable {
    public var name: String
    public var value: Double
    public init(_ name: String, _ value: Double) { self.name = name; self.value = value }
}

/// One named value of a working: `name = formula`, evaluated in the job's precision. Names are bound in order, so a
/// formula means the values named on the lines before it (`w = w - …` updates `w`).
public struct WorkingLine: Sendable, Equatable {
    public var name: String
    /// Operators `+ - * /` evaluated left to right within a precedence level, `sqrt`, `pow`, `max`; every operation
    /// rounds to the job's precision.
    public var formula: String
    public var value: Double
    /// Every operation of the formula in evaluation order; the last one's result is `value`.
    public var operations: [WorkingOperation]
    public init(name: String, formula: String, value: Double, operations: [WorkingOperation] = []) {
        self.name = name; self.formula = formula; self.value = value; self.operations = operations
    }
}

/// Records a working: the given values (hyper-parameters) once each, and one line per defined value.
struct WorkingRecorder<S: EngineScalar>: UpdateRecorder {
    var given: [NamedValue] = []
    var lines: [WorkingLine] = []

    mutating func given(_ name: @autoclosure () -> String, _ value: S) -> Traced<S> {
        let name = name()
        if !given.contains(where: { $0.name == name }) { given.append(NamedValue(name, Double(value))) }
        return Traced(value, name)
    }

    mutating func define(_ name: @autoclosure () -> String, _ value: Traced<S>) -> Traced<S> {
        let name = name()
        lines.append(WorkingLine(name: name, formula: value.formula, value: Double(value.value),
                                 operations: value.operations))
        return Traced(value.value, name)
    }
}

/// One row of a batch, at the weights before the step (Keras's forward pass and the loss's gradient).
public struct RowWorking: Sendable, Equatable {
    /// The row's index in the dataset.
    public var row: Int
    public var x: Double, y: Double
    /// `x * w + b`.
    public var prediction: Double
    /// `y - prediction`.
    public var error: Double
    /// `error * error`.
    public var squaredError: Double
    /// This row's share of the gradient with respect to the prediction: `-(scale * (error + error))`.
    public var gradientPart: Double
    /// `grad_w` after this row: the fused multiply-add chain `fma(x, gradient_part, previous)` in batch order.
    public var gradWSoFar: Double
}

/// One variable's update: the slots before, the lines, and the result.
public struct VariableWorking: Sendable, Equatable {
    /// "kernel" or "bias", as in the events' `slots`.
    public var variable: String
    /// "w" or "b".
    public var symbol: String
    /// "grad_w" or "grad_b".
    public var gradientName: String
    public var before: Double
    public var gradient: Double
    /// Keras's slot names and values, in Keras's order.
    public var slotsBefore: [NamedValue]
    public var lines: [WorkingLine]
    public var slotsAfter: [NamedValue]
    public var after: Double

}

/// The worked example of one step. Every value is a number of the job's precision, widened to Double.
public struct StepWorking: Sendable, Equatable {
    public var epoch: Int, step: Int, iteration: Int, stepsPerEpoch: Int
    public var precision: Precision
    public var optimizer: OptimizerName
    /// Rows in the batch.
    public var batchSize: Int
    /// The batch, in feed order (the first `rowLimit` rows when the caller asked for fewer).
    public var rows: [RowWorking]
    /// `1 / n` in the job's precision: the mean's factor in the loss gradient.
    public var scale: Double
    /// Σ error², summed in Eigen's order (8 lanes, then halved).
    public var squaredErrorSum: Double
    /// `squared_error_sum / n`: the batch's loss before the update.
    public var batchLoss: Double
    /// The fused multiply-add chain over the rows' `x * gradient_part`.
    public var gradW: Double
    /// Σ gradient_part, summed in Eigen's order.
    public var gradB: Double
    /// The optimizer's hyper-parameters as the update uses them, in the job's precision, in order of first use.
    public var hyperParameters: [NamedValue]
    /// Values the step computes once for both variables (Adam's bias-corrected step size); empty otherwise.
    public var shared: [WorkingLine]
    public var kernel: VariableWorking
    public var bias: VariableWorking

}

/// Iteration 0: where the initial weights came from.
public struct InitialWorking: Sendable, Equatable {

    public var w: Double, b: Double
    public var origin: InitialWeightsOrigin
    /// For Keras's uniform draws, the values TF's scaling reads (`unit_uniform`, `minval`, `maxval`)…
    public var given: [NamedValue]
    /// …and its one line, `w = unit_uniform * (maxval - minval) + minval`. Both empty for constants.
    public var lines: [WorkingLine]
    public var slots: OptimizerSlots
    public var optimum: Optimum?
    public var precision: Precision
}

/// What `explain` shows for an iteration.
public enum Working: Sendable, Equatable {
    case initial(InitialWorking)
    case step(StepWorking)
}

/// Why a working cannot be given.
public enum WorkingUnavailable: Error, Sendable, Equatable {
    /// The run ends (finishes or diverges) after `taken` steps.
    case beyondRun(taken: Int)
}
