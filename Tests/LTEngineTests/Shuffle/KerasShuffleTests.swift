import Foundation
import Testing
@testable import LTEngine

/// `Fixtures/keras_shuffles.json`: the rows real Keras 3.15.1 / TF 2.21.0 `fit` fed, per seed and N, recorded by
/// `scripts/record-shuffles.py` (its docstring describes every field).
struct RecordedShuffles: Decodable {
    struct Case: Decodable {
        var seed: UInt64
        var n: Int
        var batch_size: Int
        var op_seeds: [UInt64]
        var epochs_identical: Bool
        var head: [Int]
        var permutation: [Int]?
        var sha256: String
    }
    var versions: [String: String]
    var cases: [Case]

    static func load() throws -> RecordedShuffles {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/keras_shuffles.json")
        return try JSONDecoder().decode(RecordedShuffles.self, from: Data(contentsOf: url))
    }

    /// The digest the recorder took: the rows as decimal numbers joined by ",".
    static func digest(_ permutation: [Int]) -> String {
        SHA256.hex(Array(permutation.map(String.init).joined(separator: ",").utf8))
    }
}

@Suite struct KerasShuffleTests {
    static let recorded: [RecordedShuffles.Case] = (try? RecordedShuffles.load().cases) ?? []

    @Test func sha256KnownAnswers() {
        #expect(SHA256.hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        // Two blocks (FIPS 180-4 example).
        #expect(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
            == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    @Test func tableCoversTheSizesAndSeeds() throws {
        let table = try RecordedShuffles.load()
        #expect(table.versions["keras"] == KerasVersion.current.rawValue && table.versions["tensorflow"] == "2.21.0")
        #expect(Set(table.cases.map(\.n)) == [1, 2, 12, 37, 1000, 100_000])
        #expect(Set(table.cases.map(\.seed)).count >= 16)
        #expect(table.cases.contains { $0.seed == UInt64(UInt32.max) })
        // Keras repeated its permutation in every recorded epoch.
        #expect(table.cases.allSatisfy { $0.epochs_identical })
    }

    @Test(arguments: recorded)
    func permutationMatchesRealKeras(_ keras: RecordedShuffles.Case) {
        let mine = KerasShuffle.permutation(count: keras.n, seed: keras.seed)
        #expect(Array(mine.prefix(16)) == keras.head, "seed \(keras.seed), N \(keras.n)")
        if let all = keras.permutation { #expect(mine == all, "seed \(keras.seed), N \(keras.n)") }
        #expect(RecordedShuffles.digest(mine) == keras.sha256, "seed \(keras.seed), N \(keras.n)")
        let seeds = KerasShuffle.opSeeds(globalSeed: keras.seed)
        #expect([seeds.seed, seeds.seed2] == keras.op_seeds, "the RandomShuffle node's seed and seed2")
    }

    /// The trainer feeds the recorded rows, batch after batch, the same in every epoch, from the seed alone.
    @Test(arguments: recorded.filter { $0.permutation != nil && $0.n > 1 })
    func trainerFeedsKerasRowsEveryEpoch(_ keras: RecordedShuffles.Case) throws {
        let n = keras.n
        let spec = JobSpec(data: Dataset(x: (0..<n).map(Double.init), y: Array(repeating: 0, count: n)),
                           optimizer: OptimizerSpec(name: .sgd, learningRate: 1e-9), epochs: 3,
                           batchSize: keras.batch_size, shuffle: .seeded(keras.seed))
        var trainer = try Trainer(spec: spec)
        var fed: [[Int]] = [[], [], []]
        for case let .step(s) in events(of: &trainer) { fed[s.epoch - 1] += s.batch.indices }
        #expect(fed.allSatisfy { $0 == keras.permutation }, "seed \(keras.seed), N \(keras.n)")
    }

    @Test func seedsFoldModulo2To31Minus1AndAvoidZeroZero() {
        #expect(KerasShuffle.opSeeds(globalSeed: 42) == (42, 0))
        #expect(KerasShuffle.opSeeds(globalSeed: 0) == (0, 2_147_483_647))
        #expect(KerasShuffle.opSeeds(globalSeed: 2_147_483_647) == (0, 2_147_483_647))
        #expect(KerasShuffle.opSeeds(globalSeed: 4_294_967_294) == (0, 2_147_483_647))
        #expect(KerasShuffle.opSeeds(globalSeed: 3_000_000_000) == (852_516_353, 0))
        // Seeds that fold together shuffle alike, as in Keras.
        #expect(KerasShuffle.permutation(count: 50, seed: 5) == KerasShuffle.permutation(count: 50, seed: 2_147_483_652))
    }

    @Test func degenerateSizes() {
        #expect(KerasShuffle.permutation(count: 0, seed: 1).isEmpty)
        #expect(KerasShuffle.permutation(count: 1, seed: 1) == [0])
        let big = KerasShuffle.permutation(count: 100_003, seed: 9)
        #expect(big.sorted() == Array(0..<100_003))
    }

    /// A job stored before ltd recorded its Keras (`keras` nil) keeps ltd's own SplitMix64 permutation: the order the
    /// issue quotes for `--shuffle=42` on the twelve points. A new job gets Keras's (golden sgd_b4_e3_shuffle_seed42).
    @Test func storedJobsKeepTheirOwnOrder() {
        #expect(Permutation.order(for: .seeded(42), keras: nil, count: 12, epoch: 2)
            == [9, 7, 11, 5, 4, 10, 6, 0, 3, 2, 1, 8])
        #expect(Permutation.order(for: .seeded(42), keras: .v3_15_1, count: 12, epoch: 2)
            == [11, 10, 9, 7, 0, 4, 6, 8, 2, 5, 3, 1])
    }

