/// Recovers an unseeded run's initial kernel from the figures Keras printed.
///
/// A learner's `model.fit` without a seed starts from a kernel drawn by GlorotUniform (uniform in ±√3 for a 1×1
/// kernel; Dense's bias starts at 0) and prints, for the last epoch, `loss: 535.4800 - root_mean_squared_error:
/// 23.1405`. Those figures are a function of the initial kernel alone, once data, optimizer, batch size and epochs
/// are fixed, so the kernels that print them can be found by running the engine itself: scan the range on a grid,
/// then bisect, in float32 (the kernel Keras draws is a float32), around every place where a figure crosses its
/// printed value. Each maximal run of kernels that print every figure is one candidate.
public enum InitialKernelSearch {
    /// A figure as printed: its value and how many decimals it showed (Keras's progress bar shows four).
    public struct Figure: Sendable, Equatable {
        public enum Metric: String, Sendable { case loss, rmse, handLoss = "hand loss", handRMSE = "hand rmse" }
        public var metric: Metric
        public var value: Double
        public var decimals: Int
        public init(_ metric: Metric, _ value: Double, decimals: Int) { self.metric = metric; self.value = value; self.decimals = decimals }

        /// A figure as written, e.g. "535.4800" (four decimals); nil unless it is a plain finite decimal number.
        public init?(_ metric: Metric, text: String) {
            guard let value = Double(text), value.isFinite, !text.contains("e"), !text.contains("E") else { return nil }
            self.metric = metric
            self.value = value
            decimals = text.split(separator: ".", maxSplits: 1).dropFirst().first?.count ?? 0
        }

        /// The same figure with its trailing zeros read as padding ("535.4800" as 535.48), or nil if it has none.
        public var withoutTrailingZeros: Figure? {
            var shorter = self
            var unit = 1.0
            for _ in 0..<decimals { unit /= 10 }
            while shorter.decimals > 0 {
                let coarser = unit * 10
                guard (value / coarser).rounded() * coarser == value || abs((value / coarser).rounded() * coarser - value) < unit / 1000 else { break }
                shorter.decimals -= 1
                unit = coarser
            }
            return shorter.decimals < decimals ? shorter : nil
        }

        /// Half a unit in the last printed decimal: how far a value may be from this one and still print as it.
        public var halfUnit: Double {
            var unit = 1.0
            for _ in 0..<max(0, min(decimals, 12)) { unit /= 10 }
            return unit / 2
        }

        /// Whether `actual`, printed with this many decimals, shows this value.
        public func matches(_ actual: Double) -> Bool { abs(actual - value) <= halfUnit * (1 + 1e-12) }
    }

    /// What a run from one kernel prints: the last epoch's logs, and the validation figures after the last update
    /// (the loss a spreadsheet computes from the final weights, when validation is the training data).
    public struct Outcome: Sendable, Equatable {
        public var kernel: Double
        public var loss: Double, rmse: Double
        public var handLoss: Double, handRMSE: Double
        public var finalW: Double, finalB: Double

        public func value(_ metric: Figure.Metric) -> Double {
            switch metric {
            case .loss: loss
            case .rmse: rmse
            case .handLoss: handLoss
            case .handRMSE: handRMSE
            }
        }
    }

    /// One run of kernels (lowest…highest, float32 values) that print every figure, with the run from `kernel`,
    /// the shortest decimal inside it.
    public struct Candidate: Sendable, Equatable {
        public var lowest: Double, highest: Double
        public var outcome: Outcome
        public var kernel: Double { outcome.kernel }
    }

    /// GlorotUniform's limit for a 1×1 kernel: √(6 / (fan_in + fan_out)).
    public static let glorotLimit = Double(Float(3.0.squareRoot()))

    /// The outcome of `spec` started from (kernel, 0), or nil when the run diverges or the spec is invalid.
    public static func outcome(_ spec: JobSpec, kernel: Double) -> Outcome? {
        var spec = spec
        spec.initialization = .constant(kernel: kernel, bias: 0)
        spec.paceMs = 0
        spec.paused = false
        guard var trainer = try? Trainer(spec: spec) else { return nil }
        var last: EpochRecord?
        while let event = trainer.next() {
            switch event {
            case .epoch(let record): last = record
            case .diverged: return nil
            case .step, .finished: break
            }
        }
        guard let last else { return nil }
        return Outcome(kernel: kernel, loss: last.loss, rmse: last.rmse, handLoss: last.valLoss, handRMSE: last.valRmse,
                       finalW: last.w, finalB: last.b)
    }

