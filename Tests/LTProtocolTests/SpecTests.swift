import Testing
@testable import LTProtocol
import LTEngine

/// The classic exercise as a JSON spec, with `extra` members merged over the top level.
func classicSpec(_ extra: String = "") -> String {
    let base = "\"data\":{\"x\":[1,2,3,4,5,6,7,8,9,10,11,12],\"y\":[5,8.8,9.6,14.2,18.8,19.5,21.4,26.8,28.9,32,33.8,38.2]},"
        + "\"init\":{\"kernel\":0.5,\"bias\":0},\"optimizer\":{\"name\":\"rmsprop\",\"learning_rate\":0.05},"
        + "\"epochs\":4,\"batch_size\":4,\"shuffle\":false"
    return "{" + base + (extra.isEmpty ? "" : "," + extra) + "}"
}

/// Decodes `text` and returns the SpecError's field, or nil if it decoded.
func specErrorField(_ text: String) throws -> String? {
    let json = try JSONParser.parse(text)
    do throws(SpecError) {
        _ = try JobSpec(json: json)
        return nil
    } catch {
        #expect(!error.allowed.isEmpty)
        return error.field
    }
}

/// A spec with one key replaced (or removed with nil).
func classicSpec(replacing key: String, with value: String?) -> String {
    var members: [(String, String)] = [
        ("data", "{\"x\":[1,2,3,4],\"y\":[5,8.8,9.6,14.2]}"),
        ("init", "{\"kernel\":0.5,\"bias\":0}"),
        ("optimizer", "{\"name\":\"rmsprop\",\"learning_rate\":0.05}"),
        ("epochs", "4"), ("batch_size", "2"), ("shuffle", "false"),
    ]
    if let i = members.firstIndex(where: { $0.0 == key }) {
        if let value { members[i].1 = value } else { members.remove(at: i) }
    } else if let value {
        members.append((key, value))
    }
    return "{" + members.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
}

@Suite struct SpecDecodingTests {
    @Test func decodesTheClassicSpec() throws {
        let spec = try JobSpec(json: try JSONParser.parse(classicSpec()))
        #expect(spec.data.x.count == 12)
        #expect(spec.data.y[1] == 8.8)
        #expect(spec.validation == nil)
        #expect(spec.initialization == .constant(kernel: 0.5, bias: 0))
        #expect(spec.optimizer == OptimizerSpec(name: .rmsprop, learningRate: 0.05))
        #expect(spec.epochs == 4 && spec.batchSize == 4 && spec.shuffle == .none)
        #expect(spec.precision == .float32 && spec.paceMs == 0 && !spec.paused)
        #expect(spec.onDivergence == .stop && spec.validationMode == .exact)
    }

    @Test func defaults() throws {
        let spec = try JobSpec(json: try JSONParser.parse("{\"data\":{\"x\":[1],\"y\":[2]},\"optimizer\":{\"name\":\"sgd\"}}"))
        // No init: Keras's default initializers from a drawn seed, recorded so the resolved spec repeats the run.
        guard case .kerasDefault(let seed) = spec.initialization else {
            Issue.record("expected Keras's default initialization, got \(spec.initialization)"); return
        }
        let again = try JobSpec(json: spec.json)
        #expect(again.initialization == .kerasDefault(seed: seed))
        #expect(spec.epochs == 1 && spec.batchSize == 32 && spec.shuffle == .none)
        #expect(spec.optimizer == OptimizerSpec(name: .sgd))
    }

    @Test func nullMeansAbsentForOptionalKeys() throws {
        let spec = try JobSpec(json: try JSONParser.parse(classicSpec(replacing: "validation", with: "null")))
        #expect(spec.validation == nil)
    }

    @Test func unknownKeysNameTheirPath() throws {
        #expect(try specErrorField(classicSpec(replacing: "epoch", with: "4")) == "epoch")
        #expect(try specErrorField(classicSpec(replacing: "data", with: "{\"x\":[1],\"y\":[2],\"z\":[3]}")) == "data.z")
        #expect(try specErrorField(classicSpec(replacing: "init", with: "{\"kernel\":1,\"bais\":0}")) == "init.bais")
        #expect(try specErrorField(classicSpec(replacing: "optimizer", with: "{\"name\":\"sgd\",\"lr\":0.1}")) == "optimizer.lr")
        #expect(try specErrorField(classicSpec(replacing: "shuffle", with: "{\"seed\":1,\"every\":true}")) == "shuffle.every")
    }

