import Foundation
import Testing
import LTEngine

/// `golden/init_draws.json`: real Keras 3.15.1 / TF 2.21.0 draws (copied into Fixtures/ so CI clones have it).
struct InitDraws: Decodable {
    struct Float32Value: Decodable {
        var value: Double
        var hex: String
        var bits: String
    }
    struct Seeded: Decodable {
        var seed: UInt64
        var shape: [Int]
        var value: Double
        var hex: String
        var bits: String
        var tf_key_u64: String
        var tf_counter_u64: [String]
        var unit_uniform: Float32Value
    }
    struct Dense: Decodable {
        var seed: UInt64
        var kernel: Float32Value
        var bias: Float32Value
        var kernel_initializer: String
        var kernel_initializer_seed: UInt64
        var tf_key_u64: String
        var tf_counter_u64: [String]
    }
    var glorot_uniform_seeded: [Seeded]
    var dense_after_set_random_seed: [Dense]

    static func load() throws -> InitDraws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/init_draws.json")
        return try JSONDecoder().decode(InitDraws.self, from: Data(contentsOf: url))
    }
}

struct FixtureError: Error, CustomStringConvertible { var description: String }

func hexUInt64(_ text: String) throws -> UInt64 {
    guard let value = UInt64(text, radix: 16) else { throw FixtureError(description: "not hex: \(text)") }
    return value
}

func hexUInt32(_ text: String) throws -> UInt32 {
    guard let value = UInt32(text, radix: 16) else { throw FixtureError(description: "not hex: \(text)") }
    return value
}

/// Checks a float32 against a recorded (value, bits) pair: the exact value and the bit pattern.
func expectFloat32(_ actual: Float, value: Double, bits: String, _ what: String) throws {
    #expect(actual.bitPattern == (try hexUInt32(bits)), "\(what): bits \(String(actual.bitPattern, radix: 16))")
    #expect(Double(actual) == value, "\(what): \(Double(actual)) vs \(value)")
}

extension InitializerTests {
    @Suite struct KerasGolden {
        @Test func fixtureHoldsSixteenSeedsOfEachKind() throws {
            let draws = try InitDraws.load()
            #expect(draws.glorot_uniform_seeded.map(\.seed) == Array(0...15))
            #expect(draws.dense_after_set_random_seed.map(\.seed) == Array(0...15))
        }

        @Test func everyGlorotUniformSeededDrawIsReproducedBitForBit() throws {
            for entry in try InitDraws.load().glorot_uniform_seeded {
                #expect(entry.shape == [1, 1])
                let draw = KerasInitializer.glorotUniform(seed: entry.seed)
                let what = "GlorotUniform(seed=\(entry.seed))"
                #expect(draw.kind == .glorotUniform)
                #expect(draw.seed == entry.seed)
                #expect(draw.initializerSeed == entry.seed)
                #expect(draw.seedTensor == SeedTensor(Int32(entry.seed), 0))
                #expect(draw.key.u64 == (try hexUInt64(entry.tf_key_u64)), "\(what) key")
                #expect(entry.tf_counter_u64.count == 2)
                #expect(draw.counter.u64.low == (try hexUInt64(entry.tf_counter_u64[0])), "\(what) counter[0]")
                #expect(draw.counter.u64.high == (try hexUInt64(entry.tf_counter_u64[1])), "\(what) counter[1]")
                try expectFloat32(draw.unitUniform, value: entry.unit_uniform.value, bits: entry.unit_uniform.bits,
                                  "\(what) unit uniform")
                try expectFloat32(draw.kernel, value: entry.value, bits: entry.bits, "\(what) value")
                #expect(draw.bias.bitPattern == 0)
            }
        }

        @Test func everyDenseDefaultDrawIsReproducedBitForBit() throws {
            for entry in try InitDraws.load().dense_after_set_random_seed {
                let draw = KerasInitializer.kerasDefault(seed: entry.seed)
                let what = "Dense(1) after set_random_seed(\(entry.seed))"
                #expect(entry.kernel_initializer == "GlorotUniform")
                #expect(draw.kind == .kerasDefault)
                #expect(draw.seed == entry.seed)
                #expect(draw.initializerSeed == entry.kernel_initializer_seed, "\(what) kernel_initializer_seed")
                #expect(draw.seedTensor == SeedTensor(Int32(entry.kernel_initializer_seed), 0))
                #expect(draw.key.u64 == (try hexUInt64(entry.tf_key_u64)), "\(what) key")
                #expect(draw.counter.u64.low == (try hexUInt64(entry.tf_counter_u64[0])), "\(what) counter[0]")
                #expect(draw.counter.u64.high == (try hexUInt64(entry.tf_counter_u64[1])), "\(what) counter[1]")
                try expectFloat32(draw.kernel, value: entry.kernel.value, bits: entry.kernel.bits, "\(what) kernel")
                try expectFloat32(draw.bias, value: entry.bias.value, bits: entry.bias.bits, "\(what) bias")
            }
        }

