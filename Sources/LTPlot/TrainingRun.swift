/// The input of every picture: one training job as plain values, independent of the wire format.
///
/// `ltctl` builds it from a job's events; tests build it from a golden Keras trace.
public struct TrainingRun: Sendable {
    /// Usually the job's name.
    public var title: String
    /// One line that states the job's settings, e.g. "rmsprop lr=0.05 · 4 epochs · batch 4 · 12 points".
    public var settings: String
    /// The training data.
    public var x: [Double]
    public var y: [Double]
    /// The weights before the first step.
    public var initial: (w: Double, b: Double)
    /// The least-squares line of the training data; `nil` means "compute it from x and y".
    public var optimum: (w: Double, b: Double)?
    /// One entry per optimizer step, in iteration order.
    public var steps: [StepPoint]

    public init(
        title: String, settings: String, x: [Double], y: [Double],
        initial: (w: Double, b: Double), optimum: (w: Double, b: Double)?, steps: [StepPoint]
    ) {
        self.title = title
        self.settings = settings
        self.x = x
        self.y = y
        self.initial = initial
        self.optimum = optimum
        self.steps = steps
    }
}

/// What the pictures need from one optimizer step.
public struct StepPoint: Sendable, Equatable {
    /// Optimizer steps taken so far, counting this one (1, 2, 3, …).
    public var iteration: Int
    /// The epoch of this step (1-based) and the step within the epoch (1-based).
    public var epoch: Int
    public var step: Int
    /// The weights after this step's update.
    public var wAfter: Double
    public var bAfter: Double
    /// The RMSE Keras reports: running over the epoch so far, each batch measured before its update.
    public var kerasRmse: Double
    /// This batch's own RMSE, before the update: sqrt(batch_loss).
    public var batchRmse: Double
    /// The validation RMSE with the weights after the update.
    public var valRmse: Double

    public init(
        iteration: Int, epoch: Int, step: Int, wAfter: Double, bAfter: Double,
        kerasRmse: Double, batchRmse: Double, valRmse: Double
    ) {
        self.iteration = iteration
        self.epoch = epoch
        self.step = step
        self.wAfter = wAfter
        self.bAfter = bAfter
        self.kerasRmse = kerasRmse
        self.batchRmse = batchRmse
        self.valRmse = valRmse
    }
}

/// The least-squares line of one-feature data, and the mean squared error of any line, in Double.
public struct LeastSquares: Sendable {
    public let count: Int
    let meanX: Double
    let meanY: Double
    /// Centred second moments: Σ(x-x̄)², Σ(x-x̄)(y-ȳ), Σ(y-ȳ)², each divided by n.
    let varX: Double
    let covXY: Double
    let varY: Double

    /// Sufficient statistics of the finite (x, y) pairs; pairs with a non-finite member are left out.
    public init(x: [Double], y: [Double]) {
        var n = 0
        var sx = 0.0
        var sy = 0.0
        for (a, b) in zip(x, y) where a.isFinite && b.isFinite {
            n += 1
            sx += a
            sy += b
        }
        let mx = n > 0 ? sx / Double(n) : 0
        let my = n > 0 ? sy / Double(n) : 0
        var uu = 0.0
        var uv = 0.0
        var vv = 0.0
        for (a, b) in zip(x, y) where a.isFinite && b.isFinite {
            let u = a - mx
            let v = b - my
            uu += u * u
            uv += u * v
            vv += v * v
        }
        count = n
        meanX = mx
        meanY = my
        varX = n > 0 ? uu / Double(n) : 0
        covXY = n > 0 ? uv / Double(n) : 0
        varY = n > 0 ? vv / Double(n) : 0
    }

    /// The line minimising the training MSE; `nil` without data or when every x is the same.
    public var optimum: (w: Double, b: Double)? {
        guard count > 0, varX > 0 else { return nil }
        let w = covXY / varX
        return (w, meanY - w * meanX)
    }

    /// The mean squared error of the line y = w·x + b on the data.
    ///
    /// Written around the means, so a grid of thousands of (w, b) costs O(1) each and keeps its precision.
    public func mse(w: Double, b: Double) -> Double {
        let c = w * meanX + b - meanY
        return w * w * varX - 2 * w * covXY + varY + c * c
    }
}
