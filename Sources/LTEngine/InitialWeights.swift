/// Resolves a spec's `init` to the initial kernel and bias, as Doubles (the trainer rounds them to its precision),
/// and says where they came from.
///
/// The seeded Keras initialisers (GlorotUniform via Philox, Keras's default via Python's MT19937; KERAS.md §10)
/// belong to issue 8, which fills them in here; until then they are rejected as "not yet supported".
func resolveInitialWeights(_ initialization: Initialization) throws(SpecError)
    -> (kernel: Double, bias: Double, origin: InitialWeightsOrigin) {
    switch initialization {
    case let .constant(kernel, bias):
        return (kernel, bias, InitialWeightsOrigin(initializer: "constant"))
    case let .glorotUniform(seed):
        throw SpecError(field: "init", value: "{\"initializer\": \"glorot_uniform\", \"seed\": \(seed)}",
                        allowed: "not yet supported: give constant {\"kernel\": K, \"bias\": B}")
    case let .kerasDefault(seed):
        throw SpecError(field: "init", value: "Keras's default initializer (seed \(seed))",
                        allowed: "not yet supported: give constant {\"kernel\": K, \"bias\": B}")
    }
}
