/// Eigen's float reduction order and the fused per-batch kernels (KERAS.md §1).
///
/// `SUM_eigen` adds 8-lane packets into four packet accumulators over blocks of 32, folds them lane-wise
/// (A0 + A1 + A2 + A3), adds the remaining whole packets to that, adds the scalar tail left to right, and finally
/// halves the 8 lanes 8 → 4 → 2 → 1. Lane position depends only on the element's position in the batch, so the
/// kernels compute each batch's values on the fly, in one pass, without a scratch buffer.

/// Where the k-th row of a batch lives in the dataset.
protocol RowMap {
    func row(_ k: Int) -> Int
    func load8<S: EngineScalar>(_ base: UnsafePointer<S>, _ k: Int) -> SIMD8<S>
}

/// Batch rows in dataset order, starting at `start` (no shuffle, and every validation batch).
struct ContiguousRows: RowMap {
    let start: Int
    @inline(__always) func row(_ k: Int) -> Int { start &+ k }
    @inline(__always) func load8<S: EngineScalar>(_ base: UnsafePointer<S>, _ k: Int) -> SIMD8<S> {
        UnsafeRawPointer(base + (start &+ k)).loadUnaligned(as: SIMD8<S>.self)
    }
}

/// Batch rows laid out in feed order inside records of `stride` scalars (the training path's shuffled rows):
/// the k-th row's value is `base[(start + k) · stride]`.
struct StridedRows: RowMap {
    let start: Int, stride: Int
    @inline(__always) func row(_ k: Int) -> Int { (start &+ k) &* stride }
    @inline(__always) func load8<S: EngineScalar>(_ base: UnsafePointer<S>, _ k: Int) -> SIMD8<S> {
        let p = base + (start &+ k) &* stride
        return SIMD8(p[0], p[stride], p[2 &* stride], p[3 &* stride], p[4 &* stride], p[5 &* stride],
                     p[6 &* stride], p[7 &* stride])
    }
}

/// Batch rows taken from an epoch's permutation.
struct PermutedRows: RowMap {
    let order: UnsafePointer<Int>
    @inline(__always) func row(_ k: Int) -> Int { order[k] }
    @inline(__always) func load8<S: EngineScalar>(_ base: UnsafePointer<S>, _ k: Int) -> SIMD8<S> {
        let o = order + k
        return SIMD8(base[o[0]], base[o[1]], base[o[2]], base[o[3]], base[o[4]], base[o[5]], base[o[6]], base[o[7]])
    }
}

@inline(__always)
func horizontalSum<S: EngineScalar>(_ v: SIMD8<S>) -> S {
    let h4 = v.lowHalf + v.highHalf
    let h2 = h4.lowHalf + h4.highHalf
    return h2[0] + h2[1]
}

/// Two `SUM_eigen` reductions over the same n positions at once. `packet(k)` yields positions k..<k+8 and is called
/// in increasing k, then `element(k)` for the scalar tail, so side effects (the FMA chain) see rows in batch order.
@inline(__always)
func eigenReduce2<S: EngineScalar>(count n: Int, packet: (Int) -> (SIMD8<S>, SIMD8<S>),
                                    element: (Int) -> (S, S)) -> (S, S) {
    var accA = SIMD8<S>(), accB = SIMD8<S>()
    var k = 0
    if n >= 32 {
        var a0 = SIMD8<S>(), a1 = SIMD8<S>(), a2 = SIMD8<S>(), a3 = SIMD8<S>()
        var b0 = SIMD8<S>(), b1 = SIMD8<S>(), b2 = SIMD8<S>(), b3 = SIMD8<S>()
        let end = n & ~31
        while k < end {
            let p0 = packet(k); a0 += p0.0; b0 += p0.1
            let p1 = packet(k &+ 8); a1 += p1.0; b1 += p1.1
            let p2 = packet(k &+ 16); a2 += p2.0; b2 += p2.1
            let p3 = packet(k &+ 24); a3 += p3.0; b3 += p3.1
            k &+= 32
        }
        accA = a0; accA += a1; accA += a2; accA += a3
        accB = b0; accB += b1; accB += b2; accB += b3
    }
    while k &+ 8 <= n {
        let p = packet(k); accA += p.0; accB += p.1
        k &+= 8
    }
    var tailA: S = 0, tailB: S = 0
    while k < n {
        let e = element(k); tailA = tailA + e.0; tailB = tailB + e.1
        k &+= 1
    }
    return (tailA + horizontalSum(accA), tailB + horizontalSum(accB))
}

