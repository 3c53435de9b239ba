import Foundation
import LTEngine

/// One real Keras run from `shared/golden` (see its README): the config mapped to a JobSpec, and the recorded trace.
struct GoldenCase: Sendable, CustomStringConvertible {
    struct Step: Sendable {
        var epoch: Int, step: Int, globalStep: Int
        var indices: [Int]
        var wBefore: Double, bBefore: Double, wAfter: Double, bAfter: Double
        var loss: Double, rmse: Double, valLoss: Double, valRmse: Double
    }
    struct Epoch: Sendable {
        var epoch: Int, globalStep: Int
        var loss: Double, rmse: Double, valLoss: Double, valRmse: Double, w: Double, b: Double
    }

    let name: String
    let spec: JobSpec
    /// The config asks for a seeded Keras initialiser; `spec` asks for it too, so the trace is reproduced from the spec alone.
    let seededInitialization: Initialization?
    let initialW: Double, initialB: Double
    let steps: [Step]
    let epochs: [Epoch]
    let finalW: Double, finalB: Double
    let history: [String: [Double]]

    var description: String { name }

    /// The golden files: the shared copy when the repository sits next to `shared/`, else the copy in this repository.
    static let bundledDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Golden")
    static let sharedDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../../shared/golden").standardized
    static var directory: URL {
        FileManager.default.fileExists(atPath: sharedDirectory.appendingPathComponent("README.md").path)
            ? sharedDirectory : bundledDirectory
    }