    /// Every candidate in ±`limit` whose run prints all of `figures` (at least one). `gridPoints` sets the scan's
    /// resolution; a figure that crosses its value and back between two grid points is missed, so it is generous.
    public static func candidates(_ spec: JobSpec, printing figures: [Figure], limit: Double = glorotLimit,
                                  gridPoints: Int = 4_001) -> [Candidate] {
        guard !figures.isEmpty, limit > 0, gridPoints >= 2 else { return [] }
        func matchesAll(_ k: Float) -> Outcome? {
            guard let o = outcome(spec, kernel: Double(k)), figures.allSatisfy({ $0.matches(o.value($0.metric)) }) else { return nil }
            return o
        }

        // 1. The grid, and every place where a figure enters or leaves the band of values that print as it: the
        //    edges of the matching runs are among those places (or next to them).
        let lo = Float(-limit), hi = Float(limit)
        let grid = (0..<gridPoints).map { i in Float(Double(lo) + (Double(hi) - Double(lo)) * Double(i) / Double(gridPoints - 1)) }
        let outcomes = grid.map { outcome(spec, kernel: Double($0)) }
        var seeds: [Float] = []
        for (i, o) in outcomes.enumerated() where o.map({ o in figures.allSatisfy { $0.matches(o.value($0.metric)) } }) == true {
            seeds.append(grid[i])
        }
        for figure in figures {
            let half = figure.halfUnit
            for bound in [figure.value - half, figure.value + half] {
                func gap(_ o: Outcome?) -> Double? { o.map { $0.value(figure.metric) - bound } }
                for i in grid.indices.dropFirst() {
                    guard let a = gap(outcomes[i - 1]), let b = gap(outcomes[i]), (a < 0) != (b < 0) else { continue }
                    // Bisect in float32 to the crossing.
                    var left = grid[i - 1], right = grid[i]
                    while left.nextUp < right {
                        let mid = Float((Double(left) + Double(right)) / 2)
                        guard mid > left, mid < right, let g = gap(outcome(spec, kernel: Double(mid))) else { break }
                        if (g < 0) == (a < 0) { left = mid } else { right = mid }
                    }
                    seeds += [left.nextDown, left, right, right.nextUp]
                }
            }
        }

        // 2. Around each seed that prints every figure, the run of kernels that still do: bisect each edge.
        var found: [Candidate] = []
        for seed in seeds {
            if found.contains(where: { Double(seed) >= $0.lowest && Double(seed) <= $0.highest }) { continue }
            guard matchesAll(seed) != nil else { continue }
            // Walk the grid outwards while it matches, then bisect between the last kernel that matches and the
            // first that does not.
            func edge(_ direction: Int) -> Float {
                var inside = seed
                var index = direction > 0 ? (grid.firstIndex { $0 > seed } ?? grid.count) : (grid.lastIndex { $0 < seed } ?? -1)
                while grid.indices.contains(index), matchesAll(grid[index]) != nil {
                    inside = grid[index]
                    index += direction
                }
                guard grid.indices.contains(index) else { return inside }
                var outside = grid[index]
                while (direction > 0 ? inside.nextUp : inside.nextDown) != outside {
                    let mid = Float((Double(inside) + Double(outside)) / 2)
                    guard mid != inside, mid != outside else { break }
                    if matchesAll(mid) != nil { inside = mid } else { outside = mid }
                }
                return inside
            }
            let low = edge(-1), high = edge(1)
            let kernel = shortestDecimal(in: low, high) ?? seed
            guard let outcome = matchesAll(kernel) ?? matchesAll(seed) else { continue }
            found.append(Candidate(lowest: Double(low), highest: Double(high), outcome: outcome))
        }
        return found.sorted { $0.lowest < $1.lowest }
    }

    /// The float32 in [low, high] written with the fewest significant digits (0.08255 rather than 0.082549736).
    static func shortestDecimal(in low: Float, _ high: Float) -> Float? {
        let middle = (Double(low) + Double(high)) / 2
        for digits in 1...9 {
            var scale = 1.0
            let magnitude = middle == 0 ? 0 : Int((abs(middle)).log10Floor)
            for _ in 0..<max(0, digits - 1 - magnitude) { scale *= 10 }
            for _ in 0..<max(0, magnitude - digits + 1) { scale /= 10 }
            let rounded = Float((middle * scale).rounded() / scale)
            if rounded >= low && rounded <= high { return rounded }
        }
        return nil
    }
}

extension Double {
    /// ⌊log10(self)⌋ for a positive finite value, without Foundation.
    fileprivate var log10Floor: Double {
        var exponent = 0.0, value = self
        while value >= 10 { value /= 10; exponent += 1 }
        while value < 1 { value *= 10; exponent -= 1 }
        return exponent
    }
}