/// One `SUM_eigen` reduction (see `eigenReduce2`).
@inline(__always)
func eigenReduce1<S: EngineScalar>(count n: Int, packet: (Int) -> SIMD8<S>, element: (Int) -> S) -> S {
    var acc = SIMD8<S>()
    var k = 0
    if n >= 32 {
        var a0 = SIMD8<S>(), a1 = SIMD8<S>(), a2 = SIMD8<S>(), a3 = SIMD8<S>()
        let end = n & ~31
        while k < end {
            a0 += packet(k); a1 += packet(k &+ 8); a2 += packet(k &+ 16); a3 += packet(k &+ 24)
            k &+= 32
        }
        acc = a0; acc += a1; acc += a2; acc += a3
    }
    while k &+ 8 <= n {
        acc += packet(k)
        k &+= 8
    }
    var tail: S = 0
    while k < n {
        tail = tail + element(k)
        k &+= 1
    }
    return tail + horizontalSum(acc)
}

/// What one training batch contributes, all at the pre-update weights.
struct BatchSums<S: EngineScalar> {
    /// SUM_eigen of d_i², d_i = y_i - pred_i: the loss numerator and the RMSE metric's increment.
    var squaredErrors: S
    var gradW: S
    var gradB: S
}

/// Sees each row of a batch as `batchSums` computes it, in batch order (`explain`'s table of rows).
protocol RowObserver {
    associatedtype Scalar: EngineScalar
    /// Row `k` of the batch (dataset row `row`); `gradWSoFar` is the FMA chain after this row.
    mutating func observe(_ k: Int, row: Int, x: Scalar, y: Scalar, prediction: Scalar, error: Scalar,
                          squaredError: Scalar, gradientPart: Scalar, gradWSoFar: Scalar)
}

/// The training path: sees nothing, and compiles away.
struct IgnoreRows<S: EngineScalar>: RowObserver {
    @inline(__always) mutating func observe(_ k: Int, row: Int, x: S, y: S, prediction: S, error: S,
                                            squaredError: S, gradientPart: S, gradWSoFar: S) {}
}

/// Forward pass, loss numerator and both gradients of one batch in a single pass (KERAS.md §1):
/// pred = f32(x·w) + b, d = y − pred, gpred = −(c·(2d)) with c = f32(1/n), g_b = SUM_eigen(gpred),
/// g_w = FMA chain acc = fma(x_i, gpred_i, acc) in batch order. `observer` sees every row's values as computed here.
@inline(__always)
func batchSums<S: EngineScalar, R: RowMap, O: RowObserver>(x: UnsafePointer<S>, y: UnsafePointer<S>, rows: R,
                                                           count n: Int, w: S, b: S,
                                                           observer: inout O) -> BatchSums<S> where O.Scalar == S {
    let c = 1 / S(n)
    let wv = SIMD8<S>(repeating: w), bv = SIMD8<S>(repeating: b), cv = SIMD8<S>(repeating: c)
    var gradW: S = 0
    let (sq, gb) = eigenReduce2(count: n, packet: { k -> (SIMD8<S>, SIMD8<S>) in
        let xv = rows.load8(x, k), yv = rows.load8(y, k)
        let pred = xv * wv + bv
        let d = yv - pred
        let g = -(cv * (d + d))
        let squares = d * d
        for lane in 0..<8 {
            gradW = gradW.addingProduct(xv[lane], g[lane])
            observer.observe(k &+ lane, row: rows.row(k &+ lane), x: xv[lane], y: yv[lane], prediction: pred[lane],
                             error: d[lane], squaredError: squares[lane], gradientPart: g[lane], gradWSoFar: gradW)
        }
        return (squares, g)
    }, element: { k -> (S, S) in
        let r = rows.row(k)
        let xi = x[r]
        let pred = xi * w + b
        let d = y[r] - pred
        let g = -(c * (d + d))
        gradW = gradW.addingProduct(xi, g)
        let square = d * d
        observer.observe(k, row: r, x: xi, y: y[r], prediction: pred, error: d, squaredError: square,
                         gradientPart: g, gradWSoFar: gradW)
        return (square, g)
    })
    return BatchSums(squaredErrors: sq, gradW: gradW, gradB: gb)
}

