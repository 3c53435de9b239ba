import Foundation
import LTPlot

/// The twelve-point Colab example (RMSprop 0.05, 4 epochs, batch size 4), read from a real Keras trace.
enum GoldenRun {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    /// The engine's golden traces: one copy of each, shared by every suite.
    static let goldens = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("LTEngineTests/Golden")

    struct LoadError: Error, CustomStringConvertible { var description: String }

    /// Builds a TrainingRun from `Tests/LTEngineTests/Golden/NAME.trace.ndjson` (a real Keras trace).
    static func load(_ name: String = "seed_e4_b4") throws -> TrainingRun {
        let text = try String(contentsOf: goldens.appendingPathComponent("\(name).trace.ndjson"), encoding: .utf8)
        var x: [Double] = []
        var y: [Double] = []
        var initial = (w: 0.0, b: 0.0)
        var steps: [StepPoint] = []
        var settings = ""
        for line in text.split(separator: "\n") {
            guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let type = object["type"] as? String else { throw LoadError(description: "not a JSON object: \(line.prefix(80))") }
            switch type {
            case "init":
                guard let config = object["config"] as? [String: Any],
                      let xs = config["x"] as? [Double], let ys = config["y"] as? [Double],
                      let w = object["w"] as? Double, let b = object["b"] as? Double
                else { throw LoadError(description: "init line lacks config.x, config.y, w or b") }
                x = xs
                y = ys
                initial = (w, b)
                let optimizer = config["optimizer"] as? String ?? "?"
                let rate = config["learning_rate"].map { "\($0)" } ?? "default"
                let epochs = config["epochs"] as? Int ?? 1
                let batch = config["batch_size"] as? Int ?? 32
                settings = "\(optimizer), learning rate \(rate) · \(epochs) epochs · batch size \(batch) · \(xs.count) points · no shuffle"
            case "step":
                guard let iteration = object["global_step"] as? Int, let epoch = object["epoch"] as? Int, let step = object["step"] as? Int,
                      let wAfter = object["w_after"] as? Double, let bAfter = object["b_after"] as? Double,
                      let batchLoss = object["batch_mse_f32"] as? Double,
                      let logs = object["logs"] as? [String: Any], let rmse = logs["root_mean_squared_error"] as? Double,
                      let valRmse = object["val_eval_rmse"] as? Double
                else { throw LoadError(description: "step line lacks a field: \(line.prefix(80))") }
                steps.append(StepPoint(iteration: iteration, epoch: epoch, step: step, wAfter: wAfter, bAfter: bAfter,
                                       kerasRmse: rmse, batchRmse: batchLoss.squareRoot(), valRmse: valRmse))
            default:
                continue
            }
        }
        return TrainingRun(title: "colab-e4-b4", settings: settings, x: x, y: y, initial: initial, optimum: nil, steps: steps)
    }
}
