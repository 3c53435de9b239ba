import Foundation
import LTProtocol

/// Renders events as aligned human-readable lines: a header from the `start` event, one line per step, a summary
/// line per epoch, and a line per state change.
final class EventPrinter {
    let job: String
    let palette: Palette
    private var epochs: Int?
    private var stepsPerEpoch: Int?
    private var totalSteps: Int?
    private var headerPrinted = false
    private var lastIteration = 0
    /// Numbers of a float32 job are shown from their exact float32 values.
    private var isFloat32 = true

    init(job: String, status: JSONValue?, palette: Palette) {
        self.job = job
        self.palette = palette
        epochs = status?["epochs"]?.intValue
        stepsPerEpoch = status?["steps_per_epoch"]?.intValue
        totalSteps = status?["total_steps"]?.intValue
        isFloat32 = status?["precision"]?.stringValue != "float64"
    }

    private func f(_ value: JSONValue?, _ decimals: Int) -> String { Format.fixed(value, decimals, float32: isFloat32) }

    private func digits(_ n: Int?) -> Int { String(n ?? 0).count }
    private var epochWidth: Int { max(5, 2 * digits(epochs) + 1) }
    private var stepWidth: Int { max(4, 2 * digits(stepsPerEpoch) + 1) }
    private var iterWidth: Int { max(4, digits(totalSteps)) }
    static let rowsWidth = 14
    static let weightWidth = 11
    static let metricWidth = 12

    private func of(_ n: Int?, _ total: Int?) -> String {
        guard let n else { return "?" }
        return total.map { "\(n)/\($0)" } ?? "\(n)"
    }

    func header() -> String {
        let text = Format.padLeft("epoch", epochWidth) + "  " + Format.padLeft("step", stepWidth) + "  "
            + Format.padLeft("iter", iterWidth) + "  " + Format.padRight("rows", Self.rowsWidth)
            + Format.padLeft("w after", Self.weightWidth) + Format.padLeft("b after", Self.weightWidth)
            + Format.padLeft("batch loss", Self.metricWidth) + Format.padLeft("keras rmse", Self.metricWidth)
            + Format.padLeft("val rmse", Self.metricWidth)
        return palette.dim(text) + "\n"
    }

    /// The text for one event (possibly several lines, each ending in a newline; empty for unknown events).
    func render(_ event: Event) -> String {
        switch event.type {
        case .start: return renderStart(event.raw)
        case .step: return renderStep(event.raw)
        case .epoch: return renderEpoch(event.raw)
        case .state: return renderState(event.raw)
        case .end: return renderEnd(event.raw)
        }
    }

    private func renderStart(_ e: JSONValue) -> String {
        epochs = e["epochs"]?.intValue ?? epochs
        stepsPerEpoch = e["steps_per_epoch"]?.intValue ?? stepsPerEpoch
        totalSteps = e["total_steps"]?.intValue ?? totalSteps
        isFloat32 = e["precision"]?.stringValue != "float64"
        var lines = palette.bold("\(job):") + " " + Self.describeOptimizer(e["optimizer"])
            + ", " + (e["precision"]?.stringValue ?? "float32") + "\n"
        let shuffle = Self.describeShuffle(e["spec"]?["shuffle"], keras: e["spec"]?["keras"]?.stringValue)
        lines += "  \(e["n_train"]?.intValue ?? 0) training rows, \(e["n_val"]?.intValue ?? 0) validation rows; "
            + "\(Format.count(epochs ?? 0, "epoch")) × \(Format.count(stepsPerEpoch ?? 0, "step")) of batch \(e["batch_size"]?.intValue ?? 0) = \(totalSteps ?? 0) steps; \(shuffle)\n"
        lines += "  initial w \(Format.exact(e["w"])), b \(Format.exact(e["b"])) (\(Self.describeInit(e["init"])))"
        if let optimum = e["optimum"] {
            lines += "; least-squares optimum w \(Format.fixed(optimum["w"], 4, float32: false)), b \(Format.fixed(optimum["b"], 4, float32: false)) (mse \(Format.fixed(optimum["mse"], 4, float32: false)))"
        }
        return lines + "\n"
    }

    private func renderStep(_ e: JSONValue) -> String {
        var prefix = ""
        if !headerPrinted { headerPrinted = true; prefix = header() }
        lastIteration = e["iteration"]?.intValue ?? lastIteration
        let text = Format.padLeft(of(e["epoch"]?.intValue, epochs), epochWidth) + "  "
            + Format.padLeft(of(e["step"]?.intValue, stepsPerEpoch), stepWidth) + "  "
            + Format.padLeft(String(lastIteration), iterWidth) + "  "
            + Format.padRight(Format.rows(e["batch"]), Self.rowsWidth)
            + Format.padLeft(f(e["w_after"], 6), Self.weightWidth)
            + Format.padLeft(f(e["b_after"], 6), Self.weightWidth)
            + Format.padLeft(f(e["batch_loss"], 4), Self.metricWidth)
            + palette.bold(Format.padLeft(f(e["rmse"], 4), Self.metricWidth))
            + palette.cyan(Format.padLeft(f(e["val_rmse"], 4), Self.metricWidth))
        return prefix + text + "\n"
    }