/// `batchSums` without an observer: the training path.
@inline(__always)
func batchSums<S: EngineScalar, R: RowMap>(x: UnsafePointer<S>, y: UnsafePointer<S>, rows: R, count n: Int,
                                           w: S, b: S) -> BatchSums<S> {
    var ignore = IgnoreRows<S>()
    return batchSums(x: x, y: y, rows: rows, count: n, w: w, b: b, observer: &ignore)
}

/// SUM_eigen of squared errors over `count` validation rows from `start`, in dataset order.
@inline(__always)
func squaredErrorSum<S: EngineScalar>(x: UnsafePointer<S>, y: UnsafePointer<S>, start: Int, count n: Int,
                                      w: S, b: S) -> S {
    let rows = ContiguousRows(start: start)
    let wv = SIMD8<S>(repeating: w), bv = SIMD8<S>(repeating: b)
    return eigenReduce1(count: n, packet: { k -> SIMD8<S> in
        let d = rows.load8(y, k) - (rows.load8(x, k) * wv + bv)
        return d * d
    }, element: { k -> S in
        let r = start &+ k
        let d = y[r] - (x[r] * w + b)
        return d * d
    })
}

/// Keras's `evaluate(x, y, batch_size: batch)` totals over `count` rows in dataset order (KERAS.md §6): for each batch
/// in order, with sq = SUM_eigen(d²) and s = f32(its size), `loss += (sq / s) · s` and `squares += sq`.
///
/// Those two running sums are the only dependency chains; everything else (predictions, errors, squares, each batch's
/// own sum) is independent of them and written so the CPU can run it ahead: eight rows at a time for batch 1, eight
/// batches' left-to-right sums side by side below 8 (`SUM_eigen` of n < 8 is left to right), `squaredErrorSum` above.
@inline(__always)
func evaluateTotals<S: EngineScalar>(x: UnsafePointer<S>, y: UnsafePointer<S>, count nv: Int, batch: Int,
                                     w: S, b: S) -> (loss: S, squares: S) {
    let wv = SIMD8<S>(repeating: w), bv = SIMD8<S>(repeating: b)
    var loss: S = 0, squares: S = 0
    var first = 0
    if batch == 1 {
        // (sq / 1) · 1 is sq exactly (NaN and inf included), so both chains are one chain.
        while first &+ 8 <= nv {
            let d = UnsafeRawPointer(y + first).loadUnaligned(as: SIMD8<S>.self)
                - (UnsafeRawPointer(x + first).loadUnaligned(as: SIMD8<S>.self) * wv + bv)
            let sq = d * d
            for lane in 0..<8 { squares = squares + sq[lane] }
            first &+= 8
        }
        while first < nv {
            let d = y[first] - (x[first] * w + b)
            squares = squares + d * d
            first &+= 1
        }
        return (squares, squares)
    }
    if batch < 8 {
        // Eight whole batches at once: lane j sums batch j's squares left to right.
        let s = S(batch), sv = SIMD8<S>(repeating: s)
        let stride = 8 &* batch
        while first &+ stride <= nv {
            var sq = SIMD8<S>()
            for i in 0..<batch {
                var xv = SIMD8<S>(), yv = SIMD8<S>()
                for lane in 0..<8 {
                    xv[lane] = x[first &+ lane &* batch &+ i]
                    yv[lane] = y[first &+ lane &* batch &+ i]
                }
                let d = yv - (xv * wv + bv)
                sq = i == 0 ? d * d : sq + d * d
            }
            let scaled = (sq / sv) * sv
            for lane in 0..<8 {
                loss = loss + scaled[lane]
                squares = squares + sq[lane]
            }
            first &+= stride
        }
    }
    while first < nv {
        let size = min(batch, nv &- first)
        let sq = squaredErrorSum(x: x, y: y, start: first, count: size, w: w, b: b)
        let s = S(size)
        loss = loss + (sq / s) * s
        squares = squares + sq
        first &+= size
    }
    return (loss, squares)
}
