/// The pieces of TensorFlow's `tf.random.stateless_uniform` (CPU, float32, `alg="auto_select"` → Philox) that a
/// Keras initializer goes through: the seed scramble, the 23-bit float conversion and the scaling to [minval, maxval).
public enum TensorFlowStatelessRandom {
    /// The fixed key of the seed scramble (`GenerateKey` in `stateless_random_ops.cc`; `_philox_scramble_seed`).
    public static let scrambleKey = PhiloxKey(0x3EC8_F720, 0x0246_1E29)

    /// What `StatelessRandomGetKeyCounter` makes of a two-element seed tensor.
    public struct KeyCounter: Sendable, Hashable {
        public var key: PhiloxKey
        public var counter: PhiloxCounter
        public init(key: PhiloxKey, counter: PhiloxCounter) { self.key = key; self.counter = counter }
    }

    /// `StatelessRandomGetKeyCounter(seed)`: each seed element is widened to uint64 (sign-extended, so -1 becomes
    /// 0xFFFF_FFFF_FFFF_FFFF), the pair becomes a counter, and one Philox call under `scrambleKey` gives
    /// key = (word 0, word 1) and counter = (0, 0, word 2, word 3).
    public static func keyCounter(seed0: Int64, seed1: Int64) -> KeyCounter {
        let s0 = UInt64(bitPattern: seed0), s1 = UInt64(bitPattern: seed1)
        let mix = Philox4x32_10.block(counter: PhiloxCounter(u64: s0, s1), key: scrambleKey)
        return KeyCounter(key: PhiloxKey(mix.w0, mix.w1), counter: PhiloxCounter(0, 0, mix.w2, mix.w3))
    }

    /// `Uint32ToFloat`: the float32 in [1, 2) whose mantissa is the low 23 bits of `word`, minus 1 (exact).
    /// The result is a multiple of 2⁻²³ in [0, 1); the high 9 bits of the word are dropped.
    public static func unitUniform(_ word: UInt32) -> Float {
        let oneToTwo = Float(bitPattern: (127 << 23) | (word & 0x7F_FFFF))
        return oneToTwo - 1.0
    }

    /// `rnd * (maxval - minval) + minval` as TF computes it: three separate float32 operations, each rounded to
    /// nearest even (no fused multiply-add).
    public static func scale(unitUniform u: Float, minval: Float, maxval: Float) -> Float {
        scaled(unitUniform: u, minval: minval, maxval: maxval)
    }

    /// The same in any `UpdateArithmetic`, so `explain` shows the formula of the very operations that drew the weight.
    static func scaled<A: UpdateArithmetic>(unitUniform u: A, minval: A, maxval: A) -> A {
        u * (maxval - minval) + minval
    }
}
