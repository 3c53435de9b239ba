import Testing
@testable import LTEngine

/// SUM_eigen written as KERAS.md §1 states it, on an array, as the reference for the streaming kernels.
func referenceEigenSum(_ v: [Float]) -> Float {
    let n = v.count
    var acc0 = [Float](repeating: 0, count: 8)
    var i = 0
    if n >= 32 {
        var a = [[Float]](repeating: [Float](repeating: 0, count: 8), count: 4)
        while i + 32 <= n {
            for p in 0..<4 { for l in 0..<8 { a[p][l] = a[p][l] + v[i + 8 * p + l] } }
            i += 32
        }
        acc0 = a[0]
        for p in 1..<4 { for l in 0..<8 { acc0[l] = acc0[l] + a[p][l] } }
    }
    while i + 8 <= n {
        for l in 0..<8 { acc0[l] = acc0[l] + v[i + l] }
        i += 8
    }
    var tail: Float = 0
    for j in i..<n { tail = tail + v[j] }
    var h = acc0
    for k in 0..<4 { h[k] = h[k] + h[k + 4] }
    for k in 0..<2 { h[k] = h[k] + h[k + 2] }
    return tail + (h[0] + h[1])
}

@Suite struct ReductionTests {
    @Test(arguments: [0, 1, 3, 7, 8, 9, 31, 32, 33, 40, 63, 64, 65, 100, 257, 1000])
    func streamingKernelsFollowEigenOrder(n: Int) {
        let data = Fixtures.line(count: n, seed: UInt64(n), range: 50, noise: 7)
        let x = data.x.map { Float($0) }, y = data.y.map { Float($0) }
        let w: Float = 0.37, b: Float = -1.3
        let d = (0..<n).map { y[$0] - (x[$0] * w + b) }
        let c = 1 / Float(n)
        let g = d.map { -(c * ($0 + $0)) }
        var chain: Float = 0
        for i in 0..<n { chain = chain.addingProduct(x[i], g[i]) }
        let expectedSquares = referenceEigenSum(d.map { $0 * $0 })
        let expectedGradB = referenceEigenSum(g)
        let sums = x.withUnsafeBufferPointer { xp in
            y.withUnsafeBufferPointer { yp in
                batchSums(x: xp.baseAddress!, y: yp.baseAddress!, rows: ContiguousRows(start: 0), count: n, w: w, b: b)
            }
        }
        let evaluated = x.withUnsafeBufferPointer { xp in
            y.withUnsafeBufferPointer { yp in
                squaredErrorSum(x: xp.baseAddress!, y: yp.baseAddress!, start: 0, count: n, w: w, b: b)
            }
        }
        if n > 0 {
            #expect(sums.squaredErrors.bitPattern == expectedSquares.bitPattern)
            #expect(sums.gradB.bitPattern == expectedGradB.bitPattern)
            #expect(sums.gradW.bitPattern == chain.bitPattern)
        }
        #expect(evaluated.bitPattern == expectedSquares.bitPattern)
        // The permuted path reads rows through the order and must give the same sums for the identity order.
        let order = Array(0..<n)
        let permuted = x.withUnsafeBufferPointer { xp in
            y.withUnsafeBufferPointer { yp in
                order.withUnsafeBufferPointer { op in
                    batchSums(x: xp.baseAddress!, y: yp.baseAddress!, rows: PermutedRows(order: op.baseAddress!),
                              count: n, w: w, b: b)
                }
            }
        }
        if n > 0 {
            #expect(permuted.squaredErrors.bitPattern == sums.squaredErrors.bitPattern)
            #expect(permuted.gradW.bitPattern == sums.gradW.bitPattern && permuted.gradB.bitPattern == sums.gradB.bitPattern)
        }
    }
}

