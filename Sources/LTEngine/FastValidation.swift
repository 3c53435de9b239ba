/// O(1)-per-step validation for `ValidationMode.fast`, from sufficient statistics of the validation set.
///
/// For a line, Σ(y − w·x − b)² is a quadratic in (w, b), so it can be evaluated from the count, the means and the
/// centered second moments, all in Double. Writing r_i = (y_i − ȳ) − w·(x_i − x̄) + c with c = ȳ − w·x̄ − b:
///   Σr² = Syy − 2w·Sxy + w²·Sxx + 2c·(Sy − w·Sx) + n·c²
/// where Sx, Sy are the (rounding-level) centered sums. Centering keeps cancellation small: the absolute error is about
/// 1e-16·(Syy + w²·Sxx + n·c²), far below float32's resolution except when the fit is almost perfect relative to the
/// spread of y. The result is rounded once to the job's precision; it is Keras's `evaluate` in exact arithmetic, not
/// its float32 rounding, so it differs from `.exact` by float32 rounding noise (tested ≤ 1e-5 relative; see ENGINE.md).
struct ValidationStatistics: Sendable {
    let count: Double
    let meanX: Double, meanY: Double
    let sx: Double, sy: Double
    let sxx: Double, sxy: Double, syy: Double

    init<S: EngineScalar>(x: [S], y: [S]) {
        let n = Double(x.count)
        var mx = 0.0, my = 0.0
        for i in x.indices { mx += Double(x[i]); my += Double(y[i]) }
        mx /= n; my /= n
        var sx = 0.0, sy = 0.0, sxx = 0.0, sxy = 0.0, syy = 0.0
        for i in x.indices {
            let dx = Double(x[i]) - mx, dy = Double(y[i]) - my
            sx += dx; sy += dy; sxx += dx * dx; sxy += dx * dy; syy += dy * dy
        }
        count = n; meanX = mx; meanY = my
        self.sx = sx; self.sy = sy; self.sxx = sxx; self.sxy = sxy; self.syy = syy
    }

    /// Mean squared error of the line (w, b) over the validation set.
    func meanSquaredError(w: Double, b: Double) -> Double {
        let c = meanY - w * meanX - b
        let total = syy - 2 * w * sxy + w * w * sxx + 2 * c * (sy - w * sx) + count * c * c
        return (total > 0 ? total : total.isNaN ? total : 0) / count
    }

    /// The least-squares line (normal equations), or nil when x has no spread.
    var optimum: Optimum? {
        guard sxx > 0, sxx.isFinite else { return nil }
        let w = sxy / sxx
        let b = meanY - w * meanX
        return Optimum(w: w, b: b, mse: meanSquaredError(w: w, b: b))
    }
}