    @Test func parametersOfAnotherOptimizerAreRejected() throws {
        #expect(try specErrorField(classicSpec(replacing: "optimizer", with: "{\"name\":\"adam\",\"rho\":0.9}")) == "optimizer.rho")
        #expect(try specErrorField(classicSpec(replacing: "optimizer", with: "{\"name\":\"sgd\",\"epsilon\":1e-7}")) == "optimizer.epsilon")
        #expect(try specErrorField(classicSpec(replacing: "optimizer", with: "{\"name\":\"rmsprop\",\"amsgrad\":true}")) == "optimizer.amsgrad")
        #expect(try specErrorField(classicSpec(replacing: "optimizer", with: "{\"name\":\"adagrad\",\"momentum\":0}")) == "optimizer.momentum")
        #expect(try specErrorField(classicSpec(replacing: "optimizer", with: "{\"name\":\"adamw\",\"weight_decay\":0.01}")) == nil)
        #expect(try specErrorField(classicSpec(replacing: "optimizer", with: "{\"name\":\"sgd\",\"weight_decay\":0.01,\"nesterov\":true}")) == nil)
    }

    @Test func wrongTypesNameTheirPath() throws {
        #expect(try specErrorField("[]") == "")
        #expect(try specErrorField(classicSpec(replacing: "data", with: "[1,2]")) == "data")
        #expect(try specErrorField(classicSpec(replacing: "data", with: "{\"x\":\"1,2\",\"y\":[1]}")) == "data.x")
        #expect(try specErrorField(classicSpec(replacing: "data", with: "{\"x\":[1,\"2\"],\"y\":[1,2]}")) == "data.x[1]")
        #expect(try specErrorField(classicSpec(replacing: "epochs", with: "\"4\"")) == "epochs")
        #expect(try specErrorField(classicSpec(replacing: "paused", with: "1")) == "paused")
        #expect(try specErrorField(classicSpec(replacing: "precision", with: "32")) == "precision")
        #expect(try specErrorField(classicSpec(replacing: "optimizer", with: "\"adam\"")) == "optimizer")
        #expect(try specErrorField(classicSpec(replacing: "optimizer", with: "{\"name\":\"rmsprop\",\"rho\":\"0.9\"}")) == "optimizer.rho")
        #expect(try specErrorField(classicSpec(replacing: "optimizer", with: "{\"name\":\"rmsprop\",\"centered\":0}")) == "optimizer.centered")
        #expect(try specErrorField(classicSpec(replacing: "init", with: "0.5")) == "init")
        #expect(try specErrorField(classicSpec(replacing: "init", with: "{\"kernel\":\"0.5\"}")) == "init.kernel")
        #expect(try specErrorField(classicSpec(replacing: "shuffle", with: "\"yes\"")) == "shuffle")
    }

    @Test func missingRequiredKeys() throws {
        #expect(try specErrorField(classicSpec(replacing: "data", with: nil)) == "data")
        #expect(try specErrorField(classicSpec(replacing: "optimizer", with: nil)) == "optimizer")
        #expect(try specErrorField(classicSpec(replacing: "optimizer", with: "{\"learning_rate\":0.1}")) == "optimizer.name")
        #expect(try specErrorField(classicSpec(replacing: "data", with: "{\"x\":[1]}")) == "data.y")
        #expect(try specErrorField(classicSpec(replacing: "init", with: "{\"bias\":1}")) == "init.kernel")
    }

    @Test func nonFiniteNumbersAreRejected() throws {
        #expect(try specErrorField(classicSpec(replacing: "data", with: "{\"x\":[1,2,1e400],\"y\":[1,2,3]}")) == "data.x[2]")
        #expect(try specErrorField(classicSpec(replacing: "data", with: "{\"x\":[1,2,3],\"y\":[1,\"NaN\",3]}")) == "data.y[1]")
        #expect(try specErrorField(classicSpec(replacing: "init", with: "{\"kernel\":-1e999}")) == "init.kernel")
        #expect(try specErrorField(classicSpec(replacing: "optimizer", with: "{\"name\":\"sgd\",\"learning_rate\":\"Infinity\"}")) == "optimizer.learning_rate")
        // Finite in float64 but not in a float32 job.
        #expect(try specErrorField(classicSpec(replacing: "data", with: "{\"x\":[1,1e39],\"y\":[1,2]}")) == "data.x[1]")
        // The engine holds every input as float32 in both precisions (Keras does), so float64 jobs refuse it too.
        #expect(try specErrorField(classicSpec(replacing: "data", with: "{\"x\":[1,1e39],\"y\":[1,2]}").replacingPrecision("float64")) == "data.x[1]")
    }

