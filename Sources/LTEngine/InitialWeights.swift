/// Resolves a spec's `init` to the initial kernel and bias, as Doubles (the trainer rounds them to its precision),
/// and says where they came from.
///
/// The seeded Keras initialisers reproduce Keras's draws bit for bit: GlorotUniform via TF's Philox, Keras's default
/// via Python's MT19937 `randint` (KERAS.md §10; Initializers/).
func resolveInitialWeights(_ initialization: Initialization) throws(SpecError)
    -> (kernel: Double, bias: Double, origin: InitialWeightsOrigin) {
    switch initialization {
    case let .constant(kernel, bias):
        return (kernel, bias, InitialWeightsOrigin(initializer: "constant"))
    case let .glorotUniform(seed):
        // Keras puts the seed in an int64 tensor, so it refuses seeds of 2^63 and above.
        guard KerasInitializer.glorotUniformSeeds.contains(seed) else {
            throw SpecError(field: "init.seed", value: "\(seed)",
                            allowed: "GlorotUniform takes seeds 0...\(KerasInitializer.glorotUniformSeeds.upperBound)")
        }
        let draw = KerasInitializer.glorotUniform(seed: seed)
        return (Double(draw.kernel), Double(draw.bias), InitialWeightsOrigin(draw))
    case let .kerasDefault(seed):
        // set_random_seed also seeds numpy, which refuses seeds of 2^32 and above.
        guard KerasInitializer.kerasDefaultSeeds.contains(seed) else {
            throw SpecError(field: "init.seed", value: "\(seed)",
                            allowed: "keras.utils.set_random_seed takes seeds 0...\(KerasInitializer.kerasDefaultSeeds.upperBound)")
        }
        let draw = KerasInitializer.kerasDefault(seed: seed)
        return (Double(draw.kernel), Double(draw.bias), InitialWeightsOrigin(draw))
    }
}
