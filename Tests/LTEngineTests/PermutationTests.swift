import Testing
@testable import LTEngine

/// ltd's own shuffle is split in passes over chunks of 1,024 (`Permutation.drawsFromTop`, `swapFromTop`); it must give
/// exactly the permutation of the textbook Fisher–Yates from the top, written here one swap at a time.
@Suite struct PermutationTests {
    static func plainFisherYates(count n: Int, seed: UInt64) -> [Int] {
        var order = Array(0..<n)
        var rng = SplitMix64(seed: seed)
        var i = n - 1
        while i > 0 {
            order.swapAt(i, Int(rng.next(below: UInt64(i + 1))))
            i -= 1
        }
        return order
    }

    /// Where two sequences first differ (nil: equal), so a failure reads as one position, not two long arrays.
    static func firstDifference<T: Equatable>(_ a: [T], _ b: [T]) -> Int? {
        a.count != b.count ? min(a.count, b.count) : a.indices.first { a[$0] != b[$0] }
    }

    /// Sizes around the chunk (one short, exact, one over, several chunks and a remainder) and the smallest ones.
    static let sizes = [0, 1, 2, 3, 7, 1_023, 1_024, 1_025, 2_048, 2_049, 5_000]

    @Test(arguments: [0, 1, 42, 0xDEAD_BEEF, UInt64.max])
    func indicesFollowThePlainShuffle(seed: UInt64) {
        for n in Self.sizes {
            let order = Permutation.shuffled(count: n, seed: seed)
            #expect(Self.firstDifference(order, Self.plainFisherYates(count: n, seed: seed)) == nil, "n = \(n)")
        }
    }

    /// The every-epoch shuffle moves the rows (x, y and index) themselves, epoch after epoch in the same storage: each
    /// epoch's order is the plain shuffle's for that epoch's seed, and each laid-out row is that index's row.
    @Test(arguments: [Precision.float32, .float64])
    func arrangedRowsFollowThePlainShuffle(precision: Precision) {
        for n in [1, 2, 1_023, 1_025, 3_000] {
            let data = Fixtures.line(count: n, seed: UInt64(n), range: 10, noise: 2)
            let spec = JobSpec(data: data, optimizer: OptimizerSpec(name: .sgd), epochs: 3, batchSize: 32,
                               shuffle: .everyEpoch(seed: 99), precision: precision)
            switch precision {
            case .float32: check(Run<Float>(spec: spec, kernel: 0, bias: 0, fingerprint: 0), data: data)
            case .float64: check(Run<Double>(spec: spec, kernel: 0, bias: 0, fingerprint: 0), data: data)
            }
        }
    }

    func check<S: EngineScalar>(_ start: Run<S>, data: Dataset) {
        var run = start
        let n = data.x.count
        for epoch in 1...3 {
            if epoch > 1 { run.beginEpoch(epoch) }
            let expected = Self.plainFisherYates(count: n, seed: Permutation.epochSeed(99, epoch: epoch))
            #expect(Self.firstDifference(run.order ?? [], expected) == nil, "n = \(n), epoch \(epoch)")
            let rows = run.fed.map { [Double($0.x), Double($0.y), Double($0.index)] }
            let wanted = expected.map { [Double(S.keras(data.x[$0])), Double(S.keras(data.y[$0])), Double($0)] }
            #expect(Self.firstDifference(rows, wanted) == nil, "n = \(n), epoch \(epoch)")
        }
    }
}