    /// Its checkpoint fingerprint is what it was before `keras` existed (the value pins the hash of that spec), and a
    /// job resumed from a checkpoint continues the same stream as one that never stopped.
    @Test func storedJobsRestoreBitForBit() throws {
        let legacy = JobSpec(data: Dataset(x: (1...12).map(Double.init), y: (1...12).map { 3 * Double($0) - 2 }),
                             initialization: .constant(kernel: 0.5, bias: 0), optimizer: OptimizerSpec(name: .sgd, learningRate: 0.001),
                             epochs: 3, batchSize: 4, shuffle: .seeded(42), keras: nil)
        #expect(SpecFingerprint(legacy).value == 0xED89_A4F1_5B15_81F0)
        var current = legacy
        current.keras = .current
        #expect(SpecFingerprint(current).value != SpecFingerprint(legacy).value)
        for spec in [legacy, current] {
            var whole = try Trainer(spec: spec)
            let reference = events(of: &whole)
            var first = try Trainer(spec: spec)
            for _ in 0..<5 { _ = first.next() }   // into epoch 2
            var resumed = try Trainer(spec: spec, resuming: first.checkpoint)
            let rest = events(of: &resumed)
            #expect(Array(reference.suffix(rest.count)) == rest)
        }
        var trainer = try Trainer(spec: legacy)
        let rows = events(of: &trainer).compactMap { if case let .step(s) = $0 { s.batch.indices } else { nil } }
        #expect(Array(rows.prefix(3).joined()) == [9, 7, 11, 5, 4, 10, 6, 0, 3, 2, 1, 8])
        #expect(Array(rows.suffix(3).joined()) == [9, 7, 11, 5, 4, 10, 6, 0, 3, 2, 1, 8])
    }

    @Test func kerasSeedsAreTheOnesSetRandomSeedTakes() {
        var spec = JobSpec(data: Dataset(x: [1, 2], y: [3, 4]), optimizer: OptimizerSpec(name: .sgd),
                           shuffle: .seeded(UInt64(UInt32.max) + 1))
        #expect(throws: SpecError.self) { try spec.validate() }
        spec.shuffle = .seeded(UInt64(UInt32.max))
        #expect(throws: Never.self) { try spec.validate() }
        // A stored job from before keeps whatever seed it had.
        spec.keras = nil
        spec.shuffle = .seeded(UInt64.max)
        #expect(throws: Never.self) { try spec.validate() }
    }
}
