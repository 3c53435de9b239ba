/// The row order Keras 3.15.1 (TensorFlow 2.21, CPU) feeds `fit` when it shuffles numpy arrays after
/// `keras.utils.set_random_seed(seed)`, bit for bit. The path, with the evidence, is docs/SHUFFLE.md:
///
/// 1. Keras's array data adapter builds the epoch's indices in a `tf.data` map function:
///    `tf.random.shuffle(tf.range(N))`, its only random op.
/// 2. `tf.random.shuffle` gets its op seeds from `random_seed.get_seed(None)` while that function is traced:
///    `seed = S mod (2³¹ − 1)` (the global seed), `seed2 = 0` (the function graph's first op seed);
///    TF replaces the pair (0, 0) by (0, 2³¹ − 1).
/// 3. The RandomShuffle kernel seeds Philox-4x32-10 with key = `seed` and counter = (0, 0, `seed2` low, `seed2` high),
///    then runs a forward Fisher–Yates: for i in 0..<N−1, swap(i, i + word mod (N − i)), one 32-bit Philox word per
///    swap, taken in order (four per Philox block).
/// 4. Every epoch makes a new iterator, which instantiates a fresh kernel: the same permutation repeats every epoch.
public enum KerasShuffle {
    /// Keras's `set_random_seed` accepts these seeds: it also calls `np.random.seed`, which wants 0 ≤ seed < 2³².
    public static let seeds: ClosedRange<UInt64> = 0...UInt64(UInt32.max)

    /// `_MAXINT32` of TF's `random_seed.py`: seeds are reduced modulo it (`_truncate_seed`).
    public static let seedModulus: UInt64 = 2_147_483_647

    /// The `seed` and `seed2` attributes TF gives the RandomShuffle op for a global seed (`get_seed(None)` inside a
    /// freshly traced function graph, whose op-seed counter starts at 0).
    public static func opSeeds(globalSeed: UInt64) -> (seed: UInt64, seed2: UInt64) {
        let seed = globalSeed % seedModulus
        // TF: "Avoid (0, 0) as the C++ ops interpret it as nondeterminism".
        return seed == 0 ? (0, seedModulus) : (seed, 0)
    }

    /// The Philox stream of the kernel: `PhiloxRandom(seed, seed2)` puts `seed` in the key and `seed2` in the upper
    /// half of the counter.
    public static func generator(globalSeed: UInt64) -> Philox4x32_10 {
        let seeds = opSeeds(globalSeed: globalSeed)
        return Philox4x32_10(key: PhiloxKey(u64: seeds.seed), counter: PhiloxCounter(u64: 0, seeds.seed2))
    }

    /// The permutation of 0..<n that Keras feeds, in feed order: row `result[k]` is the k-th row of the epoch.
    /// `n` must be below 2³² (TF passes the remaining length to its sampler as a uint32; ltd allows 10M points).
    public static func permutation(count n: Int, seed: UInt64) -> [Int] {
        var order = Array(0..<max(n, 0))
        guard n > 1 else { return order }
        var philox = generator(globalSeed: seed)
        var block = philox.next()
        var used = 0
        for i in 0..<(n - 1) {
            if used == 4 { block = philox.next(); used = 0 }
            let word: UInt32 = switch used { case 0: block.w0; case 1: block.w1; case 2: block.w2; default: block.w3 }
            used += 1
            // n − i ≥ 2 here; widening keeps the modulo exact and trap-free for any Int n.
            let remaining = UInt64(n - i)
            order.swapAt(i, i + Int(UInt64(word) % remaining))
        }
        return order
    }
}