        /// KERAS.md §10.6, `GlorotUniform(seed=7)`: the kernel of golden case `adam_b1_e2_glorot`.
        @Test func workedValuesForGlorotSeed7() {
            let draw = KerasInitializer.glorotUniform(seed: 7)
            #expect(draw.seedTensor == SeedTensor(7, 0))
            #expect(draw.key == PhiloxKey(0x2C8A_64FD, 0xFF7D_B268))
            #expect(draw.counter == PhiloxCounter(0, 0, 0x8896_7F85, 0x3676_09EB))
            #expect(draw.philoxWord0 == 0xFC5F_A047)
            #expect(draw.unitUniform == 0.7470787763595581)
            #expect(draw.unitUniform.bitPattern == 0x3F3F_408E)
            #expect(draw.limit.bitPattern == 0x3FDD_B3D7)
            #expect(Double(draw.limit) == 1.7320507764816284)
            #expect(draw.kernel == 0.8559058904647827)
            #expect(draw.kernel.bitPattern == 0x3F5B_1CA6)
        }

        /// KERAS.md §10.6, Dense kernel after `set_random_seed(3)`: golden case `sgd_b12_e1_glorot_default_seed3`.
        @Test func workedValuesForKerasDefaultSeed3() {
            let draw = KerasInitializer.kerasDefault(seed: 3)
            #expect(draw.initializerSeed == 255_512_576)
            #expect(draw.seedTensor == SeedTensor(255_512_576, 0))
            #expect(draw.key == PhiloxKey(0x5C9D_0EE6, 0xDB3F_29D8))
            #expect(draw.counter == PhiloxCounter(0, 0, 0x4445_43EA, 0xE95E_F7A4))
            #expect(draw.philoxWord0 == 0xF63F_BC38)
            #expect(draw.unitUniform.bitPattern == 0x3EFE_F0E0)
            #expect(draw.kernel == -0.00716555118560791)
            #expect(draw.kernel.bitPattern == 0xBBEA_CD00)
            #expect(draw.bias == 0)
        }

        /// `_cast_seed` folds seeds mod 2147483646 = int32.max − 1: 2³¹+5 and 2³²+3 both behave like 7.
        static let seedsLikeSeven: [UInt64] = [
            (1 << 31) + 5, (1 << 32) + 3, 2_147_483_646 * 1000 + 7,
            UInt64(Int64.max) - (UInt64(Int64.max) % 2_147_483_646) + 7 - 2_147_483_646,
        ]

        @Test(arguments: seedsLikeSeven)
        func largeGlorotSeedsWrapLikeKeras(seed: UInt64) {
            let draw = KerasInitializer.glorotUniform(seed: seed)
            let seven = KerasInitializer.glorotUniform(seed: 7)
            #expect(draw.seed == seed)
            #expect(draw.initializerSeed == seed)
            #expect(draw.seedTensor == SeedTensor(7, 0))
            #expect(draw.kernel.bitPattern == seven.kernel.bitPattern)
            #expect(draw.kernel == 0.8559058904647827)
        }

        @Test func seedsAtTheModulusWrapToZero() throws {
            let zero = try InitDraws.load().glorot_uniform_seeded[0]
            #expect(KerasInitializer.seedTensor(seed: 2_147_483_646) == SeedTensor(0, 0))
            #expect(KerasInitializer.glorotUniform(seed: 2_147_483_646).kernel.bitPattern == (try hexUInt32(zero.bits)))
            #expect(KerasInitializer.seedTensor(seed: 2_147_483_645) == SeedTensor(2_147_483_645, 0))
            #expect(KerasInitializer.seedTensor(seed: UInt64.max) == SeedTensor(Int32(UInt64.max % 2_147_483_646), 0))
        }

