/// The parts of CPython's `random.Random` that Keras's default seeding touches: `seed(int)`, `getrandbits(k)`,
/// `_randbelow(n)` and `randint(a, b)`, bit for bit (CPython 3.11 `Lib/random.py` and `Modules/_randommodule.c`).
public struct PythonRandom: Sendable, Hashable {
    public private(set) var twister: MersenneTwister

    /// `random.seed(seed)` for a non-negative int: the seed's 32-bit words, least significant first, feed
    /// `init_by_array` (seed 0 gives the key `[0]`; seeds ≥ 2³² give two words).
    public init(seed: UInt64) {
        twister = MersenneTwister(key: Self.seedKey(seed))
    }

    /// The `init_by_array` key CPython builds from a non-negative int: as few 32-bit words as hold it, at least one.
    public static func seedKey(_ seed: UInt64) -> [UInt32] {
        let low = UInt32(truncatingIfNeeded: seed)
        let high = UInt32(truncatingIfNeeded: seed >> 32)
        return high == 0 ? [low] : [low, high]
    }

    /// `getrandbits(k)` for 0 ≤ k ≤ 64 (k outside is clamped into that range). For k ≤ 32 it is one word shifted
    /// right by 32 − k; above, CPython fills 32-bit words least significant first and shifts only the last one.
    public mutating func getrandbits(_ k: Int) -> UInt64 {
        let bits = min(max(k, 0), 64)
        if bits == 0 { return 0 }
        if bits <= 32 { return UInt64(twister.nextUInt32() >> UInt32(32 - bits)) }
        let low = UInt64(twister.nextUInt32())
        let high = UInt64(twister.nextUInt32() >> UInt32(64 - bits))
        return high << 32 | low
    }

    /// `_randbelow(n)`: a uniform integer in [0, n) by rejection on `getrandbits(n.bit_length())`.
    /// Defined for n > 0; n = 0 returns 0 without drawing (CPython would never return).
    public mutating func randbelow(_ n: UInt64) -> UInt64 {
        guard n > 0 else { return 0 }
        let k = UInt64.bitWidth - n.leadingZeroBitCount
        var r = getrandbits(k)
        while r >= n { r = getrandbits(k) }
        return r
    }

    /// `randint(a, b)`: a uniform integer in the closed range, as `a + _randbelow(b - a + 1)`.
    public mutating func randint(_ range: ClosedRange<UInt32>) -> UInt64 {
        let width = UInt64(range.upperBound) - UInt64(range.lowerBound) + 1
        return UInt64(range.lowerBound) + randbelow(width)
    }
}