    @Test func shapeErrors() throws {
        #expect(try specErrorField(classicSpec(replacing: "data", with: "{\"x\":[1,2],\"y\":[1]}")) == "data.y")
        #expect(try specErrorField(classicSpec(replacing: "data", with: "{\"x\":[],\"y\":[]}")) == "data.x")
        #expect(try specErrorField(classicSpec(replacing: "validation", with: "{\"x\":[1],\"y\":[1,2]}")) == "validation.y")
        // Empty validation means the training data, as if it were left out.
        #expect(try JobSpec(json: try JSONParser.parse(classicSpec(replacing: "validation", with: "{\"x\":[],\"y\":[]}"))).validation == nil)
        #expect(try specErrorField(classicSpec(replacing: "validation", with: "{\"x\":[1,\"a\"],\"y\":[1,2]}")) == "validation.x[1]")
    }

    @Test func integerRanges() throws {
        for (key, bad) in [("epochs", "0"), ("epochs", "1.5"), ("epochs", "1e30"), ("epochs", "-1"), ("epochs", "1000001"),
                           ("batch_size", "0"), ("batch_size", "99999999999999999999999"), ("pace_ms", "-1"),
                           ("pace_ms", "60001")] {
            #expect(try specErrorField(classicSpec(replacing: key, with: bad)) == key, "\(key): \(bad)")
        }
        #expect(try specErrorField(classicSpec(replacing: "pace_ms", with: "60000")) == nil)
        #expect(try specErrorField(classicSpec(replacing: "epochs", with: "4.0")) == nil)
    }

    @Test func enumerations() throws {
        #expect(try specErrorField(classicSpec(replacing: "precision", with: "\"float16\"")) == "precision")
        #expect(try specErrorField(classicSpec(replacing: "on_divergence", with: "\"halt\"")) == "on_divergence")
        #expect(try specErrorField(classicSpec(replacing: "validation_mode", with: "\"slow\"")) == "validation_mode")
        #expect(try specErrorField(classicSpec(replacing: "optimizer", with: "{\"name\":\"lion\"}")) == "optimizer.name")
        #expect(try specErrorField(classicSpec(replacing: "init", with: "{\"initializer\":\"he_normal\",\"seed\":1}")) == "init.initializer")
    }

    @Test func initializers() throws {
        func decode(_ initJSON: String) throws -> Initialization {
            // Decoding only: the engine validates seeded initializers once issue 8 lands.
            try JobSpec(decoding: try JSONParser.parse(classicSpec(replacing: "init", with: initJSON))).initialization
        }
        #expect(try decode("{\"initializer\":\"glorot_uniform\",\"seed\":7}") == .glorotUniform(seed: 7))
        #expect(try decode("{\"initializer\":\"keras\",\"seed\":18446744073709551615}") == .kerasDefault(seed: UInt64.max))
        #expect(try decode("{\"kernel\":2}") == .constant(kernel: 2, bias: 0))
        #expect(try decode("{\"initializer\":\"constant\",\"kernel\":2,\"bias\":1}") == .constant(kernel: 2, bias: 1))
        // No seed: the daemon draws one and the resolved spec records it.
        guard case .kerasDefault(let seed) = try decode("{\"initializer\":\"keras\"}") else {
            Issue.record("expected kerasDefault"); return
        }
        #expect(seed < 1 << 31)
        for bad in ["-1", "1.5", "18446744073709551616", "\"7\"", "1e30", "true"] {
            #expect(try specErrorField(classicSpec(replacing: "init", with: "{\"initializer\":\"keras\",\"seed\":\(bad)}")) == "init.seed", "\(bad)")
        }
        #expect(try specErrorField(classicSpec(replacing: "init", with: "{\"initializer\":\"keras\",\"kernel\":1}")) == "init.kernel")
    }

