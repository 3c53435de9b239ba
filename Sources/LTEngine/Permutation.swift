/// ltd's own shuffle orders, for `Shuffle.everyEpoch` and for seeded jobs stored before ltd emulated Keras's
/// shuffle (`JobSpec.keras` nil): a small documented PRNG, reproducible across machines and restarts.
///
/// SplitMix64 (Steele, Lea & Flood 2014) feeds an unbiased bounded draw (Lemire's multiply-shift with rejection),
/// which feeds a Fisher–Yates shuffle from the last position down: for i in n-1 down to 1, swap(i, draw(i+1)).
/// Keras's own permutation is `KerasShuffle`.
public struct SplitMix64: Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1): the top 53 bits.
    public mutating func nextUnit() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Uniform in 0..<bound (bound ≥ 1), without modulo bias.
    public mutating func next(below bound: UInt64) -> UInt64 {
        var m = next().multipliedFullWidth(by: bound)
        if m.low < bound {
            let threshold = (0 &- bound) % bound
            while m.low < threshold { m = next().multipliedFullWidth(by: bound) }
        }
        return m.high
    }
}

enum Permutation {
    /// Fisher–Yates permutation of 0..<n drawn from `seed`.
    static func shuffled(count n: Int, seed: UInt64) -> [Int] {
        guard n > 0 else { return [] }
        var order = [Int](repeating: 0, count: n), elements = Array(0..<n)
        order.withUnsafeMutableBufferPointer { o in
            drawsFromTop(count: n, seed: seed) { i, draw in o[i] = draw }
            elements.withUnsafeMutableBufferPointer { e in swapFromTop(e, draws: o, index: { $0 }) }
        }
        return order
    }

    /// A Fisher–Yates shuffle from the top (for i in n-1 down to 1: swap(i, draw(i+1))) is split in two passes, so that
    /// on a set larger than the caches the generator's arithmetic and the random reads do not wait on each other:
    /// 1. `drawsFromTop` calls `body(i, draw(i+1))` for i = n-1 down to 1, then `body(0, 0)`: the draws in the
    ///    generator's order. The caller stores them and lays out its elements (0..<n in order) in the same pass, a
    ///    sequential write whose memory time hides the draws' arithmetic.
    /// 2. `swapFromTop` makes the swaps, in the same order, and leaves in draws[i] the index of the element settled at
    ///    i: the order the permutation gives the indices, read off in the same pass.
    @inline(__always)
    static func drawsFromTop(count n: Int, seed: UInt64, _ body: (_ position: Int, _ draw: Int) -> Void) {
        guard n > 0 else { return }
        var rng = SplitMix64(seed: seed)
        var i = n &- 1
        while i > 0 {
            body(i, Int(truncatingIfNeeded: rng.next(below: UInt64(i &+ 1))))
            i &-= 1
        }
        body(0, 0)
    }

    /// The swaps of pass 2 (see `drawsFromTop`): `draws` holds draw(i+1) at i (so draws[i] ≤ i), `elements` carry
    /// their `index`.
    /// The swap targets are known ahead, so they are read first, 1,024 side by side (lines stay in L2): the misses
    /// overlap instead of queueing one swap at a time. Then the chunk's swaps, which find their lines cached.
    static func swapFromTop<T>(_ elements: UnsafeMutableBufferPointer<T>, draws: UnsafeMutableBufferPointer<Int>,
                               index: (T) -> Int) {
        let n = min(elements.count, draws.count)
        guard n > 0, let base = elements.baseAddress, let d = draws.baseAddress else { return }
        let chunk = 1_024
        // Zero for any n that fits in memory; the compiler cannot tell, so it keeps the reads that feed it.
        let zero = n >> 62
        var touched = 0
        var i = n &- 1
        while i > 0 {
            let k = min(chunk, i)
            for t in 0..<k { touched &+= index(base[d[i &- t]]) }
            let keep = touched & zero
            for t in 0..<k {
                let p = i &- t
                let top = base + p, drawn = base + (d[p] | keep)
                let settled = drawn.pointee
                drawn.pointee = top.pointee
                top.pointee = settled
                d[p] = index(settled)
            }
            i &-= k
        }
        d[0] = index(base[0])
    }

    /// The seed of epoch `epoch` (1-based) for `.everyEpoch(seed)`: one SplitMix64 step over (seed, epoch), so any
    /// epoch's order can be rebuilt from the spec alone (the checkpoint needs no RNG state).
    static func epochSeed(_ seed: UInt64, epoch: Int) -> UInt64 {
        var rng = SplitMix64(seed: seed ^ (UInt64(truncatingIfNeeded: epoch) &* 0xD1B5_4A32_D192_ED03))
        return rng.next()
    }

    /// The row order of epoch `epoch` (1-based), or nil for dataset order. `keras` is the spec's `JobSpec.keras`.
    static func order(for shuffle: Shuffle, keras: KerasVersion?, count n: Int, epoch: Int) -> [Int]? {
        switch shuffle {
        case .none: nil
        case let .seeded(seed):
            switch keras {
            case .v3_15_1?: KerasShuffle.permutation(count: n, seed: seed)
            case nil: shuffled(count: n, seed: seed)
            }
        case let .everyEpoch(seed): shuffled(count: n, seed: epochSeed(seed, epoch: epoch))
        case let .order(orders): orders.isEmpty ? nil : orders[min(epoch - 1, orders.count - 1)]
        }
    }
}
