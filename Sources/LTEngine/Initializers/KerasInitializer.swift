/// Keras 3 (TensorFlow backend, CPU) initial weights for the (1,1) kernel of `Dense(1)`, bit for bit.
/// The path is KERAS.md §10: Python's `random` → int seed → Keras seed tensor → TF key/counter → Philox → float32.
public enum KerasInitializer {
    /// Which Keras call the draw reproduces.
    public enum Kind: String, Sendable, Hashable {
        /// `keras.initializers.GlorotUniform(seed=s)(shape=(1, 1))`.
        case glorotUniform = "glorot_uniform"
        /// A fresh `Sequential([Dense(1)])` after `keras.utils.set_random_seed(s)`.
        case kerasDefault = "keras_default"
    }

    /// Seeds Keras itself accepts. `GlorotUniform(seed=s)` puts `[s, 0]` in an int64 tensor, so s < 2⁶³;
    /// `set_random_seed(s)` also calls `np.random.seed(s)`, which wants s < 2³². The functions below are defined
    /// for every UInt64; outside these ranges they give what the same arithmetic gives, not what Keras would do.
    public static let glorotUniformSeeds: ClosedRange<UInt64> = 0...UInt64(Int64.max)
    public static let kerasDefaultSeeds: ClosedRange<UInt64> = 0...UInt64(UInt32.max)

    /// `int32.max - 1`: Keras's `_cast_seed` folds int64 seeds into int32 with `floormod(seed, 2147483646)`.
    public static let seedModulus: UInt64 = 2_147_483_646

    /// `random.make_default_seed()`: the range of `random.randint` an unseeded initializer draws its seed from.
    public static let defaultSeedRange: ClosedRange<UInt32> = 1...1_000_000_000

    /// `limit = sqrt(3 * scale)` with scale = 1 / max(1, (fan_in + fan_out) / 2) = 1 for a (1,1) kernel,
    /// computed in double as Python does (1.7320508075688772).
    public static let glorotLimitForOneByOne: Double = (3.0 as Double).squareRoot()

    /// The seed tensor TF receives: int32 `[s mod 2147483646, 0]` (`draw_seed` then `_cast_seed`).
    public static func seedTensor(seed: UInt64) -> SeedTensor {
        SeedTensor(Int32(truncatingIfNeeded: seed % seedModulus), 0)
    }

    /// `keras.initializers.GlorotUniform(seed: seed)` on a (1,1) kernel; the bias of a Dense layer stays 0.
    public static func glorotUniform(seed: UInt64) -> InitialDraw {
        draw(kind: .glorotUniform, seed: seed, initializerSeed: seed)
    }

    /// What `Dense(1)` starts with after `keras.utils.set_random_seed(seed)`: its unseeded `GlorotUniform()` takes
    /// S = `random.randint(1, 10**9)` right after `random.seed(seed)` and draws with seed S; the bias is zeros.
    public static func kerasDefault(seed: UInt64) -> InitialDraw {
        var python = PythonRandom(seed: seed)
        let initializerSeed = python.randint(defaultSeedRange)
        return draw(kind: .kerasDefault, seed: seed, initializerSeed: initializerSeed)
    }

    private static func draw(kind: Kind, seed: UInt64, initializerSeed: UInt64) -> InitialDraw {
        let tensor = seedTensor(seed: initializerSeed)
        let keyCounter = TensorFlowStatelessRandom.keyCounter(seed0: Int64(tensor.s0), seed1: Int64(tensor.s1))
        // A (1,1) tensor is element 0: word 0 of the first Philox call.
        let word = Philox4x32_10.block(counter: keyCounter.counter, key: keyCounter.key).w0
        let unit = TensorFlowStatelessRandom.unitUniform(word)
        let limit = Float(glorotLimitForOneByOne)  // tf.cast of the Python double
        let kernel = TensorFlowStatelessRandom.scale(unitUniform: unit, minval: -limit, maxval: limit)
        return InitialDraw(kind: kind, seed: seed, initializerSeed: initializerSeed, seedTensor: tensor,
                           key: keyCounter.key, counter: keyCounter.counter, philoxWord0: word,
                           unitUniform: unit, limit: limit, kernel: kernel, bias: 0)
    }
}

/// The two int32 elements of the seed tensor that reaches `tf.random.stateless_uniform`.
public struct SeedTensor: Sendable, Hashable {
    public var s0: Int32
    public var s1: Int32
    public init(_ s0: Int32, _ s1: Int32) { self.s0 = s0; self.s1 = s1 }
}

/// One Keras initial-weight draw with every intermediate value, so the story can be told step by step.
public struct InitialDraw: Sendable, Hashable {
    public var kind: KerasInitializer.Kind
    /// The seed the user gave (or the daemon picked).
    public var seed: UInt64
    /// The int seed `GlorotUniform` holds: `seed` itself, or Python's `randint(1, 10**9)` for the Keras default.
    public var initializerSeed: UInt64
    public var seedTensor: SeedTensor
    /// TF's Philox key and counter after `StatelessRandomGetKeyCounter`.
    public var key: PhiloxKey
    public var counter: PhiloxCounter
    /// The 32 random bits behind the kernel; only the low 23 are used.
    public var philoxWord0: UInt32
    /// The raw U[0, 1) float32 before scaling.
    public var unitUniform: Float
    /// float32(√3): the draw is from [-limit, limit).
    public var limit: Float
    public var kernel: Float
    public var bias: Float
}

extension InitialWeightsOrigin {
    /// The start event's account of a Keras draw. `limit` and `unitUniform` are the float32 values TF used, widened.
    public init(_ draw: InitialDraw) {
        self.init(initializer: draw.kind.rawValue, seed: draw.seed, initializerSeed: draw.initializerSeed,
                  limit: Double(draw.limit), unitUniform: Double(draw.unitUniform))
    }
}