        /// Seeds ≥ 2³¹ and ≥ 2³² for the Keras default: S comes from CPython's `random.seed(s); randint(1, 10**9)`
        /// (two key words from 2³²), then the draw is GlorotUniform(S).
        static let largeDefaultSeeds: [(seed: UInt64, pythonRandint: UInt64)] = [
            ((1 << 31) + 5, 954_451_238), (0xFFFF_FFFF, 682_209_859),
            (1 << 32, 121_326_710), ((1 << 32) + 7, 242_138_326),
        ]

        @Test(arguments: largeDefaultSeeds)
        func largeKerasDefaultSeeds(seed: UInt64, pythonRandint: UInt64) {
            let draw = KerasInitializer.kerasDefault(seed: seed)
            #expect(draw.seed == seed)
            #expect(draw.initializerSeed == pythonRandint)
            let glorot = KerasInitializer.glorotUniform(seed: pythonRandint)
            #expect(draw.kernel.bitPattern == glorot.kernel.bitPattern)
            #expect(draw.key == glorot.key)
            #expect(draw.unitUniform == glorot.unitUniform)
            #expect(draw.bias == 0)
        }

        @Test func acceptedSeedRangesFollowKeras() {
            #expect(KerasInitializer.glorotUniformSeeds.upperBound == 9_223_372_036_854_775_807)
            #expect(KerasInitializer.kerasDefaultSeeds.upperBound == 4_294_967_295)
            #expect(KerasInitializer.glorotLimitForOneByOne == 1.7320508075688772)
        }

        @Test func originCarriesTheStory() {
            let origin = InitialWeightsOrigin(KerasInitializer.kerasDefault(seed: 3))
            #expect(origin.initializer == "keras_default")
            #expect(origin.seed == 3)
            #expect(origin.initializerSeed == 255_512_576)
            #expect(origin.limit == 1.7320507764816284)
            #expect(origin.unitUniform == 0.49793148040771484)
            let glorot = InitialWeightsOrigin(KerasInitializer.glorotUniform(seed: 7))
            #expect(glorot.initializer == "glorot_uniform")
            #expect(glorot.seed == 7)
            #expect(glorot.initializerSeed == 7)
            #expect(glorot.unitUniform == 0.7470787763595581)
        }
    }

    @Suite struct TensorFlowFloatConversion {
        @Test func unitUniformUsesOnlyTheLow23Bits() {
            #expect(TensorFlowStatelessRandom.unitUniform(0) == 0)
            #expect(TensorFlowStatelessRandom.unitUniform(0xFF80_0000) == 0)
            #expect(TensorFlowStatelessRandom.unitUniform(1) == 0x1p-23)
            #expect(TensorFlowStatelessRandom.unitUniform(0x007F_FFFF) == 1 - 0x1p-23)
            #expect(TensorFlowStatelessRandom.unitUniform(0xFC5F_A047) == TensorFlowStatelessRandom.unitUniform(0x005F_A047))
        }

        @Test func scaleRoundsEachFloat32OperationSeparately() {
            let limit = Float(1.7320508075688772)
            // §10.6: u·2L = 2.587956666946411, then + (−L).
            let u: Float = 0.7470787763595581
            #expect(u * (limit + limit) == 2.587956666946411)
            #expect(TensorFlowStatelessRandom.scale(unitUniform: u, minval: -limit, maxval: limit) == 0.8559058904647827)
            #expect(TensorFlowStatelessRandom.scale(unitUniform: 0, minval: -limit, maxval: limit) == -limit)
        }

        /// The scramble of seed [7, 0] (§10.6), and a sign-extended negative element, which changes the counter.
        @Test func keyCounterScramble() {
            let seven = TensorFlowStatelessRandom.keyCounter(seed0: 7, seed1: 0)
            #expect(seven.key.u64 == 0xFF7D_B268_2C8A_64FD)
            #expect(seven.counter.u64.low == 0)
            #expect(seven.counter.u64.high == 0x3676_09EB_8896_7F85)
            let negative = TensorFlowStatelessRandom.keyCounter(seed0: -1, seed1: 0)
            let mix = Philox4x32_10.block(counter: PhiloxCounter(0xFFFF_FFFF, 0xFFFF_FFFF, 0, 0),
                                          key: TensorFlowStatelessRandom.scrambleKey)
            #expect(negative.key == PhiloxKey(mix.w0, mix.w1))
            #expect(negative.counter == PhiloxCounter(0, 0, mix.w2, mix.w3))
        }
    }
}