    static var names: [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: bundledDirectory.path)) ?? []
        return files.filter { $0.hasSuffix(".config.json") }.map { String($0.dropLast(".config.json".count)) }.sorted()
    }

    static func load(_ name: String) throws -> GoldenCase {
        let dir = directory
        let configData = try Data(contentsOf: dir.appendingPathComponent("\(name).config.json"))
        guard let config = try JSONSerialization.jsonObject(with: configData) as? [String: Any] else {
            throw GoldenError.malformed("\(name).config.json")
        }
        let traceText = try String(contentsOf: dir.appendingPathComponent("\(name).trace.ndjson"), encoding: .utf8)
        var initLine: [String: Any] = [:], endLine: [String: Any] = [:]
        var steps: [Step] = [], epochs: [Epoch] = []
        for line in traceText.split(separator: "\n") where !line.isEmpty {
            guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw GoldenError.malformed("\(name).trace.ndjson")
            }
            switch object["type"] as? String {
            case "init": initLine = object
            case "step":
                let logs = object["logs"] as? [String: Any] ?? [:]
                steps.append(Step(epoch: int(object["epoch"]), step: int(object["step"]),
                                  globalStep: int(object["global_step"]),
                                  indices: (object["indices"] as? [Any] ?? []).map { int($0) },
                                  wBefore: number(object["w_before"]), bBefore: number(object["b_before"]),
                                  wAfter: number(object["w_after"]), bAfter: number(object["b_after"]),
                                  loss: number(logs["loss"]), rmse: number(logs["root_mean_squared_error"]),
                                  valLoss: number(object["val_eval_loss"]), valRmse: number(object["val_eval_rmse"])))
            case "epoch_end":
                let logs = object["logs"] as? [String: Any] ?? [:]
                epochs.append(Epoch(epoch: int(object["epoch"]), globalStep: int(object["global_step"]),
                                    loss: number(logs["loss"]), rmse: number(logs["root_mean_squared_error"]),
                                    valLoss: number(logs["val_loss"]), valRmse: number(logs["val_root_mean_squared_error"]),
                                    w: number(object["w"]), b: number(object["b"])))
            case "end": endLine = object
            default: throw GoldenError.malformed("\(name).trace.ndjson: unknown line type")
            }
        }
        let initialW = number(initLine["w"]), initialB = number(initLine["b"])

        var optimizer: OptimizerSpec
        switch config["optimizer"] as? String ?? "rmsprop" {
        case "sgd": optimizer = OptimizerSpec(name: .sgd)
        case "sgd_momentum": optimizer = OptimizerSpec(name: .sgd, momentum: 0.9)
        case "nesterov": optimizer = OptimizerSpec(name: .sgd, momentum: 0.9, nesterov: true)
        case "rmsprop": optimizer = OptimizerSpec(name: .rmsprop)
        case "adam": optimizer = OptimizerSpec(name: .adam)
        case "adamw": optimizer = OptimizerSpec(name: .adamw)
        case "adagrad": optimizer = OptimizerSpec(name: .adagrad)
        case let other: throw GoldenError.malformed("optimizer \(other)")
        }
        optimizer.learningRate = config["learning_rate"].map { number($0) }
        if let v = config["momentum"] { optimizer.momentum = number(v) }
        if let v = config["nesterov"] as? Bool { optimizer.nesterov = v }
        optimizer.rho = config["rho"].map { number($0) }
        optimizer.epsilon = config["epsilon"].map { number($0) }
        optimizer.centered = config["centered"] as? Bool
        optimizer.beta1 = config["beta_1"].map { number($0) }
        optimizer.beta2 = config["beta_2"].map { number($0) }
        optimizer.amsgrad = config["amsgrad"] as? Bool
        optimizer.weightDecay = config["weight_decay"].map { number($0) }
        optimizer.initialAccumulatorValue = config["initial_accumulator_value"].map { number($0) }

        let x = (config["x"] as? [Any] ?? []).map { number($0) }
        let y = (config["y"] as? [Any] ?? []).map { number($0) }
        var validation: Dataset?
        if let vx = config["val_x"] as? [Any], let vy = config["val_y"] as? [Any] {
            validation = Dataset(x: vx.map { number($0) }, y: vy.map { number($0) })
        }
        let epochCount = config["epochs"].map { int($0) } ?? 1
        let batchSize = config["batch_size"].map { int($0) } ?? 32

        // Shuffled cases run from the seed alone, as Keras after set_random_seed(seed); the recorded `indices` are
        // what the trainer's batches are checked against, never an input.
        let seed = config["seed"].map { UInt64(int($0)) } ?? 0
        let shuffle = config["shuffle"] as? Bool == true ? Shuffle.seeded(seed) : .none

        var initialization = Initialization.constant(kernel: 0.5, bias: 0)
        var seeded: Initialization?
        if let i = config["init"] as? [String: Any] {
            switch i["mode"] as? String {
            case "constant":
                initialization = .constant(kernel: i["kernel"].map { number($0) } ?? 0.5,
                                           bias: i["bias"].map { number($0) } ?? 0)
            case "glorot_uniform":
                seeded = .glorotUniform(seed: UInt64(int(i["seed"])))
                initialization = seeded ?? initialization
            case "default":
                seeded = .kerasDefault(seed: UInt64(config["seed"].map { int($0) } ?? 0))
                initialization = seeded ?? initialization
            default: throw GoldenError.malformed("init mode")
            }
        }

        let spec = JobSpec(data: Dataset(x: x, y: y), validation: validation, initialization: initialization,
                           optimizer: optimizer, epochs: epochCount, batchSize: batchSize, shuffle: shuffle)
        let history = (endLine["history"] as? [String: Any] ?? [:]).mapValues { ($0 as? [Any] ?? []).map { number($0) } }
        return GoldenCase(name: name, spec: spec, seededInitialization: seeded, initialW: initialW, initialB: initialB,
                          steps: steps, epochs: epochs, finalW: number(endLine["w"]), finalB: number(endLine["b"]),
                          history: history)
    }
}

enum GoldenError: Error { case malformed(String) }

/// A trace number: a JSON number, or the strings "nan", "inf", "-inf".
func number(_ value: Any?) -> Double {
    switch value {
    case let n as NSNumber: n.doubleValue
    case let s as String: s == "inf" ? .infinity : s == "-inf" ? -.infinity : .nan
    default: .nan
    }
}

func int(_ value: Any?) -> Int { (value as? NSNumber)?.intValue ?? -1 }

/// Bit equality of float32 values (every NaN equal to every NaN, as the trace writes them all as "nan").
func sameFloat32(_ a: Double, _ b: Double) -> Bool {
    (a.isNaN && b.isNaN) || Float(a).bitPattern == Float(b).bitPattern && Double(Float(a)) == a
}

/// Runs a trainer to the end, collecting its events.
func events(of trainer: inout Trainer) -> [TrainerEvent] {
    var all: [TrainerEvent] = []
    while let e = trainer.next() { all.append(e) }
    return all
}
