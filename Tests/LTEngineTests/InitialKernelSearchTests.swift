import Testing
@testable import LTEngine

/// The learner's run was unseeded: its initial kernel is recovered from what Keras printed.
@Suite("Initial kernel from printed figures")
struct InitialKernelSearchTests {
    static let colab = Dataset(x: (1...12).map(Double.init), y: [5.0, 8.8, 9.6, 14.2, 18.8, 19.5, 21.4, 26.8, 28.9, 32.0, 33.8, 38.2])
    static let learner = JobSpec(data: colab, optimizer: OptimizerSpec(name: .rmsprop, learningRate: 0.05), epochs: 1, batchSize: 12)

    @Test func figuresAsWritten() throws {
        let loss = try #require(InitialKernelSearch.Figure(.loss, text: "535.4800"))
        #expect(loss.decimals == 4 && loss.value == 535.48)
        #expect(loss.withoutTrailingZeros == InitialKernelSearch.Figure(.loss, 535.48, decimals: 2))
        #expect(InitialKernelSearch.Figure(.rmse, text: "23.1405")?.withoutTrailingZeros == nil)
        #expect(InitialKernelSearch.Figure(.loss, text: "1e3") == nil)
        #expect(InitialKernelSearch.Figure(.loss, text: "nan") == nil)
    }

    /// Keras printed loss 535.48 and RMSE 23.1405 for the learner's one-epoch, batch-12 run; the spreadsheet gave
    /// 476.82 from the final weights. Exactly the kernels near 0.08255 print all three.
    @Test func theLearnersRunFromItsPrintedLine() throws {
        let printed: [InitialKernelSearch.Figure] = [.init(.loss, 535.48, decimals: 2), .init(.rmse, 23.1405, decimals: 4)]
        let found = InitialKernelSearch.candidates(Self.learner, printing: printed)
        // The first loss is a parabola in w whose vertex (Σxy/Σx² ≈ 3.2) lies beyond √3: one run of kernels in range.
        #expect(found.count == 1, "\(found)")
        let chosen = found.filter { InitialKernelSearch.Figure(.handLoss, 476.82, decimals: 2).matches($0.outcome.handLoss) }
        #expect(chosen.count == 1, "\(found)")
        let candidate = try #require(chosen.first)
        #expect(candidate.kernel == Double(Float(0.08255)))
        #expect(candidate.lowest <= candidate.kernel && candidate.kernel <= candidate.highest)
        // Every float32 kernel of the run prints the figures, and the ones just outside it do not.
        for k in [candidate.lowest, candidate.highest] {
            let o = try #require(InitialKernelSearch.outcome(Self.learner, kernel: k))
            #expect(printed.allSatisfy { $0.matches(o.value($0.metric)) })
        }
        for k in [Double(Float(candidate.lowest).nextDown), Double(Float(candidate.highest).nextUp)] {
            let o = try #require(InitialKernelSearch.outcome(Self.learner, kernel: k))
            #expect(!printed.allSatisfy { $0.matches(o.value($0.metric)) })
        }
        #expect(candidate.outcome.handRMSE > 21.75 && candidate.outcome.handRMSE < 21.85)
    }

    /// Any epochs and batch size: a run from a known kernel is found again from its own printed figures.
    @Test func aKnownKernelIsFoundAgainFromItsFigures() throws {
        var spec = Self.learner
        spec.epochs = 4
        spec.batchSize = 4
        let truth = try #require(InitialKernelSearch.outcome(spec, kernel: Double(Float(-0.731))))
        func printed(_ v: Double) -> Double { (v * 10_000).rounded() / 10_000 }
        let found = InitialKernelSearch.candidates(spec, printing: [
            .init(.loss, printed(truth.loss), decimals: 4), .init(.rmse, printed(truth.rmse), decimals: 4),
        ])
        #expect(found.contains { $0.lowest <= truth.kernel && truth.kernel <= $0.highest }, "\(found)")
    }

    @Test func figuresNoKernelPrintsGiveNoCandidate() {
        // An RMSE far above what any kernel in ±√3 reaches on these twelve points.
        #expect(InitialKernelSearch.candidates(Self.learner, printing: [.init(.rmse, 99.0, decimals: 1)]).isEmpty)
    }
}