    @Test func shuffleForms() throws {
        func decode(_ s: String) throws -> Shuffle {
            try JobSpec(json: try JSONParser.parse(classicSpec(replacing: "shuffle", with: s))).shuffle
        }
        #expect(try decode("false") == Shuffle.none)
        #expect(try decode("{\"seed\":42}") == .seeded(42))
        #expect(try decode("{\"seed\":42,\"every_epoch\":true}") == .everyEpoch(seed: 42))
        #expect(try decode("{\"order\":[[3,2,1,0],[0,1,2,3]]}") == .order([[3, 2, 1, 0], [0, 1, 2, 3]]))
        // `true` draws a seed Keras's set_random_seed accepts, then is the seeded shuffle.
        guard case let .seeded(seed) = try decode("true") else { Issue.record("true must resolve to a seed"); return }
        #expect(seed < 1 << 31)
        // Two `true` specs get independent seeds (collision chance 2^-31).
        #expect(try decode("true") != decode("true"))
        // Keras's seeds stop at 2^32 - 1 (numpy's limit).
        #expect(try decode("{\"seed\":4294967295}") == .seeded(4_294_967_295))
        #expect(try specErrorField(classicSpec(replacing: "shuffle", with: "{\"seed\":4294967296}")) == "shuffle.seed")
        // ltd's own every-epoch order is not Keras's, so any seed works.
        #expect(try decode("{\"seed\":18446744073709551615,\"every_epoch\":true}") == .everyEpoch(seed: UInt64.max))
    }

    /// New specs emulate Keras 3.15.1 and say so; a stored spec without `keras` predates it and keeps ltd's own
    /// seeded order (docs/PROTOCOL.md, "keras").
    @Test func kerasVersion() throws {
        let request = try JobSpec(json: try JSONParser.parse(classicSpec(replacing: "shuffle", with: "{\"seed\":42}")))
        #expect(request.keras == .v3_15_1)
        #expect(request.json["keras"] == .string("3.15.1"))
        let explicit = try JobSpec(json: try JSONParser.parse(String(classicSpec().dropLast()) + ",\"keras\":\"3.15.1\"}"))
        #expect(explicit.keras == .v3_15_1)
        #expect(try specErrorField(String(classicSpec().dropLast()) + ",\"keras\":\"3.16.0\"}") == "keras")
        #expect(try specErrorField(String(classicSpec().dropLast()) + ",\"keras\":3}") == "keras")

        let stored = try JobSpec(storedJSON: try JSONParser.parse(classicSpec(replacing: "shuffle", with: "{\"seed\":42}")))
        #expect(stored.keras == nil && stored.shuffle == .seeded(42))
        #expect(stored.json["keras"] == nil)
        #expect(try JobSpec(storedJSON: stored.json) == stored)
        #expect(try JobSpec(storedJSON: request.json) == request)
        // A stored job from before may hold any seed it was given.
        let big = try JobSpec(storedJSON: try JSONParser.parse(classicSpec(replacing: "shuffle", with: "{\"seed\":18446744073709551615}")))
        #expect(big.shuffle == .seeded(UInt64.max))
        // And more `order` permutations than epochs (4), as was accepted before they were bounded.
        let five = "{\"order\":[[0,1,2,3],[0,1,2,3],[0,1,2,3],[0,1,2,3],[0,1,2,3]]}"
        let older = try JobSpec(storedJSON: try JSONParser.parse(classicSpec(replacing: "shuffle", with: five)))
        #expect(older.shuffle == .order(Array(repeating: [0, 1, 2, 3], count: 5)))
    }

    @Test func shuffleOrderErrorsNameTheExactPlace() throws {
        let cases: [(String, String)] = [
            ("{\"order\":[[0,1,2,3],[0,1,2]]}", "shuffle.order[1]"),
            ("{\"order\":[[0,1,2,3],[0,1,2,2]]}", "shuffle.order[1][3]"),
            ("{\"order\":[[0,1,2,4]]}", "shuffle.order[0][3]"),
            ("{\"order\":[[0,1,2,-1]]}", "shuffle.order[0][3]"),
            ("{\"order\":[[0,1,2.5,3]]}", "shuffle.order[0][2]"),
            ("{\"order\":[[0,1,2,1e300]]}", "shuffle.order[0][3]"),
            ("{\"order\":[]}", "shuffle.order"),
            ("{\"order\":[5]}", "shuffle.order[0]"),
            // More permutations than epochs (4): memory the job would never use.
            ("{\"order\":[[0,1,2,3],[0,1,2,3],[0,1,2,3],[0,1,2,3],[0,1,2,3]]}", "shuffle.order"),
            ("{\"order\":[[0,1,2,3]],\"seed\":1}", "shuffle.order"),
            ("{\"seed\":-1}", "shuffle.seed"),
            ("{}", "shuffle.seed"),
            ("{\"seed\":1,\"every_epoch\":\"yes\"}", "shuffle.every_epoch"),
        ]
        for (shuffle, field) in cases {
            #expect(try specErrorField(classicSpec(replacing: "shuffle", with: shuffle)) == field, "\(shuffle)")
        }
    }

