/// MT19937 exactly as CPython's `random` module runs it (`Modules/_randommodule.c`, from Matsumoto and Nishimura's
/// `mt19937ar.c`). All arithmetic is on UInt32, wrapping mod 2³².
public struct MersenneTwister: Sendable, Hashable {
    static let stateSize = 624
    static let shift = 397
    static let matrixA: UInt32 = 0x9908_B0DF
    static let upperMask: UInt32 = 0x8000_0000
    static let lowerMask: UInt32 = 0x7FFF_FFFF

    private var state: [UInt32]
    /// Position of the next word to temper; `stateSize` means the state must be regenerated first.
    private var index: Int

    /// `init_genrand(seed)`: the single-word seeding.
    public init(seed: UInt32) {
        state = Self.initialState(seed)
        index = Self.stateSize
    }

    /// `init_by_array(key)`: the seeding CPython uses for every int seed. `key` may be empty (treated as `[0]`,
    /// which is what CPython passes for seed 0).
    public init(key: [UInt32]) {
        let key = key.isEmpty ? [0] : key
        let n = Self.stateSize
        var mt = Self.initialState(19_650_218)
        var i = 1
        var j = 0
        for _ in 0..<max(n, key.count) {
            let previous = mt[i - 1] ^ (mt[i - 1] >> 30)
            mt[i] = (mt[i] ^ (previous &* 1_664_525)) &+ key[j] &+ UInt32(truncatingIfNeeded: j)
            i += 1
            j += 1
            if i >= n { mt[0] = mt[n - 1]; i = 1 }
            if j >= key.count { j = 0 }
        }
        for _ in 0..<(n - 1) {
            let previous = mt[i - 1] ^ (mt[i - 1] >> 30)
            mt[i] = (mt[i] ^ (previous &* 1_566_083_941)) &- UInt32(truncatingIfNeeded: i)
            i += 1
            if i >= n { mt[0] = mt[n - 1]; i = 1 }
        }
        mt[0] = 0x8000_0000  // MSB is 1, assuring a non-zero initial state
        state = mt
        index = n
    }

    private static func initialState(_ seed: UInt32) -> [UInt32] {
        var mt = [UInt32](repeating: 0, count: stateSize)
        mt[0] = seed
        for i in 1..<stateSize {
            mt[i] = 1_812_433_253 &* (mt[i - 1] ^ (mt[i - 1] >> 30)) &+ UInt32(truncatingIfNeeded: i)
        }
        return mt
    }

    /// `genrand_uint32()`: the next tempered 32-bit word.
    public mutating func nextUInt32() -> UInt32 {
        if index >= Self.stateSize { regenerate() }
        var y = state[index]
        index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C_5680
        y ^= (y << 15) & 0xEFC6_0000
        y ^= y >> 18
        return y
    }

    private mutating func regenerate() {
        let n = Self.stateSize
        for k in 0..<n {
            let y = (state[k] & Self.upperMask) | (state[(k + 1) % n] & Self.lowerMask)
            state[k] = state[(k + Self.shift) % n] ^ (y >> 1) ^ ((y & 1) != 0 ? Self.matrixA : 0)
        }
        index = 0
    }
}
