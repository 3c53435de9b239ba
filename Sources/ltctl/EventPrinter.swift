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
    private var trainingRows: Int?
    private var columns: [Column]?

    /// The terminal's width, or nil for full detail (not a terminal, or `--wide`): rows then never wrap or drop.
    let width: Int?

    init(job: String, status: JSONValue?, palette: Palette, width: Int? = nil) {
        self.job = job
        self.palette = palette
        self.width = width
        epochs = status?["epochs"]?.intValue
        stepsPerEpoch = status?["steps_per_epoch"]?.intValue
        totalSteps = status?["total_steps"]?.intValue
        isFloat32 = status?["precision"]?.stringValue != "float64"
        trainingRows = status?["n_train"]?.intValue
    }

    private func f(_ value: JSONValue?, _ decimals: Int) -> String { Format.fixed(value, decimals, float32: isFloat32) }

    private func digits(_ n: Int?) -> Int { String(n ?? 0).count }

    /// One column of the step table: its title, width and alignment, the spaces before it, and when it is dropped
    /// on a narrow terminal (lowest `keep` first; nil: never).
    struct Column {
        var title: String
        var width: Int
        var leftAligned = false
        var gap = 0
        var keep: Int?
        var text: (EventPrinter, JSONValue) -> String
        var style: (Palette, String) -> String = { _, s in s }

        func cell(_ s: String) -> String {
            String(repeating: " ", count: gap) + (leftAligned ? Format.padRight(s, width) : Format.padLeft(s, width))
        }
        var totalWidth: Int { gap + width }
    }

    /// The step table's columns. Full detail keeps the historical layout byte for byte; on a terminal the columns
    /// are sized to their content (single gaps, the rows column as wide as this data set's row numbers) and the
    /// least important columns go until a row fits: batch loss first, then step, then rows.
    private func layout() -> [Column] {
        if let columns { return columns }
        let epochs = epochs, stepsPerEpoch = stepsPerEpoch
        let full = width == nil
        let weight = full ? 11 : 9, metric = full ? 12 : 10, weightGap = full ? 0 : 1, metricGap = full ? 0 : 2
        let rowNumberDigits = digits(max(0, (trainingRows ?? 10_000) - 1))
        let rowsWidth = full ? Self.rowsWidth : min(Self.rowsWidth, max(4, 2 * rowNumberDigits + 1))
        var all = [
            Column(title: "epoch", width: max(5, 2 * digits(epochs) + 1), text: { p, e in p.of(e["epoch"]?.intValue, epochs) }),
            Column(title: "step", width: max(4, 2 * digits(stepsPerEpoch) + 1), gap: 2, keep: 2,
                   text: { p, e in p.of(e["step"]?.intValue, stepsPerEpoch) }),
            Column(title: "iter", width: max(4, digits(totalSteps)), gap: 2, text: { p, _ in String(p.lastIteration) }),
            Column(title: "rows", width: rowsWidth, leftAligned: true, gap: 2, keep: 3,
                   text: { _, e in Format.rows(e["batch"], limit: full ? 8 : 3) }),
            Column(title: "w after", width: weight, gap: weightGap, text: { p, e in p.f(e["w_after"], 6) }),
            Column(title: "b after", width: weight, gap: weightGap, text: { p, e in p.f(e["b_after"], 6) }),
            Column(title: "batch loss", width: metric, gap: metricGap, keep: 1, text: { p, e in p.f(e["batch_loss"], 4) }),
            Column(title: "keras rmse", width: metric, gap: metricGap, text: { p, e in p.f(e["rmse"], 4) }, style: { $0.bold($1) }),
            Column(title: "val rmse", width: metric, gap: metricGap, text: { p, e in p.f(e["val_rmse"], 4) }, style: { $0.cyan($1) }),
        ]
        if !full, !all.isEmpty { all[0].gap = 0 }
        if let width {
            while all.reduce(0, { $0 + $1.totalWidth }) > width,
                  let drop = all.indices.filter({ all[$0].keep != nil }).min(by: { (all[$0].keep ?? 0) < (all[$1].keep ?? 0) }) {
                all.remove(at: drop)
            }
        }
        columns = all
        return all
    }

    static let rowsWidth = 14

    private func of(_ n: Int?, _ total: Int?) -> String {
        guard let n else { return "?" }
        return total.map { "\(n)/\($0)" } ?? "\(n)"
    }

    func header() -> String { palette.dim(tableHeader()) + "\n" }

    /// The step table's column titles, without colour or newline.
    func tableHeader() -> String { layout().map { $0.cell($0.title) }.joined() }

    /// One step's row, without newline.
    func row(_ e: JSONValue) -> String {
        lastIteration = e["iteration"]?.intValue ?? lastIteration
        return layout().map { $0.style(palette, $0.cell($0.text(self, e))) }.joined()
    }

    /// `parts` on one line joined by `separator`, or, where the terminal is narrower, on as many lines as needed,
    /// each continuation indented by `indent`; `firstWidth` columns precede the first line. Full detail never wraps.
    private func wrap(_ parts: [String], separator: String, indent: String, firstWidth: Int = 0) -> String {
        wrap(parts.enumerated().map { ($0.offset == 0 ? "" : separator, $0.element) }, indent: indent, firstWidth: firstWidth)
    }

    /// As above, each part with the separator that goes before it when it shares a line.
    private func wrap(_ parts: [(separator: String, text: String)], indent: String, firstWidth: Int = 0) -> String {
        guard let width else { return parts.map { $0.separator + $0.text }.joined() }
        var lines: [String] = []
        for part in parts {
            let used = lines.count == 1 ? firstWidth : 0
            if let last = lines.last, used + last.count + part.separator.count + part.text.count <= width {
                lines[lines.count - 1] = last + part.separator + part.text
            } else {
                lines.append((lines.isEmpty ? "" : indent) + part.text)
            }
        }
        return lines.joined(separator: "\n")
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
        trainingRows = e["n_train"]?.intValue ?? trainingRows
        isFloat32 = e["precision"]?.stringValue != "float64"
        columns = nil
        let title = palette.bold("\(job):") + " "
            + wrap((Self.describeOptimizer(e["optimizer"]) + ", " + (e["precision"]?.stringValue ?? "float32"))
                .split(separator: " ").map(String.init), separator: " ", indent: "    ", firstWidth: job.count + 2)
        let external = e["kind"]?.stringValue == "external"
        let shuffle = external && e["shuffled"]?.boolValue == true
            ? "shuffled by Keras (rows unknown)"
            : Self.describeShuffle(e["spec"]?["shuffle"], keras: e["spec"]?["keras"]?.stringValue)
        let shape = ["  \(e["n_train"]?.intValue ?? 0) training rows, \(e["n_val"]?.intValue ?? 0) validation rows",
                     "\(Format.count(epochs ?? 0, "epoch")) × \(Format.count(stepsPerEpoch ?? 0, "step")) of batch \(e["batch_size"]?.intValue ?? 0) = \(totalSteps ?? 0) steps",
                     shuffle]
        let origin = external ? "recorded from the run" : Self.describeInit(e["init"])
        var weights = ["  initial w \(Format.exact(e["w"])), b \(Format.exact(e["b"])) (\(origin))"]
        if let optimum = e["optimum"] {
            weights.append("least-squares optimum w \(Format.fixed(optimum["w"], 4, float32: false)), b \(Format.fixed(optimum["b"], 4, float32: false)) (mse \(Format.fixed(optimum["mse"], 4, float32: false)))")
        }
        var text = title + "\n" + wrap(shape, separator: "; ", indent: "  ") + "\n" + wrap(weights, separator: "; ", indent: "  ") + "\n"
        if external { text += "  " + Self.describePlatform(e["platform"]) + "\n" }
        return text
    }

    /// "published from a real fit: Keras 3.15.1, TensorFlow 2.21.0, numpy 2.3.5, CPU, oneDNN on".
    static func describePlatform(_ p: JSONValue?) -> String {
        var parts: [String] = []
        for (key, label) in [("keras", "Keras"), ("tf_keras", "tf_keras"), ("tensorflow", "TensorFlow"), ("numpy", "numpy")] {
            if let v = p?[key]?.stringValue { parts.append("\(label) \(v)") }
        }
        if let device = p?["device"]?.stringValue { parts.append(device) }
        if let onednn = p?["onednn"]?.boolValue { parts.append("oneDNN \(onednn ? "on" : "off")") }
        return "published from a real fit" + (parts.isEmpty ? "" : ": " + parts.joined(separator: ", "))
    }

    private func renderStep(_ e: JSONValue) -> String {
        var prefix = ""
        if !headerPrinted { headerPrinted = true; prefix = header() }
        return prefix + row(e) + "\n"
    }

    private func renderEpoch(_ e: JSONValue) -> String {
        let parts = [("", "── epoch \(of(e["epoch"]?.intValue, epochs)) done after iteration \(e["iteration"]?.intValue ?? lastIteration):"),
                     (" ", "loss \(f(e["loss"], 4))  rmse \(f(e["rmse"], 4))"),
                     ("  ", "val_loss \(f(e["val_loss"], 4))  val_rmse \(f(e["val_rmse"], 4))"),
                     ("  ", "w \(f(e["w"], 6))  b \(f(e["b"], 6))")]
        let text = wrap(parts, indent: "   ")
        return text.split(separator: "\n", omittingEmptySubsequences: false).map { palette.bold(String($0)) }.joined(separator: "\n") + "\n"
    }

    private func renderState(_ e: JSONValue) -> String {
        let state = e["state"]?.stringValue ?? "?"
        var text = "── " + palette.state(state)
        if lastIteration > 0, state == "paused" || state == "running" { text += " (after iteration \(lastIteration))" }
        guard let message = e["message"]?.stringValue else { return text + "\n" }
        return wrap([("", text + ":")] + message.split(separator: " ").map { (" ", String($0)) }, indent: "   ") + "\n"
    }

    private func renderEnd(_ e: JSONValue) -> String {
        let state = e["state"]?.stringValue ?? "?"
        return wrap([("", "── end: " + palette.state(state) + " after \(e["iteration"]?.intValue ?? lastIteration) steps (epoch \(e["epoch"]?.intValue ?? 0)):"),
                     (" ", "w \(Format.exact(e["w"])), b \(Format.exact(e["b"]))")], indent: "   ") + "\n"
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
        if let created = s["created"]?.stringValue, !created.isEmpty { text += ", created \(created)" }
        if let reason = s["reason"]?.stringValue {
            // A damaged job: ltd could not read its directory, so it has no numbers to show.
            return text + "\n  " + reason + "\n  Its files are left as they are; remove it with: ltctl delete \(job)"
        }
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