    private func renderEpoch(_ e: JSONValue) -> String {
        let text = "── epoch \(of(e["epoch"]?.intValue, epochs)) done after iteration \(e["iteration"]?.intValue ?? lastIteration): "
            + "loss \(f(e["loss"], 4))  rmse \(f(e["rmse"], 4))  "
            + "val_loss \(f(e["val_loss"], 4))  val_rmse \(f(e["val_rmse"], 4))  "
            + "w \(f(e["w"], 6))  b \(f(e["b"], 6))"
        return palette.bold(text) + "\n"
    }

    private func renderState(_ e: JSONValue) -> String {
        let state = e["state"]?.stringValue ?? "?"
        var text = "── " + palette.state(state)
        if lastIteration > 0, state == "paused" || state == "running" { text += " (after iteration \(lastIteration))" }
        if let message = e["message"]?.stringValue { text += ": " + message }
        return text + "\n"
    }

    private func renderEnd(_ e: JSONValue) -> String {
        let state = e["state"]?.stringValue ?? "?"
        return "── end: " + palette.state(state) + " after \(e["iteration"]?.intValue ?? lastIteration) steps (epoch \(e["epoch"]?.intValue ?? 0)): "
            + "w \(Format.exact(e["w"])), b \(Format.exact(e["b"]))\n"
    }

    static func describeOptimizer(_ o: JSONValue?) -> String {
        guard let o, let name = o["name"]?.stringValue else { return "?" }
        let params = (o.objectMembers ?? []).filter { $0.key != "name" && !$0.value.isNull }
            .map { "\($0.key) \(Format.exact($0.value))" }
        return params.isEmpty ? name : "\(name) (\(params.joined(separator: ", ")))"
    }

    /// `keras` is the spec's `keras` (nil for a job stored before ltd recorded it, whose seeded order is ltd's own).
    static func describeShuffle(_ s: JSONValue?, keras: String?) -> String {
        switch s {
        case nil, .bool(false)?: return "no shuffle"
        case .bool(true)?: return "shuffled with a seed the daemon draws (the same order every epoch)"
        case let value?:
            if let seed = value["seed"].map(Format.exact) {
                if value["every_epoch"]?.boolValue == true { return "ltd's own new order every epoch, from seed \(seed)" }
                guard let keras else { return "ltd's own order from seed \(seed), the same every epoch (a job from before ltd matched Keras's shuffle)" }
                return "shuffled as Keras \(keras) after set_random_seed(\(seed)), the same order every epoch"
            }
            if value["order"] != nil { return "shuffled in a given order" }
            return "shuffle \(value.serialized)"
        }
    }

    static func describeInit(_ i: JSONValue?) -> String {
        guard let i else { return "given" }
        switch i["initializer"]?.stringValue {
        case "constant"?, nil: return "given"
        case "glorot_uniform"?: return "GlorotUniform(seed=\(Format.exact(i["seed"])))"
        case "keras"?, "keras_default"?: return "Keras Dense default after set_random_seed(\(Format.exact(i["seed"])))"
        case let other?: return other
        }
    }
}

/// The human text of a status object.
enum StatusText {
    static func summary(_ s: JSONValue, palette: Palette) -> String {
        let job = s["job"]?.stringValue ?? "?"
        let state = s["state"]?.stringValue ?? "?"
        let isFloat32 = s["precision"]?.stringValue != "float64"
        let f = { (v: JSONValue?, d: Int) in Format.fixed(v, d, float32: isFloat32) }
        var text = palette.bold(job) + ": " + palette.state(state) + ", owner " + Format.owner(s["owner"]?.intValue)
        if let created = s["created"]?.stringValue { text += ", created \(created)" }
        text += "\n  iteration \(s["iteration"]?.intValue ?? 0) of \(s["total_steps"]?.intValue ?? 0)"
            + " (epoch \(s["epoch"]?.intValue ?? 0) of \(s["epochs"]?.intValue ?? 0), step \(s["step"]?.intValue ?? 0) of \(s["steps_per_epoch"]?.intValue ?? 0))"
        if let progress = s["progress"]?.doubleValue { text += ", \(Format.fixed(progress * 100, 1))% done" }
        text += ", last event seq \(s["seq"]?.intValue ?? 0)"
        if let w = s["w"]?.doubleValue, let b = s["b"]?.doubleValue {
            // Shown in the job's precision: a float32 job's weights are float32 values.
            let isFloat32 = s["precision"]?.stringValue != "float64"
            let show = { (v: Double) in isFloat32 ? Float(v).description : v.description }
            text += "\n  w \(show(w)), b \(show(b))"
        }
        if s["loss"] != nil {
            text += "\n  keras loss \(f(s["loss"], 4)), rmse \(f(s["rmse"], 4)) (running, before updates); "
                + "val_loss \(f(s["val_loss"], 4)), val_rmse \(f(s["val_rmse"], 4)) (after the latest update)"
        }
        if let message = s["message"]?.stringValue { text += "\n  " + message }
        return text
    }
}
