/// Philox-4x32-10, the counter-based generator TensorFlow uses for stateless random ops
/// (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11; TF `philox_random.h`).
///
/// A 128-bit counter and a 64-bit key map to four 32-bit words. Nothing else is stateful: the same counter and key
/// always give the same block, which is why a seeded Keras initializer is repeatable.

/// The 64-bit Philox key as two 32-bit words; `k0` is the low half.
public struct PhiloxKey: Sendable, Hashable {
    public var k0: UInt32
    public var k1: UInt32
    public init(_ k0: UInt32, _ k1: UInt32) { self.k0 = k0; self.k1 = k1 }
    /// TF's uint64 form of the key: `k0 | k1 << 32`.
    public init(u64: UInt64) { self.init(UInt32(truncatingIfNeeded: u64), UInt32(truncatingIfNeeded: u64 >> 32)) }
    public var u64: UInt64 { UInt64(k1) << 32 | UInt64(k0) }
}

/// The 128-bit Philox counter as four 32-bit words; `c0` is the least significant.
public struct PhiloxCounter: Sendable, Hashable {
    public var c0: UInt32
    public var c1: UInt32
    public var c2: UInt32
    public var c3: UInt32
    public init(_ c0: UInt32, _ c1: UInt32, _ c2: UInt32, _ c3: UInt32) {
        self.c0 = c0; self.c1 = c1; self.c2 = c2; self.c3 = c3
    }
    /// TF's form of the counter: two uint64, `[c0 | c1 << 32, c2 | c3 << 32]`.
    public init(u64 low: UInt64, _ high: UInt64) {
        self.init(UInt32(truncatingIfNeeded: low), UInt32(truncatingIfNeeded: low >> 32),
                  UInt32(truncatingIfNeeded: high), UInt32(truncatingIfNeeded: high >> 32))
    }
    public var u64: (low: UInt64, high: UInt64) {
        (UInt64(c1) << 32 | UInt64(c0), UInt64(c3) << 32 | UInt64(c2))
    }
    /// The next counter as a 128-bit number, wrapping at 2¹²⁸ (TF's `SkipOne`).
    public func incremented() -> PhiloxCounter {
        var next = self
        next.c0 &+= 1
        guard next.c0 == 0 else { return next }
        next.c1 &+= 1
        guard next.c1 == 0 else { return next }
        next.c2 &+= 1
        guard next.c2 == 0 else { return next }
        next.c3 &+= 1
        return next
    }
}

/// Four output words of one Philox call. A tensor's element i is word `i % 4` of call `i / 4`.
public struct PhiloxBlock: Sendable, Hashable {
    public var w0: UInt32
    public var w1: UInt32
    public var w2: UInt32
    public var w3: UInt32
    public init(_ w0: UInt32, _ w1: UInt32, _ w2: UInt32, _ w3: UInt32) {
        self.w0 = w0; self.w1 = w1; self.w2 = w2; self.w3 = w3
    }
    public var words: [UInt32] { [w0, w1, w2, w3] }
}

/// A Philox-4x32-10 stream: each `next()` returns the block for the current counter, then advances the counter by one.
public struct Philox4x32_10: Sendable, Hashable {
    public var key: PhiloxKey
    public var counter: PhiloxCounter

    public init(key: PhiloxKey, counter: PhiloxCounter) { self.key = key; self.counter = counter }

    // Round multipliers and Weyl key increments (Random123; TF philox_random.h:195-198).
    static let m0: UInt32 = 0xD251_1F53
    static let m1: UInt32 = 0xCD9E_8D57
    static let w0: UInt32 = 0x9E37_79B9
    static let w1: UInt32 = 0xBB67_AE85
    static let rounds = 10

    /// The block for one counter and key: ten rounds, the key raised between rounds (on a copy, so the key is reusable).
    public static func block(counter: PhiloxCounter, key: PhiloxKey) -> PhiloxBlock {
        var c = counter
        var k = key
        for round in 0..<rounds {
            let product0 = UInt64(m0) * UInt64(c.c0)
            let product1 = UInt64(m1) * UInt64(c.c2)
            let hi0 = UInt32(truncatingIfNeeded: product0 >> 32), lo0 = UInt32(truncatingIfNeeded: product0)
            let hi1 = UInt32(truncatingIfNeeded: product1 >> 32), lo1 = UInt32(truncatingIfNeeded: product1)
            c = PhiloxCounter(hi1 ^ c.c1 ^ k.k0, lo1, hi0 ^ c.c3 ^ k.k1, lo0)
            if round < rounds - 1 {
                k.k0 &+= w0
                k.k1 &+= w1
            }
        }
        return PhiloxBlock(c.c0, c.c1, c.c2, c.c3)
    }

    /// The block for the current counter; then the counter moves on by one.
    public mutating func next() -> PhiloxBlock {
        let result = Self.block(counter: counter, key: key)
        counter = counter.incremented()
        return result
    }
}