    @Test func engineValidationErrorsNameTheirPath() throws {
        func opt(_ o: String) -> String { classicSpec(replacing: "optimizer", with: o) }
        #expect(try specErrorField(opt("{\"name\":\"rmsprop\",\"rho\":1.5}")) == "optimizer.rho")
        #expect(try specErrorField(opt("{\"name\":\"rmsprop\",\"learning_rate\":0}")) == "optimizer.learning_rate")
        #expect(try specErrorField(opt("{\"name\":\"adam\",\"beta_2\":1}")) == "optimizer.beta_2")
        #expect(try specErrorField(opt("{\"name\":\"adagrad\",\"epsilon\":-1}")) == "optimizer.epsilon")
        #expect(try specErrorField(opt("{\"name\":\"sgd\",\"momentum\":-0.1}")) == "optimizer.momentum")
    }

    @Test func messagesSayWhatIsAllowed() throws {
        let json = try JSONParser.parse(classicSpec(replacing: "optimizer", with: "{\"name\":\"adam\",\"rho\":0.9}"))
        do throws(SpecError) {
            _ = try JobSpec(json: json)
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("adam takes only"))
            #expect(error.description.contains("beta_1"))
        }
    }
}

extension String {
    func replacingPrecision(_ p: String) -> String {
        String(dropLast()) + ",\"precision\":\"\(p)\"}"
    }
}

@Suite struct SpecRoundTripTests {
    static let specs: [JobSpec] = [
        JobSpec(data: Dataset(x: [1, 2, 3.25, -4e-30, 1e30], y: [0.1, 0.2, 0.30000000000000004, 5, 6]),
                validation: Dataset(x: [1], y: [2]), initialization: .glorotUniform(seed: UInt64.max),
                optimizer: OptimizerSpec(name: .adamw, learningRate: 0.001, beta1: 0.8, beta2: 0.99, amsgrad: true,
                                         weightDecay: 0.01),
                epochs: 7, batchSize: 2, shuffle: .everyEpoch(seed: 12345), precision: .float64, paceMs: 250,
                paused: true, onDivergence: .continue, validationMode: .fast),
        JobSpec(data: Dataset(x: [1, 2, 3], y: [4, 5, 6]), initialization: .kerasDefault(seed: 0),
                optimizer: OptimizerSpec(name: .sgd, learningRate: 0.1, momentum: 0.9, nesterov: false),
                epochs: 2, shuffle: .order([[2, 1, 0], [0, 2, 1]])),
        JobSpec(data: Dataset(x: [1, 2, 3], y: [4, 5, 6]), initialization: .constant(kernel: -0.0, bias: Double.leastNormalMagnitude / 8),
                optimizer: OptimizerSpec(name: .rmsprop, rho: 0.95, epsilon: 1e-3, centered: true), shuffle: .seeded(9)),
        JobSpec(data: Dataset(x: [0.1], y: [0.2]),
                optimizer: OptimizerSpec(name: .adagrad, epsilon: 1e-7, weightDecay: 0.5, initialAccumulatorValue: 0.2)),
    ]

    @Test(arguments: specs)
    func jsonRoundTrips(_ spec: JobSpec) throws {
        let decoded = try JobSpec(decoding: spec.json)
        #expect(decoded == spec)
        if case .constant = spec.initialization { #expect(try JobSpec(json: spec.json) == spec) }
        // Also through text, bit for bit.
        let reparsed = try JobSpec(decoding: try JSONParser.parse(spec.json.serialized))
        #expect(reparsed == spec)
        #expect(reparsed.data.x.map(\.bitPattern) == spec.data.x.map(\.bitPattern))
        #expect(spec.json.serialized == reparsed.json.serialized)
    }

    @Test(arguments: specs)
    func storedJSONRoundTrips(_ spec: JobSpec) throws {
        var legacy = spec
        legacy.keras = nil
        #expect(try JobSpec(decoding: legacy.json, kerasWhenAbsent: nil) == legacy)
        #expect(try JobSpec(decoding: spec.json, kerasWhenAbsent: nil) == spec)
        if case .constant = spec.initialization {
            #expect(try JobSpec(storedJSON: legacy.json) == legacy)
            #expect(try JobSpec(storedJSON: spec.json) == spec)
        }
    }

    @Test func resolvedSpecKeepsDrawnSeeds() throws {
        let spec = try JobSpec(json: try JSONParser.parse(classicSpec(replacing: "shuffle", with: "true")))
        let again = try JobSpec(json: spec.json)
        #expect(again == spec)
    }
}