@Suite struct FastValidationTests {
    /// `.fast` evaluates the same MSE in Double from sufficient statistics; against `.exact` (Keras's float32
    /// evaluate) it differs only by float32 rounding: within 1e-5 relative on these runs, usually a few ULPs.
    @Test(arguments: [(12, 4), (200, 16), (5000, 64), (20000, 20000)])
    func fastStaysCloseToExact(n: Int, batch: Int) throws {
        let data = Fixtures.line(count: n, seed: UInt64(n), range: 10, noise: 2)
        let validation = Fixtures.line(count: n / 2 + 1, seed: 99, range: 10, noise: 2)
        var exactSpec = JobSpec(data: data, validation: validation, optimizer: OptimizerSpec(name: .adam, learningRate: 0.1),
                                epochs: 2, batchSize: batch)
        var fastSpec = exactSpec
        fastSpec.validationMode = .fast
        exactSpec.validationMode = .exact
        var exact = try Trainer(spec: exactSpec), fast = try Trainer(spec: fastSpec)
        var worst = 0.0
        while let e = exact.next(), let f = fast.next() {
            guard case let .step(a) = e, case let .step(b) = f else { continue }
            #expect(a.wAfter == b.wAfter && a.loss == b.loss)     // training itself is unaffected
            worst = max(worst, abs(a.valLoss - b.valLoss) / a.valLoss, abs(a.valRmse - b.valRmse) / a.valRmse)
        }
        #expect(worst <= 1e-5, "worst relative difference \(worst)")
    }
}

@Suite struct EvaluateTests {
    /// `evaluate` splits the validation set with the training batch size even when it exceeds the training N.
    @Test func validationBatchesUseTheGivenBatchSize() throws {
        let validation = Fixtures.line(count: 45, seed: 8, range: 10, noise: 3)
        let spec = JobSpec(data: Dataset(x: [1, 2, 3, 4], y: [2, 4, 6, 8.5]), validation: validation,
                           initialization: .constant(kernel: 0.3, bias: 0.2),
                           optimizer: OptimizerSpec(name: .sgd, learningRate: 0.01), epochs: 1, batchSize: 40)
        var trainer = try Trainer(spec: spec)
        guard case let .step(s) = trainer.next() else { Issue.record("no step"); return }
        let w = Float(s.wAfter), b = Float(s.bAfter)
        let vx = validation.x.map { Float($0) }, vy = validation.y.map { Float($0) }
        var lossTotal: Float = 0, squares: Float = 0, count: Float = 0
        for first in stride(from: 0, to: 45, by: 40) {
            let rows = first..<min(first + 40, 45)
            let sq = referenceEigenSum(rows.map { let d = vy[$0] - (vx[$0] * w + b); return d * d })
            let n = Float(rows.count)
            lossTotal = lossTotal + (sq / n) * n; squares = squares + sq; count = count + n
        }
        #expect(Float(s.valLoss).bitPattern == (lossTotal / count).bitPattern)
        #expect(Float(s.valRmse).bitPattern == (squares / count).squareRoot().bitPattern)
    }
}

@Suite struct EvaluateTotalsTests {
    /// Keras's evaluate written out batch by batch on arrays, as the reference for `evaluateTotals`'s paths
    /// (batch 1, batches below 8 side by side, larger batches), at every split of the set, partial last batch included.
    @Test(arguments: [1, 2, 3, 4, 5, 7, 8, 9, 16, 31, 32, 33, 40, 100])
    func evaluateTotalsFollowKerasOrder(batch: Int) {
        for nv in [1, 2, 7, 8, 9, 15, 16, 17, 56, 63, 64, 65, 129, 1000] {
            let data = Fixtures.line(count: nv, seed: UInt64(nv * 131 + batch), range: 50, noise: 7)
            var x = data.x.map { Float($0) }, y = data.y.map { Float($0) }
            if nv == 129 { x[13] = 3e19; y[nv - 2] = .infinity }     // huge and infinite squares
            for (w, b) in [(Float(0.37), Float(-1.3)), (Float(2.5e-3), Float(40))] {
                var loss: Float = 0, squares: Float = 0
                for first in stride(from: 0, to: nv, by: batch) {
                    let rows = first..<min(first + batch, nv)
                    let sq = referenceEigenSum(rows.map { let d = y[$0] - (x[$0] * w + b); return d * d })
                    let n = Float(rows.count)
                    loss = loss + (sq / n) * n; squares = squares + sq
                }
                let totals = x.withUnsafeBufferPointer { xp in
                    y.withUnsafeBufferPointer { yp in
                        evaluateTotals(x: xp.baseAddress!, y: yp.baseAddress!, count: nv, batch: batch, w: w, b: b)
                    }
                }
                #expect(totals.loss.bitPattern == loss.bitPattern || (totals.loss.isNaN && loss.isNaN),
                        "nv \(nv), batch \(batch): loss \(totals.loss) vs \(loss)")
                #expect(totals.squares.bitPattern == squares.bitPattern || (totals.squares.isNaN && squares.isNaN),
                        "nv \(nv), batch \(batch): squares \(totals.squares) vs \(squares)")
            }
        }
    }
}
